import { Module } from '@nestjs/common';
import { EventsController } from './events.controller.js';
import { EventsService } from './events.service.js';

/**
 * The event stream for clients (the api role): server-sent events and JSON
 * pages at /v1/events, and GraphQL subscriptions. What writes the stream is
 * the workers' publishers (events-worker.module.ts) and the job store.
 */
@Module({
  controllers: [EventsController],
  providers: [EventsService],
  exports: [EventsService],
})
export class EventsModule {}
