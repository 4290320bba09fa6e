import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { KeyObject } from 'node:crypto';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { bullConnection, closeBullmq } from '#jobs/queues.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { newEvent } from '#src/events/event.js';
import { EVENT_STREAM, type EventStream } from '#src/events/event-stream.js';
import { DestinationPolicy, DestinationRefused } from '#src/net/destination-policy.js';
import { REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { DeliveryLog } from './delivery-log.js';
import { DELIVERY_BACKOFF, DELIVERY_QUEUE, type Delivery } from './delivery-queue.js';
import { postDelivery, type AttemptResult } from './webhook-http.js';
import { signatureHeaders } from './webhook-signature.js';
import { WebhookStore, type DisabledReason } from './webhook-store.js';

/** A failed attempt, for the backoff: it carries the receiver's Retry-After. */
class AttemptFailed extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | null,
  ) {
    super(message);
  }
}

/**
 * The wait before retry `attemptsMade` (1-based): the schedule's delay with
 * ±20 % jitter, and never less than a Retry-After the receiver asked for.
 */
export function deliveryRetryDelay(
  schedule: readonly number[],
  attemptsMade: number,
  retryAfterMs: number | null,
): number {
  const seconds = schedule[Math.min(attemptsMade, schedule.length) - 1] ?? 0;
  const jittered = Math.round(seconds * 1000 * (0.8 + Math.random() * 0.4));
  return Math.max(jittered, retryAfterMs ?? 0);
}

/**
 * Makes the deliveries (worker role): one BullMQ worker on the delivery
 * queue. Each attempt checks the destination again (the name is resolved
 * again and the connection pinned to the checked address), signs the body
 * with the webhook's secrets (both during a rotation's grace period), POSTs
 * it and logs the attempt. Any 2xx is success; 410 disables the webhook at
 * once; anything else (3xx, 4xx, 5xx, a network error, a timeout) is a
 * failure, retried by WEBHOOK_RETRY_SCHEDULE. A delivery whose retries are
 * exhausted counts towards WEBHOOK_DISABLE_AFTER_FAILURES. A webhook that is
 * disabled or deleted gets nothing more, queued deliveries included.
 */
