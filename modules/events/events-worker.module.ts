import { Module } from '@nestjs/common';
import { BlockJobsWorkerModule } from '#modules/block-jobs/index.js';
import { HostEventPublisher } from './host-event-publisher.js';

/**
 * The worker side of events: the publisher that holds each host's event
 * registration (one worker per host, by lease) and appends libvirt's events
 * to the stream; when a host's link comes back, it has the host's block jobs
 * reconciled (BlockJobReconciler).
 */
@Module({
  imports: [BlockJobsWorkerModule],
  providers: [HostEventPublisher],
  exports: [HostEventPublisher],
})
export class EventsWorkerModule {}
