import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { duplicateConnection, type RedisClient } from '#src/redis/redis-connection.js';
import { JobCallbacks } from '#jobs/job-callback.js';
import { withDeadline } from '#jobs/queues.js';
import { TERMINAL_STATES, type JobState } from '#jobs/job-types.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import type { GatewayEvent } from '#src/events/event.js';
import { compareCursors, decodeEntry } from '#src/events/event-stream.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import {
  DeliveryQueue,
  deliveryBody,
  deliveryIdOf,
  webhookDelivery,
  type Delivery,
} from './delivery-queue.js';
import { subscriptionMatcher, WebhookStore, type WebhookRecord } from './webhook-store.js';

/** The consumer group of the dispatchers on the event stream. */
export const DISPATCH_GROUP = 'webhook-dispatch';

const READ_COUNT = 200;
/** How long the shutdown waits for the loop to end. */
const SHUTDOWN_WAIT_MS = 10_000;
const MAX_BLOCK_MS = 2000;
/** A consumer idle this long with nothing pending is forgotten (a worker that is gone). */
const FORGET_CONSUMER_MS = 3_600_000;

/** A webhook ready to match events. */
interface Subscription {
  record: WebhookRecord;
  matches: (e: GatewayEvent) => boolean;
}

/**
 * Reads the event stream for the webhooks (worker role), as a member of one
 * Redis consumer group: the workers share the stream, each entry goes to one
 * of them, and an entry a dead worker left unacknowledged is claimed by
 * another (XAUTOCLAIM) once it has been pending JOB_LOCK_MS (the time after
 * which a dead worker's jobs go to another too). For each event it queues a
 * delivery to every active webhook whose filter matches and whose owner may
 * see the event, and, for a job's final state change, to the job's callback;
 * then it acknowledges the entry. A delivery's queue id is derived from
 * (webhook or job, event), so an entry handled twice is delivered once.
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('WebhookDispatcher');
  private readonly consumer = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  private reader: RedisClient | null = null;
  private closed = false;
  private running: Promise<void> | null = null;
  private version: string | null = null;
  private subscriptions: Subscription[] = [];
  private lastReclaim = 0;
  /** An entry a consumer holds unacknowledged this long is taken over (its worker died). */
  private readonly reclaimIdleMs: number;
  private readonly reclaimEveryMs: number;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly store: WebhookStore,
    private readonly queue: DeliveryQueue,
    private readonly callbacks: JobCallbacks,
  ) {
    this.reclaimIdleMs = config.jobLockMs;
    this.reclaimEveryMs = Math.max(250, Math.floor(config.jobLockMs / 2));
  }

  onApplicationBootstrap(): void {
    this.reader = duplicateConnection(this.redis, 'virtgate-webhook-dispatch');
    this.running = this.run(this.reader);
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    this.reader?.disconnect();
    // The loop ends at its next turn; a batch it is handing out may take a while, not forever.
    await withDeadline(this.running ?? Promise.resolve(), SHUTDOWN_WAIT_MS);
  }

  private async run(reader: RedisClient): Promise<void> {
    let failures = 0;
    let grouped = false;
    while (!this.closed) {
      try {
        if (!grouped) {
          await this.ensureGroup();
          grouped = true;
        }
        if (Date.now() - this.lastReclaim >= this.reclaimEveryMs) {
          this.lastReclaim = Date.now();
          await this.reclaim();
        }
        const reply = (await reader.xreadgroup(
          'GROUP',
          DISPATCH_GROUP,
          this.consumer,
          'COUNT',
          READ_COUNT,
          'BLOCK',
          Math.min(MAX_BLOCK_MS, this.reclaimEveryMs),
          'STREAMS',
          this.keys.events,
          '>',
        )) as [string, [string, string[]][]][] | null;
        failures = 0;
        const rows = reply?.[0]?.[1] ?? [];
        if (rows.length > 0) await this.handle(rows);
      } catch (err) {
        if (this.closed) return;
        const message = (err as Error).message;
        if (message.includes('NOGROUP')) grouped = false; // the stream was deleted
        if (failures++ === 0) {
          this.logger.warn(`reading the event stream failed: ${message}; retrying`);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 5000)));
      }
    }
  }

  /** The group, created at the stream's end the first time (events before it are not for webhooks). */
  private async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.keys.events, DISPATCH_GROUP, '$', 'MKSTREAM');
    } catch (err) {
      if (!(err as Error).message.includes('BUSYGROUP')) throw err;
    }
  }

  /** Takes over the entries consumers left pending too long, and forgets consumers long gone. */
  private async reclaim(): Promise<void> {
    let start = '0-0';
    for (let round = 0; round < 50; round++) {
      const [next, rows] = (await this.redis.xautoclaim(
        this.keys.events,
        DISPATCH_GROUP,
        this.consumer,
        this.reclaimIdleMs,
        start,
        'COUNT',
        READ_COUNT,
      )) as [string, [string, string[] | null][], string[]?];
      const live = rows.filter((r): r is [string, string[]] => Array.isArray(r[1]));
      if (live.length > 0) {
        this.logger.log(`taking over ${live.length} event(s) another dispatcher left pending`);
        await this.handle(live);
      }
      if (next === '0-0') break;
      start = next;
    }
    const consumers = (await this.redis.xinfo('CONSUMERS', this.keys.events, DISPATCH_GROUP)) as
      unknown[][] | null;
    for (const entry of consumers ?? []) {
      const info = fieldsOf(entry);
      if (
        info.name !== this.consumer &&
        Number(info.pending) === 0 &&
        Number(info.idle) > FORGET_CONSUMER_MS
      ) {
        await this.redis.xgroup('DELCONSUMER', this.keys.events, DISPATCH_GROUP, String(info.name));
      }
    }
  }

  /** Queues the deliveries of a batch of entries, then acknowledges them. */
  private async handle(rows: [string, string[]][]): Promise<void> {
    const events = rows.map(([id, fields]) => decodeEntry(id, fields));
    const subscriptions = await this.current();
    const deliveries: Delivery[] = [];
    for (const event of events) {
      for (const { record, matches } of subscriptions) {
        if (compareCursors(event.id, record.deliverAfter) > 0 && matches(event)) {
          deliveries.push(webhookDelivery(record.id, event));
        }
      }
    }
    deliveries.push(...(await this.callbackDeliveries(events)));
    await this.queue.add(deliveries);
    await this.redis.xack(this.keys.events, DISPATCH_GROUP, ...rows.map(([id]) => id));
  }

  /** The deliveries to the callbacks of the jobs whose final state change is in `events`. */
  private async callbackDeliveries(events: GatewayEvent[]): Promise<Delivery[]> {
    const ended = events.filter(
      (e) =>
        e.type === 'job.state-changed' &&
        e.job !== null &&
        TERMINAL_STATES.has(e.job.state as JobState),
    );
    const urls = await this.callbacks.of(ended.map((e) => e.job!.id));
    const out: Delivery[] = [];
    for (const [i, event] of ended.entries()) {
      const jobId = event.job!.id;
      const url = urls[i];
      if (url === null || url === undefined) continue;
      out.push({
        kind: 'callback',
        jobId,
        url,
        deliveryId: deliveryIdOf(`job ${jobId}`, event.id),
        eventId: event.id,
        eventType: event.type,
        body: deliveryBody(event),
        redelivery: false,
      });
    }
    return out;
  }

  /** The active webhooks, reloaded when their version changed. */
  private async current(): Promise<Subscription[]> {
    const version = await this.store.version();
    if (version === this.version) return this.subscriptions;
    const records = await this.store.all();
    this.subscriptions = records
      .filter((r) => r.active)
      .map((record) => ({ record, matches: subscriptionMatcher(record) }));
    this.version = version;
    return this.subscriptions;
  }
}

/** XINFO's flat [name, value, …] list as an object. */
function fieldsOf(entry: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < entry.length; i += 2) out[String(entry[i])] = entry[i + 1];
  return out;
}