@Injectable()
export class DeliveryRunner implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('WebhookDeliveries');
  private readonly policy: DestinationPolicy;
  private connection: RedisClient | null = null;
  private worker: Worker<Delivery> | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(EVENT_STREAM) private readonly stream: EventStream,
    private readonly store: WebhookStore,
    private readonly log: DeliveryLog,
  ) {
    this.policy = new DestinationPolicy({
      allowed: config.webhookAllowedCidrs,
      denied: config.webhookDeniedCidrs,
    });
  }

  onApplicationBootstrap(): void {
    const schedule = this.config.webhookRetrySchedule;
    this.connection = bullConnection(this.config.redisTopology, 'virtgate-webhook-worker');
    this.worker = new Worker<Delivery>(DELIVERY_QUEUE, (job) => this.attempt(job), {
      connection: this.connection,
      prefix: this.keys.bull,
      concurrency: this.config.webhookConcurrency,
      // An attempt holds its lock for its timeout at most, with room to spare.
      lockDuration: Math.max(30_000, this.config.webhookTimeoutMs * 2),
      settings: {
        backoffStrategy: (attemptsMade: number, type?: string, err?: Error) =>
          type === DELIVERY_BACKOFF
            ? deliveryRetryDelay(
                schedule,
                attemptsMade,
                err instanceof AttemptFailed ? err.retryAfterMs : null,
              )
            : 1000,
      },
    });
    this.worker.on('error', (err) => this.logger.error(`delivery queue: ${err.message}`));
  }

  async onApplicationShutdown(): Promise<void> {
    await closeBullmq(this.worker ? [this.worker] : [], 10_000);
    this.connection?.disconnect();
  }

  private async attempt(job: Job<Delivery>): Promise<void> {
    const delivery = job.data;
    const attempt = job.attemptsMade + 1;
    const last = attempt >= (job.opts.attempts ?? 1);
    let url: string;
    let keys: KeyObject[];
    if (delivery.kind === 'webhook') {
      const webhook = await this.store.get(delivery.webhookId);
      if (!webhook?.active) return; // deleted or disabled meanwhile: it gets nothing more
      url = webhook.url;
      try {
        const found = await this.store.signingKeys(webhook.id);
        if (!found) return;
        keys = found;
      } catch (err) {
        return this.failed(job, attempt, last, {
          statusCode: null,
          latencyMs: 0,
          error: `not sent: the webhook's secret does not open (${(err as Error).message})`,
          responseBody: null,
          retryAfterMs: null,
        });
      }
    } else {
      url = delivery.url;
      if (!this.config.webhookCallbackKey) {
        return this.failed(job, attempt, last, {
          statusCode: null,
          latencyMs: 0,
          error: 'not sent: WEBHOOK_CALLBACK_SECRET is no longer set',
          responseBody: null,
          retryAfterMs: null,
        });
      }
      keys = [this.config.webhookCallbackKey];
    }

    let result: AttemptResult;
    try {
      const destination = await this.policy.resolve(url);
      const headers = signatureHeaders(
        keys,
        delivery.deliveryId,
        Math.floor(Date.now() / 1000),
        delivery.body,
      );
      result = await postDelivery(
        destination,
        { ...headers },
        delivery.body,
        this.config.webhookTimeoutMs,
      );
    } catch (err) {
      if (!(err instanceof DestinationRefused)) throw err;
      result = {
        statusCode: null,
        latencyMs: 0,
        error: `not sent: the destination is refused: ${err.message}`,
        responseBody: null,
        retryAfterMs: null,
      };
    }

    if (result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300) {
      await this.record(job, attempt, result, true, false);
      if (delivery.kind === 'webhook') await this.store.deliverySucceeded(delivery.webhookId);
      return;
    }
    if (result.statusCode === 410) {
      await this.record(job, attempt, result, false, false);
      if (delivery.kind === 'webhook') await this.disable(delivery.webhookId, 'gone');
      else this.logger.log(`job ${delivery.jobId}: its callback answered 410: not retried`);
      throw new UnrecoverableError('the receiver answered 410 Gone');
    }
    return this.failed(job, attempt, last, result);
  }

  /** A failed attempt: logged, then retried, or (the last) counted against the webhook. */
  private async failed(
    job: Job<Delivery>,
    attempt: number,
    last: boolean,
    result: AttemptResult,
  ): Promise<never> {
    const delivery = job.data;
    await this.record(job, attempt, result, false, !last);
    if (last) {
      if (delivery.kind === 'webhook') {
        const counted = await this.store.deliveryFailed(
          delivery.webhookId,
          this.config.webhookDisableAfterFailures,
        );
        if (counted === 'disabled') await this.announceDisabled(delivery.webhookId, 'failures');
      } else {
        this.logger.warn(
          `job ${delivery.jobId}: its callback failed ${attempt} times, the last: ${result.error ?? ''}`,
        );
      }
      throw new UnrecoverableError(result.error ?? 'the delivery failed');
    }
    throw new AttemptFailed(result.error ?? 'the delivery failed', result.retryAfterMs);
  }

  private async record(
    job: Job<Delivery>,
    attempt: number,
    result: AttemptResult,
    success: boolean,
    willRetry: boolean,
  ): Promise<void> {
    const delivery = job.data;
    if (delivery.kind !== 'webhook') {
      const origin = URL.canParse(delivery.url) ? new URL(delivery.url).origin : '?';
      this.logger.log(
        `job ${delivery.jobId}: callback to ${origin} attempt ${attempt}: ${success ? 'delivered' : (result.error ?? 'failed')}`,
      );
      return;
    }
    await this.log.append(delivery.webhookId, {
      deliveryId: delivery.deliveryId,
      eventId: delivery.eventId,
      eventType: delivery.eventType,
      attempt,
      at: new Date().toISOString(),
      statusCode: result.statusCode,
      latencyMs: result.latencyMs,
      error: result.error,
      responseBody: result.responseBody,
      success,
      willRetry,
      redelivery: delivery.redelivery,
    });
  }

  private async disable(webhookId: string, reason: DisabledReason): Promise<void> {
    if (await this.store.disable(webhookId, reason)) await this.announceDisabled(webhookId, reason);
  }

  /** The event that says a webhook was disabled (once per disabling). */
  private async announceDisabled(webhookId: string, reason: DisabledReason): Promise<void> {
    this.logger.warn(`webhook ${webhookId}: disabled (${reason})`);
    await this.stream.append(newEvent('webhook.disabled', null, { data: { webhookId, reason } }));
  }
}
