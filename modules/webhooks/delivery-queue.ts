import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Queue, type JobsOptions } from 'bullmq';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { bullConnection, closeBullmq } from '#jobs/queues.js';
import type { AppConfig } from '#src/config/config.js';
import type { GatewayEvent } from '#src/events/event.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';

/** The BullMQ queue of deliveries (webhooks and job callbacks), apart from the job queues. */
export const DELIVERY_QUEUE = 'webhook-deliveries';

/** The backoff type of deliveries: WEBHOOK_RETRY_SCHEDULE, jittered, Retry-After honoured. */
export const DELIVERY_BACKOFF = 'webhook-schedule';

interface DeliveryBase {
  /** The delivery's id: its webhook-id header, the same across retries and redeliveries. */
  deliveryId: string;
  eventId: string;
  eventType: string;
  /** The body sent, exactly: the event's JSON. */
  body: string;
  redelivery: boolean;
}

/** One event to one webhook. */
export interface WebhookDelivery extends DeliveryBase {
  kind: 'webhook';
  webhookId: string;
}

/** A job's final event to the callbackUrl it was requested with. */
export interface CallbackDelivery extends DeliveryBase {
  kind: 'callback';
  jobId: string;
  url: string;
}

export type Delivery = WebhookDelivery | CallbackDelivery;

/**
 * A delivery's id, derived from what it delivers (so a stream entry read
 * twice makes the same delivery): `dlv_` and 132 bits of a hash, with no `.`
 * (the spec forbids one in a webhook-id).
 */
export function deliveryIdOf(target: string, eventId: string): string {
  const hash = createHash('sha256').update(`${target}\n${eventId}`).digest('base64url');
  return `dlv_${hash.slice(0, 22)}`;
}

/** The body of a delivery: the event's JSON, as every channel serves it. */
export function deliveryBody(event: GatewayEvent): string {
  return JSON.stringify(event);
}

/** The delivery of `event` to a webhook (its id the same however often it is made). */
export function webhookDelivery(
  webhookId: string,
  event: GatewayEvent,
  redelivery = false,
): WebhookDelivery {
  return {
    kind: 'webhook',
    webhookId,
    deliveryId: deliveryIdOf(`webhook ${webhookId}`, event.id),
    eventId: event.id,
    eventType: event.type,
    body: deliveryBody(event),
    redelivery,
  };
}

/** BullMQ's id of a delivery's first run: adding it again is a no-op while BullMQ keeps it. */
function bullIdOf(delivery: Delivery): string {
  const base =
    delivery.kind === 'webhook'
      ? `wh_${delivery.webhookId}_${delivery.eventId}`
      : `cb_${delivery.jobId}_${delivery.eventId}`;
  return delivery.redelivery ? `${base}_r${Date.now()}${randomBytes(4).toString('hex')}` : base;
}

/**
 * The producer side of the delivery queue. A delivery's first run has an id
 * derived from (webhook or job, event): an event handed to the dispatchers
 * twice (a worker died before it acknowledged the stream entry) queues it
 * once. BullMQ keeps finished deliveries an hour for that (100,000 at most).
 */
@Injectable()
export class DeliveryQueue implements OnApplicationShutdown {
  private readonly connection: RedisClient;
  private readonly queue: Queue<Delivery>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS_KEYS) keys: RedisKeys,
  ) {
    this.connection = bullConnection(config.redisTopology, 'virtgate-webhook-queue');
    this.queue = new Queue<Delivery>(DELIVERY_QUEUE, {
      connection: this.connection,
      prefix: keys.bull,
    });
  }

  options(delivery: Delivery): JobsOptions {
    return {
      jobId: bullIdOf(delivery),
      attempts: this.config.webhookRetrySchedule.length + 1,
      backoff: { type: DELIVERY_BACKOFF },
      removeOnComplete: { age: 3600, count: 100_000 },
      removeOnFail: { age: 7 * 86_400, count: 10_000 },
    };
  }

  async add(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await this.queue.addBulk(
      deliveries.map((data) => ({ name: data.kind, data, opts: this.options(data) })),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await closeBullmq([this.queue], 5000);
    this.connection.disconnect();
  }
}
