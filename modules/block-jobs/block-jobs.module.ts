import { Module } from '@nestjs/common';
import { JobsModule } from '#modules/jobs/index.js';
import { BlockJobOperationsService } from './block-job-operations.service.js';
import { BlockJobsController } from './block-jobs.controller.js';
import { BlockJobsResolver } from './block-jobs.resolver.js';
// Declares what this feature's jobs return (REST's Job variants, GraphQL's JobResult).
import './models/block-job-results.model.js';

/** Block commit, copy and pull on a disk's backing chain, as jobs (the api side). */
@Module({
  imports: [JobsModule],
  controllers: [BlockJobsController],
  providers: [BlockJobOperationsService, BlockJobsResolver],
})
export class BlockJobsModule {}
