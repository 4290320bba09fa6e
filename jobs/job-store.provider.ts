import type { Provider } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { JobStore } from './job-store.js';

/** The job store over the process's Redis connection and key names, keeping finished jobs as configured. */
export const jobStoreProvider: Provider = {
  provide: JobStore,
  inject: [REDIS, REDIS_KEYS, APP_CONFIG],
  useFactory: (redis: Redis, keys: RedisKeys, config: AppConfig) =>
    new JobStore(redis, keys, config.jobRetentionHours * 3600),
};
