import { Inject, Injectable } from '@nestjs/common';
import type { KeyObject } from 'node:crypto';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { Caller, CallerRole, HostScope } from '#src/common/auth/caller.js';
import { SecretBox } from '#src/common/secret-box.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import type { GatewayEvent } from '#src/events/event.js';
import { eventMatcher, eventVisibleTo, type EventFilter } from '#src/events/event-filter.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { signingKeyOf } from './webhook-signature.js';

/** Why a webhook is inactive: turned off, its receiver answered 410, or too many deliveries failed. */
export type DisabledReason = 'manual' | 'gone' | 'failures';

/** Who made a webhook: the events it gets are those this caller may see. */
export interface WebhookOwner {
  id: string;
  role: CallerRole;
  scopes: HostScope[] | null;
}

/** A webhook as the gateway keeps it, its secrets aside. */
export interface WebhookRecord {
  id: string;
  url: string;
  filter: EventFilter;
  active: boolean;
  description: string;
  owner: WebhookOwner;
  createdAt: string;
  updatedAt: string;
  disabledReason: DisabledReason | null;
  disabledAt: string | null;
  /** Deliveries failed in a row (retries exhausted); a success resets it. */
  consecutiveFailures: number;
  secretRotatedAt: string | null;
  /** Until when deliveries are signed with the secret before the last rotation too. */
  previousSecretExpiresAt: string | null;
  /** Only events after this stream id are delivered (the last event when it was created or enabled). */
  deliverAfter: string;
}

export type WebhookPatch = Partial<
  Pick<
    WebhookRecord,
    'url' | 'filter' | 'active' | 'description' | 'disabledReason' | 'disabledAt' | 'deliverAfter'
  >
> & { consecutiveFailures?: number };

/** What a webhook gets: what its filter matches, of what its owner may see (the scope rule). */
export function subscriptionMatcher(record: WebhookRecord): (e: GatewayEvent) => boolean {
  const matches = eventMatcher(record.filter);
  const owner: Caller = { ...record.owner, requestId: `webhook:${record.id}` };
  return (e) => matches(e) && eventVisibleTo(owner, e);
}

/** The context a webhook's sealed secrets are bound to. */
const sealContext = (id: string): string => `webhook:${id}`;

/**
 * Sets fields of a webhook's hash only if it exists, and raises the version.
 * KEYS: 1 the hash, 2 the version. ARGV: field, value, …
 */
const UPDATE = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('INCR', KEYS[2])
return 1`;

/**
 * Disables an active webhook (once: 0 when it was not active or is gone).
 * KEYS: 1 the hash, 2 the version. ARGV: 1 reason, 2 now (ISO).
 */
const DISABLE = `if redis.call('HGET', KEYS[1], 'active') ~= '1' then return 0 end
redis.call('HSET', KEYS[1], 'active', '0', 'disabledReason', ARGV[1], 'disabledAt', ARGV[2], 'updatedAt', ARGV[2])
redis.call('INCR', KEYS[2])
return 1`;

/**
 * Counts a failed delivery; disables the webhook when the run reaches the
 * threshold (0: never). Returns 0 (gone), 1 (counted) or 2 (disabled now).
 * KEYS: 1 the hash, 2 the version. ARGV: 1 threshold, 2 now (ISO).
 */
const FAILED = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'consecutiveFailures', 1)
local limit = tonumber(ARGV[1])
if limit > 0 and n >= limit and redis.call('HGET', KEYS[1], 'active') == '1' then
  redis.call('HSET', KEYS[1], 'active', '0', 'disabledReason', 'failures', 'disabledAt', ARGV[2], 'updatedAt', ARGV[2])
  redis.call('INCR', KEYS[2])
  return 2
end
return 1`;

/**
 * Rotates the secret: the current one becomes the previous one until
 * `expiresAtMs`. KEYS: 1 the hash, 2 the version. ARGV: 1 the new sealed
 * secret, 2 the previous one's expiry (ms), 3 now (ISO).
 */
const ROTATE = `local current = redis.call('HGET', KEYS[1], 'secret')
if not current then return 0 end
redis.call('HSET', KEYS[1], 'previousSecret', current, 'previousSecretExpiresAtMs', ARGV[2], 'secret', ARGV[1], 'secretRotatedAt', ARGV[3], 'updatedAt', ARGV[3])
redis.call('INCR', KEYS[2])
return 1`;

/**
 * The webhooks in Redis: one hash per webhook (its secrets sealed with
 * VIRTGATE_SECRETS_KEY, src/common/secret-box.ts; never in clear), an index by
 * creation, and a version raised by every change so that dispatchers reload
 * only when something changed.
 */
