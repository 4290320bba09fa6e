import { Module } from '@nestjs/common';
import { JobsModule } from '#modules/jobs/index.js';
import { StoragePoolOperationsService } from './storage-pool-operations.service.js';
import { StoragePoolsController } from './storage-pools.controller.js';
import { HostStoragePoolsResolver, StoragePoolsResolver } from './storage-pools.resolver.js';
import { StoragePoolsService } from './storage-pools.service.js';
// Declares what this feature's jobs return (REST's Job variants, GraphQL's JobResult).
import './models/storage-job-results.model.js';

/** Storage pools and volumes over REST and GraphQL: reads, and changes as jobs (the api side). */
@Module({
  imports: [JobsModule],
  controllers: [StoragePoolsController],
  providers: [
    StoragePoolsService,
    StoragePoolOperationsService,
    HostStoragePoolsResolver,
    StoragePoolsResolver,
  ],
})
export class StoragePoolsModule {}
