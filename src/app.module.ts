import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_PIPE, DiscoveryModule } from '@nestjs/core';
import { JobsCoreModule } from '#jobs/jobs-core.module.js';
import { AuditLogModule } from '#modules/audit/audit-log.module.js';
import { AuditModule } from '#modules/audit/audit.module.js';
import type { AdminTokenOutput } from '#modules/auth/admin-token.bootstrap.js';
import { AuthModule } from '#modules/auth/auth.module.js';
import { BlockJobsModule } from '#modules/block-jobs/block-jobs.module.js';
import { DomainsModule } from '#modules/domains/domains.module.js';
import { EventsModule } from '#modules/events/events.module.js';
import { HealthModule } from '#modules/health/health.module.js';
import { HostsModule } from '#modules/hosts/hosts.module.js';
import { JobsModule } from '#modules/jobs/jobs.module.js';
import { SnapshotsModule } from '#modules/snapshots/snapshots.module.js';
import { StoragePoolsModule } from '#modules/storage-pools/storage-pools.module.js';
import { WebhooksModule } from '#modules/webhooks/webhooks.module.js';
import { AccessDeclarations } from './common/guards/access-declarations.js';
import { ProblemDetailsFilter } from './common/filters/problem-details.filter.js';
import { createValidationPipe } from './common/validation.js';
import type { AppConfig } from './config/config.js';
import { ConfigModule } from './config/config.module.js';
import { GraphqlApiModule } from './graphql/graphql-api.module.js';
import { HostsCoreModule } from './hosts/hosts-core.module.js';
import { RedisModule } from './redis/redis.module.js';
import { RedisRecoveryModule } from './redis/redis-recovery.js';
import { EventsCoreModule } from './events/events-core.module.js';
import { FEATURE_WORKER_MODULES } from './worker.js';

export interface AppModuleOptions {
  /** Where a generated admin token is printed once; default process.stdout. */
  adminTokenOutput?: AdminTokenOutput;
}

/**
 * The api role's module tree, the composition root of the features (the one
 * place in src/ that names them); with ROLE=all it holds the worker role too.
 */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, options: AppModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DiscoveryModule,
        RedisModule,
        RedisRecoveryModule,
        HostsCoreModule,
        EventsCoreModule,
        AuditLogModule,
        JobsCoreModule.forRoot({ runner: config.role === 'all' }),
        AuthModule.forRoot({ adminTokenOutput: options.adminTokenOutput }),
        HealthModule,
        GraphqlApiModule.forRoot(config),
        HostsModule,
        StoragePoolsModule,
        DomainsModule,
        SnapshotsModule,
        BlockJobsModule,
        JobsModule,
        AuditModule,
        EventsModule,
        WebhooksModule,
        ...(config.role === 'all' ? FEATURE_WORKER_MODULES : []),
      ],
      providers: [
        AccessDeclarations,
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        { provide: APP_PIPE, useFactory: createValidationPipe },
      ],
    };
  }
}
