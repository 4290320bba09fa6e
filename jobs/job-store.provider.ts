import type { Provider } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { JobStore } from './job-store.js';

/** The job store over the process's Redis connection and key names. */
export const jobStoreProvider: Provider = {
  provide: JobStore,
  inject: [REDIS, REDIS_KEYS],
  useFactory: (redis: Redis, keys: RedisKeys) => new JobStore(redis, keys),
};
