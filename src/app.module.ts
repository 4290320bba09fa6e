import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { AuthModule } from '#modules/auth/auth.module.js';
import type { AdminTokenOutput } from '#modules/auth/admin-token.bootstrap.js';
import { HealthModule } from '#modules/health/health.module.js';
import { BlockJobsModule } from '#modules/block-jobs/block-jobs.module.js';
import { DomainsModule } from '#modules/domains/domains.module.js';
import { HostsModule } from '#modules/hosts/hosts.module.js';
import { JobsModule } from '#modules/jobs/jobs.module.js';
import { WorkerModule } from '#jobs/worker.module.js';
import { StoragePoolsModule } from '#modules/storage-pools/storage-pools.module.js';
import { ProblemDetailsFilter } from './common/filters/problem-details.filter.js';
import { createValidationPipe } from './common/validation.js';
import { GraphqlApiModule } from './graphql/graphql-api.module.js';
import type { AppConfig } from './config/config.js';
import { ConfigModule } from './config/config.module.js';
import { RedisModule } from './redis/redis.module.js';

export interface AppModuleOptions {
  /** Where a generated admin token is printed once; default process.stdout. */
  adminTokenOutput?: AdminTokenOutput;
}

/** The api role's module tree; with ROLE=all it holds the worker role too. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, options: AppModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        RedisModule,
        AuthModule.forRoot({ adminTokenOutput: options.adminTokenOutput }),
        HealthModule,
        GraphqlApiModule.forRoot(config),
        HostsModule,
        StoragePoolsModule,
        DomainsModule,
        BlockJobsModule,
        JobsModule,
        ...(config.role === 'all' ? [WorkerModule] : []),
      ],
      providers: [
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        { provide: APP_PIPE, useFactory: createValidationPipe },
      ],
    };
  }
}
