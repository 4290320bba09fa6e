import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { Caller } from '#src/common/auth/caller.js';
import { AppError, ErrorCode, invalidField } from '#src/common/errors/app-error.js';
import { paginate, type Page } from '#src/common/pagination.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import type { GatewayEvent } from '#src/events/event.js';
import { checkEventFilter, type EventFilter } from '#src/events/event-filter.js';
import { decodeEntry, EVENT_STREAM, type EventStream } from '#src/events/event-stream.js';
import { DestinationPolicy, DestinationRefused } from '#src/net/destination-policy.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { DeliveryLog, type DeliveryAttempt } from './delivery-log.js';
import { DeliveryQueue, webhookDelivery, type Delivery } from './delivery-queue.js';
import { generateSecret } from './webhook-signature.js';
import {
  subscriptionMatcher,
  WebhookStore,
  type WebhookPatch,
  type WebhookRecord,
} from './webhook-store.js';

export interface NewWebhook {
  url: string;
  filter?: EventFilter;
  active?: boolean;
  description?: string;
}

export type WebhookChange = Partial<NewWebhook>;

export interface Redelivery {
  queued: number;
  deliveryIds: string[];
  truncated: boolean;
  lastEventId: string | null;
}

/** Most deliveries one time-range redelivery queues. */
const MAX_REDELIVER = 10_000;
/** Most events one time-range redelivery reads. */
const MAX_SCAN = 200_000;
const CHUNK = 1000;

/**
 * Webhooks for admins: made, listed, changed, deleted; the secret made at
 * creation and shown once, rotated with a grace period; the delivery log and
 * redeliveries. A scoped admin sees and manages the webhooks it made, and
 * they get only the events its scope covers.
 */
