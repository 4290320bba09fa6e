import { Module } from '@nestjs/common';
import { JobsModule } from '#modules/jobs/index.js';
import { SnapshotOperationsService } from './snapshot-operations.service.js';
import { SnapshotsController } from './snapshots.controller.js';
import { SnapshotsResolver } from './snapshots.resolver.js';
import { SnapshotsService } from './snapshots.service.js';
// Declares what this feature's jobs return (REST's Job variants, GraphQL's JobResult).
import './models/snapshot-result.model.js';

/** A domain's snapshots over REST and GraphQL: listing them, taking one (the api side). */
@Module({
  imports: [JobsModule],
  controllers: [SnapshotsController],
  providers: [SnapshotsService, SnapshotOperationsService, SnapshotsResolver],
})
export class SnapshotsModule {}
