import { Module } from '@nestjs/common';
import { BlockJobLedger } from '#jobs/block-job-ledger.js';
import { JobRetention } from '#jobs/job-retention.service.js';
import { JobSignals } from '#jobs/job-signals.js';
import { jobStoreProvider } from '#jobs/job-store.provider.js';
import { JobUpdates } from './job-updates.service.js';
import { JobsController } from './jobs.controller.js';
import { JobsResolver } from './jobs.resolver.js';
import { JobsService } from './jobs.service.js';

/** The api side of jobs: accepting, showing, waiting for and canceling them. */
@Module({
  controllers: [JobsController],
  providers: [
    jobStoreProvider,
    JobUpdates,
    JobsService,
    JobsResolver,
    BlockJobLedger,
    JobRetention,
    JobSignals,
  ],
  exports: [JobsService, BlockJobLedger],
})
export class JobsModule {}
