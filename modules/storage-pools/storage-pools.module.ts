import { Module } from '@nestjs/common';
import { HostsModule } from '#modules/hosts/hosts.module.js';
import { StoragePoolsController } from './storage-pools.controller.js';
import { HostStoragePoolsResolver, StoragePoolsResolver } from './storage-pools.resolver.js';
import { StoragePoolsService } from './storage-pools.service.js';

/** Storage pools and volumes of the registered hosts (read side). */
@Module({
  imports: [HostsModule],
  controllers: [StoragePoolsController],
  providers: [StoragePoolsService, HostStoragePoolsResolver, StoragePoolsResolver],
  exports: [StoragePoolsService],
})
export class StoragePoolsModule {}
