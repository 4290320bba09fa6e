import { Module } from '@nestjs/common';
import { JobsController } from './jobs.controller.js';
import { JobsResolver } from './jobs.resolver.js';
import { JobsService } from './jobs.service.js';

/**
 * The jobs resource over REST and GraphQL: listing, showing, waiting for,
 * canceling and pivoting jobs (the machinery is jobs/, JobsCoreModule).
 */
@Module({
  controllers: [JobsController],
  providers: [JobsService, JobsResolver],
  exports: [JobsService],
})
export class JobsModule {}
