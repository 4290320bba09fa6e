import { Module } from '@nestjs/common';
import { HostsModule } from '#modules/hosts/hosts.module.js';
import { JobsModule } from '#modules/jobs/jobs.module.js';
import { StorageOperationsController } from './storage-operations.controller.js';
import { StorageOperationsResolver } from './storage-operations.resolver.js';
import { StorageOperationsService } from './storage-operations.service.js';
import { StoragePoolsController } from './storage-pools.controller.js';
import { HostStoragePoolsResolver, StoragePoolsResolver } from './storage-pools.resolver.js';
import { StoragePoolsService } from './storage-pools.service.js';

/** Storage pools and volumes of the registered hosts (read side). */
@Module({
  imports: [HostsModule, JobsModule],
  controllers: [StoragePoolsController, StorageOperationsController],
  providers: [
    StoragePoolsService,
    StorageOperationsService,
    StorageOperationsResolver,
    HostStoragePoolsResolver,
    StoragePoolsResolver,
  ],
  exports: [StoragePoolsService],
})
export class StoragePoolsModule {}
