import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { invalidField } from '#src/common/errors/app-error.js';
import { decodeCursor, encodeCursor, type Page } from '#src/common/pagination.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';

/** One delivery attempt, as the log keeps it. */
export interface DeliveryAttempt {
  /** The log entry's id (its place in the log). */
  id: string;
  /** The delivery: one event to one webhook, the same across its retries (its webhook-id header). */
  deliveryId: string;
  eventId: string;
  eventType: string;
  /** 1 for the first attempt of the delivery (or of a redelivery), then 2, 3… */
  attempt: number;
  /** When the attempt was made (ISO 8601). */
  at: string;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  /** The first bytes (1 KiB) of the response body, as text. */
  responseBody: string | null;
  success: boolean;
  /** Whether another attempt follows (by the retry schedule). */
  willRetry: boolean;
  /** Whether the attempt belongs to a redelivery asked for through the API. */
  redelivery: boolean;
}

/** Appends an attempt only while its webhook exists (a deleted one's log must not come back). */
const APPEND = `if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
return redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], '*', 'a', ARGV[2])`;

/** Most log entries read when looking for one delivery. */
const FIND_CHUNK = 500;

/**
 * Each webhook's delivery log: a Redis stream of attempts, newest last, kept
 * to the last WEBHOOK_DELIVERY_LOG_SIZE entries (trimmed as attempts come).
 */
@Injectable()
export class DeliveryLog {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async append(webhookId: string, attempt: Omit<DeliveryAttempt, 'id'>): Promise<void> {
    await this.redis.eval(
      APPEND,
      2,
      this.keys.webhook(webhookId),
      this.keys.webhookDeliveries(webhookId),
      this.config.webhookDeliveryLogSize,
      JSON.stringify(attempt),
    );
  }

  /** The attempts, newest first. */
  async page(webhookId: string, limit: number, cursor?: string): Promise<Page<DeliveryAttempt>> {
    const after = cursor === undefined ? null : decodeCursor(cursor);
    if (after !== null && !/^\d{1,15}-\d{1,19}$/.test(after)) {
      throw invalidField('cursor', 'cursor is not a cursor this API returned');
    }
    const start = after === null ? '+' : `(${after}`;
    const rows = (await this.redis.xrevrange(
      this.keys.webhookDeliveries(webhookId),
      start,
      '-',
      'COUNT',
      limit + 1,
    )) as [string, string[]][];
    const items = rows.slice(0, limit).map(([id, fields]) => attemptOf(id, fields));
    return {
      items,
      nextCursor: rows.length > limit && items.length > 0 ? encodeCursor(items.at(-1)!.id) : null,
    };
  }

  /** The newest attempt of a delivery, or null when the log holds none. */
  async find(webhookId: string, deliveryId: string): Promise<DeliveryAttempt | null> {
    let start = '+';
    for (;;) {
      const rows = (await this.redis.xrevrange(
        this.keys.webhookDeliveries(webhookId),
        start,
        '-',
        'COUNT',
        FIND_CHUNK,
      )) as [string, string[]][];
      for (const [id, fields] of rows) {
        const attempt = attemptOf(id, fields);
        if (attempt.deliveryId === deliveryId) return attempt;
      }
      if (rows.length < FIND_CHUNK) return null;
      start = `(${rows.at(-1)![0]}`;
    }
  }
}

function attemptOf(id: string, fields: string[]): DeliveryAttempt {
  const json = fields[fields.indexOf('a') + 1] ?? '{}';
  return { id, ...(JSON.parse(json) as Omit<DeliveryAttempt, 'id'>) };
}
