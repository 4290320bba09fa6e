import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { JobCallbackInterceptor } from './job-callback.interceptor.js';
import { JobsController } from './jobs.controller.js';
import { JobsResolver } from './jobs.resolver.js';
import { JobsService } from './jobs.service.js';

/**
 * The jobs resource over REST and GraphQL: listing, showing, waiting for,
 * canceling and pivoting jobs (the machinery is jobs/, JobsCoreModule), and
 * the `callbackUrl` every job request may carry (JobCallbackInterceptor).
 */
@Module({
  controllers: [JobsController],
  providers: [
    JobsService,
    JobsResolver,
    { provide: APP_INTERCEPTOR, useClass: JobCallbackInterceptor },
  ],
  exports: [JobsService],
})
export class JobsModule {}
