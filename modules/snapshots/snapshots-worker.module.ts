import { Module } from '@nestjs/common';
import { SnapshotsProcessor } from './snapshots.processor.js';

/** The worker side of snapshots: the jobs of queue `snapshots`. */
@Module({ providers: [SnapshotsProcessor] })
export class SnapshotsWorkerModule {}
