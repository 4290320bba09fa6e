import { Module } from '@nestjs/common';
import { JobsModule } from '#modules/jobs/index.js';
import { EventsController } from './events.controller.js';
import { EventsResolver } from './events.resolver.js';
import { EventsService } from './events.service.js';

/**
 * The event stream for clients (the api role): server-sent events and JSON
 * pages at /v1/events, and GraphQL subscriptions (events, job). What writes
 * the stream is the workers' publishers (events-worker.module.ts) and the
 * job store.
 */
@Module({
  imports: [JobsModule],
  controllers: [EventsController],
  providers: [EventsService, EventsResolver],
  exports: [EventsService],
})
export class EventsModule {}
