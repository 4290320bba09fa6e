import { Module } from '@nestjs/common';
import { DeliveryLog } from './delivery-log.js';
import { DeliveryQueue } from './delivery-queue.js';
import { WebhookStore } from './webhook-store.js';
import { WebhooksController } from './webhooks.controller.js';
import { WebhooksService } from './webhooks.service.js';

/**
 * Webhooks for admins over REST (the api role): managing them, their secrets,
 * their delivery logs and redeliveries. What delivers is the worker side,
 * webhooks-worker.module.ts.
 */
@Module({
  controllers: [WebhooksController],
  providers: [WebhooksService, WebhookStore, DeliveryLog, DeliveryQueue],
})
export class WebhooksModule {}
