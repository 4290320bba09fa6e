import { Module } from '@nestjs/common';
import { HostEventPublisher } from './host-event-publisher.js';

/**
 * The worker side of events: the publisher that holds each host's event
 * registration (one worker per host, by lease) and appends libvirt's events
 * to the stream.
 */
@Module({
  providers: [HostEventPublisher],
  exports: [HostEventPublisher],
})
export class EventsWorkerModule {}
