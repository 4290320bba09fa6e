import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { duplicateConnection, type RedisClient } from '#src/redis/redis-connection.js';
import { REDIS, REDIS_KEYS } from '../redis/redis.module.js';
import type { RedisKeys } from '../redis/keys.js';
import type { GatewayEvent } from './event.js';
import { EVENT_STREAM, compareCursors, decodeEntry, type EventStream } from './event-stream.js';

/** What a subscriber does with events, in order; a promise holds back its catch-up until it settles. */
export type EventSink = (events: GatewayEvent[]) => void | Promise<void>;

export interface FeedSubscription {
  close(): void;
  readonly closed: boolean;
}

interface Subscriber {
  /** The id of the last event handed over, or the cursor it started after. */
  delivered: string;
  /** Caught up: events from the tail go straight to the sink. */
  live: boolean;
  /** Events the tail read while the subscriber caught up from its cursor. */
  buffer: GatewayEvent[];
  accept: (e: GatewayEvent) => boolean;
  sink: EventSink;
  onError: (err: unknown) => void;
  closed: boolean;
}

const BLOCK_MS = 5000;
const READ_COUNT = 1000;
const CATCH_UP_CHUNK = 500;

/**
 * This process's reading of the event stream: one blocking reader (a
 * connection of its own) follows the stream's end and hands what comes to
 * every subscriber (SSE clients, GraphQL subscriptions, the webhook
 * dispatcher). A subscriber that starts from a cursor first catches up with
 * plain range reads, while what the reader brings meanwhile waits in its
 * buffer; then it goes live. Each event reaches a subscriber once, in order,
 * with no gap, whatever the timing of the two.
 */
@Injectable()
export class EventFeed implements OnApplicationShutdown {
  private readonly logger = new Logger(EventFeed.name);
  private readonly subscribers = new Set<Subscriber>();
  private reader: RedisClient | null = null;
  private started: Promise<void> | null = null;
  private lastId = '0-0';
  private closed = false;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(EVENT_STREAM) private readonly stream: EventStream,
  ) {}

  /**
   * Hands `sink` every event after `after` (exclusive; null: from now) that
   * `accept` takes, then every new one as it comes, until closed. `after`
   * should have been checked (EventStream.checkCursor). `onError` hears a
   * failed catch-up (the subscription is then closed).
   */
  async subscribe(
    after: string | null,
    accept: (e: GatewayEvent) => boolean,
    sink: EventSink,
    onError: (err: unknown) => void = () => {},
  ): Promise<FeedSubscription> {
    await this.start();
    const sub: Subscriber = {
      delivered: after ?? this.lastId,
      live: after === null,
      buffer: [],
      accept,
      sink,
      onError,
      closed: false,
    };
    this.subscribers.add(sub);
    const subscription: FeedSubscription = {
      close: () => {
        sub.closed = true;
        this.subscribers.delete(sub);
      },
      get closed() {
        return sub.closed;
      },
    };
    if (!sub.live) {
      this.catchUp(sub).catch((err: unknown) => {
        subscription.close();
        sub.onError(err);
      });
    }
    return subscription;
  }

  /** The id of the newest event this process's reader has handed on. */
  get position(): string {
    return this.lastId;
  }

  /** Subscribers now (for metrics and tests). */
  get size(): number {
    return this.subscribers.size;
  }

  onApplicationShutdown(): void {
    this.closed = true;
    for (const sub of this.subscribers) sub.closed = true;
    this.subscribers.clear();
    this.reader?.disconnect();
  }

  private async catchUp(sub: Subscriber): Promise<void> {
    for (;;) {
      const rows = await this.stream.range(sub.delivered, CATCH_UP_CHUNK);
      if (sub.closed) return;
      if (rows.length > 0) await this.hand(sub, rows);
      if (rows.length < CATCH_UP_CHUNK) break;
    }
    // What the reader brought meanwhile, less what the range reads gave already.
    const buffered = sub.buffer;
    sub.buffer = [];
    sub.live = true;
    if (buffered.length > 0) await this.hand(sub, buffered);
  }

  /** Hands events after what `sub` has had, filtered; returns the sink's promise, if any. */
  private hand(sub: Subscriber, events: GatewayEvent[]): Promise<void> | void {
    const fresh = events.filter((e) => compareCursors(e.id, sub.delivered) > 0);
    if (fresh.length === 0) return;
    sub.delivered = fresh[fresh.length - 1]!.id;
    const accepted = fresh.filter(sub.accept);
    if (accepted.length === 0) return;
    return sub.sink(accepted);
  }

  private start(): Promise<void> {
    this.started ??= (async () => {
      this.lastId = await this.stream.latest();
      this.reader = duplicateConnection(this.redis, 'virtgate-event-feed');
      void this.follow(this.reader);
    })().catch((err: unknown) => {
      this.started = null;
      throw err;
    });
    return this.started;
  }

  private async follow(reader: RedisClient): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        const reply = (await reader.xread(
          'COUNT',
          READ_COUNT,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.keys.events,
          this.lastId,
        )) as [string, [string, string[]][]][] | null;
        failures = 0;
        const rows = reply?.[0]?.[1] ?? [];
        if (rows.length === 0) continue;
        const events = rows.map(([id, fields]) => decodeEntry(id, fields));
        this.lastId = events[events.length - 1]!.id;
        this.dispatch(events);
      } catch (err) {
        if (this.closed) return;
        if (failures++ === 0) {
          this.logger.warn(`reading the event stream failed: ${(err as Error).message}; retrying`);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 5000)));
      }
    }
  }

  private dispatch(events: GatewayEvent[]): void {
    for (const sub of this.subscribers) {
      if (!sub.live) {
        sub.buffer.push(...events);
        continue;
      }
      try {
        const pending = this.hand(sub, events);
        if (pending) pending.catch((err: unknown) => sub.onError(err));
      } catch (err) {
        sub.onError(err);
      }
    }
  }
}
