import {
  Global,
  Inject,
  Logger,
  Module,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { redisKeys, type RedisKeys } from './keys.js';
import { checkRedisSetup } from './redis-checks.js';
import {
  closeConnection,
  createRedisConnection,
  describeRedis,
  failFastOnceUp,
  type RedisClient,
} from './redis-connection.js';

/** Injection token of the shared Redis connection (a RedisClient: Redis, or Cluster). */
export const REDIS = Symbol('REDIS');
/** Injection token of the key names (RedisKeys) for the configured prefix. */
export const REDIS_KEYS = Symbol('REDIS_KEYS');

/**
 * One Redis connection for the process's commands (blocking commands need
 * their own), on the configured topology. At init, in every role, it refuses
 * a Redis that may evict keys (the process does not start).
 */
@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): RedisClient => {
        const client = createRedisConnection(
          config.redisTopology,
          `virtgate-${config.role}`,
          'commands',
        );
        if (config.role !== 'worker') failFastOnceUp(client);
        return client;
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
export class RedisModule implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Redis');

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Before anything uses Redis: a Redis that evicts keys loses jobs, so the process stops here. */
  async onModuleInit(): Promise<void> {
    const where = describeRedis(this.config.redisTopology);
    let result: { withoutAof: string[] };
    try {
      result = await checkRedisSetup(this.redis);
    } catch (err) {
      if ((err as Error).name === 'RedisSetupError') throw err;
      throw new Error(`cannot check the setup of Redis (${where}): ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (result.withoutAof.length > 0) {
      this.logger.warn(
        `Redis at ${result.withoutAof.join(', ')} runs without AOF (appendonly no): a restart loses what was written since its last snapshot, jobs included`,
      );
    }
    this.logger.log(`using ${where}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await closeConnection(this.redis);
  }
}
