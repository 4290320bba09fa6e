import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { redisKeys, type RedisKeys } from './keys.js';

/** Injection token of the shared ioredis client. */
export const REDIS = Symbol('REDIS');
/** Injection token of the key names (RedisKeys) for the configured prefix. */
export const REDIS_KEYS = Symbol('REDIS_KEYS');

/** One ioredis connection for the process's commands (blocking commands need their own). */
@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): Redis => {
        const logger = new Logger('Redis');
        const redis = new Redis(config.redisUrl, {
          connectionName: `virtgate-${config.role}`,
          // Fail a command after a few reconnect attempts instead of queueing it for minutes,
          // and never wait forever on a server that accepted the connection but does not answer.
          // A worker rides out a restart of Redis (about 10 s of reconnect attempts): a
          // running job's next write waits instead of failing the job.
          maxRetriesPerRequest: config.role === 'worker' ? 20 : 3,
          commandTimeout: 5000,
        });
        let lastError = '';
        redis.on('error', (err: Error) => {
          // ioredis repeats the error at every reconnect attempt: log changes only.
          if (err.message !== lastError) logger.warn(`connection error: ${err.message}`);
          lastError = err.message;
        });
        redis.on('ready', () => {
          if (lastError) logger.log('connection restored');
          lastError = '';
        });
        if (config.role !== 'worker') {
          // Once up, the api's commands fail at once while Redis is away (503 within
          // milliseconds) instead of waiting in the offline queue for reconnect attempts:
          // a request never waits on an outage. Workers wait it out: a job rides out a blip.
          redis.once('ready', () => {
            redis.options.enableOfflineQueue = false;
          });
        }
        return redis;
      },
    },
    {
      provide: REDIS_KEYS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): RedisKeys => redisKeys(config.redisPrefix),
    },
  ],
  exports: [REDIS, REDIS_KEYS],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.redis.status !== 'ready') {
      // Reconnecting or never connected: QUIT would wait in the offline queue.
      this.redis.disconnect();
      return;
    }
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