@Injectable()
export class WebhooksService {
  private readonly policy: DestinationPolicy;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(EVENT_STREAM) private readonly stream: EventStream,
    private readonly store: WebhookStore,
    private readonly log: DeliveryLog,
    private readonly queue: DeliveryQueue,
  ) {
    this.policy = new DestinationPolicy({
      allowed: config.webhookAllowedCidrs,
      denied: config.webhookDeniedCidrs,
    });
  }

  /** Makes a webhook; its secret, shown only now. */
  async create(
    caller: Caller,
    input: NewWebhook,
  ): Promise<{ record: WebhookRecord; secret: string }> {
    const url = await this.checkUrl(input.url);
    const filter = checkFilter(input.filter);
    if (!this.store.canSeal) {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        'webhooks need VIRTGATE_SECRETS_KEY set on the gateway (the base64 of 32 random bytes): their signing secrets are kept encrypted with it, and this gateway has none',
      );
    }
    const now = new Date().toISOString();
    const active = input.active ?? true;
    const record: WebhookRecord = {
      id: `wh_${randomBytes(9).toString('base64url')}`,
      url,
      filter,
      active,
      description: input.description ?? '',
      owner: {
        id: caller.id,
        role: caller.role,
        scopes: caller.scopes ? [...caller.scopes] : null,
      },
      createdAt: now,
      updatedAt: now,
      disabledReason: active ? null : 'manual',
      disabledAt: active ? null : now,
      consecutiveFailures: 0,
      secretRotatedAt: null,
      previousSecretExpiresAt: null,
      deliverAfter: await this.stream.latest(),
    };
    const secret = generateSecret();
    await this.store.create(record, secret);
    return { record, secret };
  }

  async list(caller: Caller, limit: number, cursor?: string): Promise<Page<WebhookRecord>> {
    const records = (await this.store.all()).filter((r) => visibleTo(caller, r));
    records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return paginate(records, (r) => r.id, limit, cursor);
  }

  async get(caller: Caller, id: string): Promise<WebhookRecord> {
    const record = await this.store.get(id);
    if (!record || !visibleTo(caller, record)) {
      throw new AppError(ErrorCode.NOT_FOUND, `no webhook with id "${id.slice(0, 64)}"`);
    }
    return record;
  }

  async update(caller: Caller, id: string, change: WebhookChange): Promise<WebhookRecord> {
    const record = await this.get(caller, id);
    const patch: WebhookPatch = {};
    if (Object.values(change).every((v) => v === undefined)) {
      throw new AppError(
        ErrorCode.INVALID_ARGUMENT,
        'nothing to change: give url, filter, active or description',
      );
    }
    if (change.url !== undefined) patch.url = await this.checkUrl(change.url);
    if (change.filter !== undefined) patch.filter = checkFilter(change.filter);
    if (change.description !== undefined) patch.description = change.description;
    if (change.active === true && !record.active) {
      Object.assign(patch, {
        active: true,
        disabledReason: null,
        disabledAt: null,
        consecutiveFailures: 0,
        deliverAfter: await this.stream.latest(),
      });
    } else if (change.active === false && record.active) {
      Object.assign(patch, {
        active: false,
        disabledReason: 'manual',
        disabledAt: new Date().toISOString(),
      });
    }
    await this.store.update(id, patch);
    return this.get(caller, id); // 404 when it went meanwhile
  }

  async delete(caller: Caller, id: string): Promise<void> {
    await this.get(caller, id);
    await this.store.delete(id);
  }

  /** A new secret, shown only now; the old one signs too for WEBHOOK_ROTATION_GRACE_SECONDS. */
  async rotate(
    caller: Caller,
    id: string,
  ): Promise<{ secret: string; previousSecretExpiresAt: string }> {
    await this.get(caller, id);
    if (!this.store.canSeal) {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        'rotating a secret needs VIRTGATE_SECRETS_KEY set on the gateway (the base64 of 32 random bytes)',
      );
    }
    const secret = generateSecret();
    const expires = await this.store.rotate(id, secret, this.config.webhookRotationGraceSeconds);
    if (!expires) throw new AppError(ErrorCode.NOT_FOUND, `no webhook with id "${id}"`);
    return { secret, previousSecretExpiresAt: expires.toISOString() };
  }

  async deliveries(
    caller: Caller,
    id: string,
    limit: number,
    cursor?: string,
  ): Promise<Page<DeliveryAttempt>> {
    await this.get(caller, id);
    return this.log.page(id, limit, cursor);
  }

  /** Delivers again the event of one delivery the log holds (a new run of attempts, the same webhook-id). */
  async redeliverOne(caller: Caller, id: string, deliveryId: string): Promise<Redelivery> {
    const record = this.requireActive(await this.get(caller, id));
    const attempt = await this.log.find(record.id, deliveryId);
    if (!attempt) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `the delivery log of webhook ${record.id} holds no delivery "${deliveryId.slice(0, 64)}"`,
      );
    }
    const event = await this.event(attempt.eventId);
    return this.enqueue([webhookDelivery(record.id, event, true)], false);
  }

  /** Delivers again every retained event of a time range that the webhook gets. */
  async redeliverRange(
    caller: Caller,
    id: string,
    since: string,
    until: string | undefined,
  ): Promise<Redelivery> {
    const record = this.requireActive(await this.get(caller, id));
    const sinceMs = Date.parse(since);
    const untilMs = until === undefined ? Date.now() : Date.parse(until);
    if (untilMs < sinceMs) throw invalidField('until', 'must not be before since');
    const matches = subscriptionMatcher(record);
    const deliveries: Delivery[] = [];
    let start = `${Math.max(0, sinceMs)}-0`;
    let scanned = 0;
    let truncated = false;
    for (;;) {
      const rows = (await this.redis.xrange(
        this.keys.events,
        start,
        String(Math.max(0, untilMs)),
        'COUNT',
        CHUNK,
      )) as [string, string[]][];
      for (const [entryId, fields] of rows) {
        scanned++;
        const event = decodeEntry(entryId, fields);
        if (!matches(event)) continue;
        if (deliveries.length === MAX_REDELIVER) {
          truncated = true;
          break;
        }
        deliveries.push(webhookDelivery(record.id, event, true));
      }
      if (truncated || rows.length < CHUNK) break;
      if (scanned >= MAX_SCAN) {
        truncated = true;
        break;
      }
      start = `(${rows.at(-1)![0]}`;
    }
    return this.enqueue(deliveries, truncated);
  }

  private async enqueue(deliveries: Delivery[], truncated: boolean): Promise<Redelivery> {
    for (let i = 0; i < deliveries.length; i += CHUNK) {
      await this.queue.add(deliveries.slice(i, i + CHUNK));
    }
    return {
      queued: deliveries.length,
      deliveryIds: deliveries.slice(0, 100).map((d) => d.deliveryId),
      truncated,
      lastEventId: deliveries.at(-1)?.eventId ?? null,
    };
  }

  private requireActive(record: WebhookRecord): WebhookRecord {
    if (!record.active) {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        `webhook ${record.id} is disabled (${record.disabledReason ?? 'manual'}): enable it first (PATCH active: true)`,
      );
    }
    return record;
  }

  /** One retained event of the stream. */
  private async event(eventId: string): Promise<GatewayEvent> {
    const rows = (await this.redis.xrange(this.keys.events, eventId, eventId)) as [
      string,
      string[],
    ][];
    const row = rows[0];
    if (!row) {
      throw new AppError(
        ErrorCode.CURSOR_EXPIRED,
        `event ${eventId} is no longer retained (EVENTS_RETENTION_*): it cannot be delivered again`,
        { oldestEventId: await this.stream.oldest() },
      );
    }
    return decodeEntry(row[0], row[1]);
  }

  /** A webhook URL, checked (its name resolved, every address allowed); its normalised form. */
  private async checkUrl(raw: string): Promise<string> {
    try {
      return (await this.policy.resolve(raw)).url.href;
    } catch (err) {
      if (err instanceof DestinationRefused) throw invalidField('url', err.message);
      throw err;
    }
  }
}

function checkFilter(filter: EventFilter | undefined): EventFilter {
  const checked = checkEventFilter(filter ?? {}, (key) => `filter.${key}`);
  // Only the lists given: an absent one matches all.
  return Object.fromEntries(
    Object.entries(checked).filter(([, v]) => v !== undefined),
  ) as EventFilter;
}

/** An unscoped admin sees every webhook; a scoped one those it made. */
function visibleTo(caller: Caller, record: WebhookRecord): boolean {
  return caller.scopes === null || record.owner.id === caller.id;
}