@Injectable()
export class WebhookStore {
  private readonly box: SecretBox | null;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.box = config.secretsKey ? new SecretBox(config.secretsKey) : null;
  }

  /** Whether secrets can be sealed here (VIRTGATE_SECRETS_KEY is set). */
  get canSeal(): boolean {
    return this.box !== null;
  }

  async create(record: WebhookRecord, secret: string): Promise<void> {
    const box = this.requireBox();
    await this.redis
      .multi()
      .hset(this.keys.webhook(record.id), {
        ...encode(record),
        secret: box.seal(secret, sealContext(record.id)),
      })
      .zadd(this.keys.webhooks, Date.parse(record.createdAt), record.id)
      .incr(this.keys.webhooksVersion)
      .exec();
  }

  async get(id: string): Promise<WebhookRecord | null> {
    return decode(await this.redis.hgetall(this.keys.webhook(id)));
  }

  /** Every webhook, by creation. */
  async all(): Promise<WebhookRecord[]> {
    const ids = await this.redis.zrange(this.keys.webhooks, 0, -1);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.webhook(id));
    const out: WebhookRecord[] = [];
    for (const [err, fields] of (await pipeline.exec()) ?? []) {
      if (err) throw err;
      const record = decode(fields as Record<string, string>);
      if (record) out.push(record);
    }
    return out;
  }

  /** The version of the set of webhooks: it changes with every change to any of them. */
  async version(): Promise<string> {
    return (await this.redis.get(this.keys.webhooksVersion)) ?? '0';
  }

  /** Applies a change to an existing webhook; false when it is gone. */
  async update(id: string, patch: WebhookPatch): Promise<boolean> {
    const fields = encode({ ...patch, updatedAt: new Date().toISOString() });
    const done = await this.redis.eval(
      UPDATE,
      2,
      this.keys.webhook(id),
      this.keys.webhooksVersion,
      ...Object.entries(fields).flat(),
    );
    return done === 1;
  }

  async delete(id: string): Promise<boolean> {
    const [[, removed] = []] =
      (await this.redis
        .multi()
        .zrem(this.keys.webhooks, id)
        .del(this.keys.webhook(id), this.keys.webhookDeliveries(id))
        .incr(this.keys.webhooksVersion)
        .exec()) ?? [];
    return removed === 1;
  }

  /** Makes `secret` the signing secret; the one before still signs for `graceSeconds`. */
  async rotate(id: string, secret: string, graceSeconds: number): Promise<Date | null> {
    const box = this.requireBox();
    const expires = new Date(Date.now() + graceSeconds * 1000);
    const done = await this.redis.eval(
      ROTATE,
      2,
      this.keys.webhook(id),
      this.keys.webhooksVersion,
      box.seal(secret, sealContext(id)),
      String(expires.getTime()),
      new Date().toISOString(),
    );
    return done === 1 ? expires : null;
  }

  /** Disables an active webhook; true only for the call that did (so one event says so). */
  async disable(id: string, reason: DisabledReason): Promise<boolean> {
    const done = await this.redis.eval(
      DISABLE,
      2,
      this.keys.webhook(id),
      this.keys.webhooksVersion,
      reason,
      new Date().toISOString(),
    );
    return done === 1;
  }

  /** Counts a failed delivery; 'disabled' when this one made the run reach `threshold`. */
  async deliveryFailed(id: string, threshold: number): Promise<'gone' | 'counted' | 'disabled'> {
    const done = await this.redis.eval(
      FAILED,
      2,
      this.keys.webhook(id),
      this.keys.webhooksVersion,
      String(threshold),
      new Date().toISOString(),
    );
    return done === 2 ? 'disabled' : done === 1 ? 'counted' : 'gone';
  }

  /** A delivery succeeded: the run of failures is over. */
  async deliverySucceeded(id: string): Promise<void> {
    await this.redis.eval(
      `if redis.call('HGET', KEYS[1], 'consecutiveFailures') ~= '0' and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'consecutiveFailures', '0') end return 0`,
      1,
      this.keys.webhook(id),
    );
  }

  /**
   * The HMAC keys that sign a delivery now: the current secret's, then the
   * previous one's while its grace period lasts. Throws when the secrets do
   * not open (no VIRTGATE_SECRETS_KEY, or another one than sealed them).
   */
  async signingKeys(id: string, now = Date.now()): Promise<KeyObject[] | null> {
    const [secret, previous, expiresMs] = await this.redis.hmget(
      this.keys.webhook(id),
      'secret',
      'previousSecret',
      'previousSecretExpiresAtMs',
    );
    if (!secret) return null;
    const box = this.requireBox();
    const keys = [signingKeyOf(box.open(secret, sealContext(id)))];
    if (previous && Number(expiresMs) > now) {
      keys.push(signingKeyOf(box.open(previous, sealContext(id))));
    }
    return keys;
  }

  private requireBox(): SecretBox {
    if (!this.box)
      throw new Error(
        'VIRTGATE_SECRETS_KEY is not set: webhook secrets cannot be sealed or opened',
      );
    return this.box;
  }
}

function encode(patch: Partial<WebhookRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined || key === 'previousSecretExpiresAt') continue;
    if (key === 'active') out[key] = value ? '1' : '0';
    else if (key === 'filter' || key === 'owner') out[key] = JSON.stringify(value);
    else if (value === null) out[key] = '';
    else out[key] = String(value);
  }
  return out;
}

function decode(fields: Record<string, string>): WebhookRecord | null {
  if (!fields.id || !fields.url) return null;
  const expiresMs = Number(fields.previousSecretExpiresAtMs ?? '');
  return {
    id: fields.id,
    url: fields.url,
    filter: JSON.parse(fields.filter ?? '{}') as EventFilter,
    active: fields.active === '1',
    description: fields.description ?? '',
    owner: JSON.parse(fields.owner ?? 'null') as WebhookOwner,
    createdAt: fields.createdAt ?? '',
    updatedAt: fields.updatedAt ?? fields.createdAt ?? '',
    disabledReason: (fields.disabledReason || null) as DisabledReason | null,
    disabledAt: fields.disabledAt || null,
    consecutiveFailures: Number(fields.consecutiveFailures ?? '0') || 0,
    secretRotatedAt: fields.secretRotatedAt || null,
    previousSecretExpiresAt: expiresMs > 0 ? new Date(expiresMs).toISOString() : null,
    deliverAfter: fields.deliverAfter || '0-0',
  };
}
