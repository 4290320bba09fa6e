import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Logger } from 'pino';
import { JobsCoreModule } from '#jobs/jobs-core.module.js';
import { AuditLogModule } from '#modules/audit/audit-log.module.js';
import { BlockJobsWorkerModule } from '#modules/block-jobs/index.js';
import { DomainsWorkerModule } from '#modules/domains/domains-worker.module.js';
import { EventsWorkerModule } from '#modules/events/events-worker.module.js';
import { SnapshotsWorkerModule } from '#modules/snapshots/snapshots-worker.module.js';
import { StoragePoolsWorkerModule } from '#modules/storage-pools/storage-pools-worker.module.js';
import { WebhooksWorkerModule } from '#modules/webhooks/webhooks-worker.module.js';
import { PinoLoggerService } from './common/logging/pino-logger.service.js';
import type { AppConfig } from './config/config.js';
import { ConfigModule } from './config/config.module.js';
import { HostsCoreModule } from './hosts/hosts-core.module.js';
import { RedisModule } from './redis/redis.module.js';
import { RedisRecoveryModule } from './redis/redis-recovery.js';
import { EventsCoreModule } from './events/events-core.module.js';

/**
 * The worker side of the features: the modules that hold their job
 * processors, which the runner finds at boot. ROLE=worker runs these alone;
 * ROLE=all runs them inside the api's application (app.module.ts).
 */
export const FEATURE_WORKER_MODULES = [
  DomainsWorkerModule,
  SnapshotsWorkerModule,
  StoragePoolsWorkerModule,
  BlockJobsWorkerModule,
  EventsWorkerModule,
  WebhooksWorkerModule,
];

export interface Worker {
  close(): Promise<void>;
}

/**
 * The worker role alone (ROLE=worker): no HTTP, only the queues' processors.
 * Nothing here loads the HTTP or GraphQL layers (the lint checks it), so a
 * worker starts, and takes over the jobs of one that died, quickly.
 */
@Module({})
class WorkerRootModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerRootModule,
      imports: [
        ConfigModule.forRoot(config),
        RedisModule,
        RedisRecoveryModule,
        HostsCoreModule,
        EventsCoreModule,
        AuditLogModule,
        JobsCoreModule.forRoot({ runner: true }),
        ...FEATURE_WORKER_MODULES,
      ],
    };
  }
}

/** Starts the worker role as a Nest application context (ROLE=all runs it inside the api's app). */
export async function startWorker(config: AppConfig, logger: Logger): Promise<Worker> {
  const app = await NestFactory.createApplicationContext(WorkerRootModule.forRoot(config), {
    logger: new PinoLoggerService(logger.child({ component: 'worker' })),
    abortOnError: false,
  });
  await app.init();
  return { close: () => app.close() };
}
