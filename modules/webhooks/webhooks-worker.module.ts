import { Module } from '@nestjs/common';
import { DeliveryLog } from './delivery-log.js';
import { DeliveryQueue } from './delivery-queue.js';
import { DeliveryRunner } from './delivery-runner.js';
import { WebhookDispatcher } from './webhook-dispatcher.js';
import { WebhookStore } from './webhook-store.js';

/**
 * The worker side of webhooks and job callbacks: the dispatcher that reads
 * the event stream in a consumer group and queues deliveries, and the runner
 * that makes them (signed, retried, logged).
 */
@Module({
  providers: [WebhookStore, DeliveryLog, DeliveryQueue, WebhookDispatcher, DeliveryRunner],
})
export class WebhooksWorkerModule {}
