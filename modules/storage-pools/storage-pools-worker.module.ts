import { Module } from '@nestjs/common';
import { StorageProcessor } from './storage-pools.processor.js';

/** The worker side of storage pools and volumes: the jobs of queue `storage`. */
@Module({ providers: [StorageProcessor] })
export class StoragePoolsWorkerModule {}
