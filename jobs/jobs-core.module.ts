import { Global, Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { BlockJobLedger } from './block-job-ledger.js';
import { JobCallbacks } from './job-callback.js';
import { JobRetention } from './job-retention.service.js';
import { JobRunner } from './job-runner.service.js';
import { OrphanJobSweeper } from './orphan-jobs.js';
import { JobSignals } from './job-signals.js';
import { JobStore } from './job-store.js';
import { JobSubmitter } from './job-submitter.js';
import { JobUpdates } from './job-updates.js';
import { JobQueues } from './queues.js';

export interface JobsCoreOptions {
  /** Run the jobs here: the worker role (ROLE=worker, or all). */
  runner: boolean;
}

/** What both roles share: one of each per process, whatever the role. */
const SHARED: Provider[] = [
  {
    provide: JobStore,
    inject: [REDIS, REDIS_KEYS, APP_CONFIG],
    useFactory: (redis: RedisClient, keys: RedisKeys, config: AppConfig) =>
      new JobStore(redis, keys, config.jobRetentionHours * 3600, {
        maxLength: config.eventsRetentionMaxEvents,
        progressIntervalMs: config.eventsProgressIntervalMs,
      }),
  },
  {
    provide: JobQueues,
    inject: [APP_CONFIG, REDIS_KEYS],
    useFactory: (config: AppConfig, keys: RedisKeys) =>
      new JobQueues(config.redisTopology, keys.bull, {
        replicas: config.redisWaitReplicas,
        timeoutMs: config.redisWaitTimeoutMs,
      }),
  },
  JobSubmitter,
  JobCallbacks,
  JobUpdates,
  JobSignals,
  BlockJobLedger,
  JobRetention,
];

/**
 * The job machinery, once per process: records, queues, submission with
 * idempotency, waiting, signals to running jobs, the block-job ledger,
 * retention, and (with `runner`) the runner that finds the features'
 * processors at boot. Global: every feature submits jobs, and the worker's
 * processors use the ledger and signals.
 */
@Global()
@Module({})
export class JobsCoreModule {
  static forRoot(options: JobsCoreOptions): DynamicModule {
    return {
      module: JobsCoreModule,
      imports: options.runner ? [DiscoveryModule] : [],
      providers: options.runner ? [...SHARED, JobRunner, OrphanJobSweeper] : SHARED,
      exports: SHARED,
    };
  }
}
