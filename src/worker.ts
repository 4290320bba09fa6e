import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Logger } from 'pino';
import { WorkerModule } from '#jobs/worker.module.js';
import { PinoLoggerService } from './common/logging/pino-logger.service.js';
import type { AppConfig } from './config/config.js';
import { ConfigModule } from './config/config.module.js';
import { RedisModule } from './redis/redis.module.js';

export interface Worker {
  close(): Promise<void>;
}

/** The worker role alone (ROLE=worker): no HTTP, only the queues' processors. */
@Module({})
class WorkerRootModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerRootModule,
      imports: [ConfigModule.forRoot(config), RedisModule, WorkerModule],
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
