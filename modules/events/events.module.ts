import { Module } from '@nestjs/common';

/**
 * The event stream for clients (the api role): server-sent events and JSON
 * pages at /v1/events, and GraphQL subscriptions. What writes the stream is
 * the workers' publishers (events-worker.module.ts) and the job store.
 */
@Module({
  controllers: [],
  providers: [],
})
export class EventsModule {}
