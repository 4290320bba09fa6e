import { Module } from '@nestjs/common';
import { HostsModule } from '#modules/hosts/hosts.module.js';
import { JobsModule } from '#modules/jobs/jobs.module.js';
import { BlockJobsController } from './block-jobs.controller.js';
import { BlockJobsResolver } from './block-jobs.resolver.js';
import { BlockJobsService } from './block-jobs.service.js';

/** Block commit, copy and pull on a disk's backing chain, as jobs. */
@Module({
  imports: [HostsModule, JobsModule],
  controllers: [BlockJobsController],
  providers: [BlockJobsService, BlockJobsResolver],
  exports: [BlockJobsService],
})
export class BlockJobsModule {}
