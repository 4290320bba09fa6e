import type { RedisClient } from '#src/redis/redis-connection.js';
import { AppError, ErrorCode, invalidField } from '../common/errors/app-error.js';
import type { RedisKeys } from '../redis/keys.js';
import type { GatewayEvent, NewEvent } from './event.js';

/**
 * A Lua function that appends one event (its JSON) to the stream and trims
 * the stream to `maxlen` entries, noting the newest entry it trimmed (so a
 * cursor before it is known to have expired: Redis does not note what
 * trimming removed). Embedded by every script that appends an event in the
 * same step as another change (the job store's updates), so the event and
 * the change are one.
 */
export const APPEND_EVENT_LUA = `local function append_event(stream, trimmed, maxlen, json)
  local id = redis.call('XADD', stream, '*', 'e', json)
  local excess = math.min(redis.call('XLEN', stream) - maxlen, 1000)
  if excess > 0 then
    local rows = redis.call('XRANGE', stream, '-', '+', 'COUNT', excess + 1)
    redis.call('SET', trimmed, rows[excess][1])
    redis.call('XTRIM', stream, 'MINID', rows[excess + 1][1])
  end
  return id
end
`;

/** KEYS: 1 the stream, 2 its trimmed-through key. ARGV: 1 maxlen, 2… the events' JSON. */
const APPEND = `${APPEND_EVENT_LUA}
local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = append_event(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[i]) end
return ids`;

/** KEYS: 1 the stream, 2 its trimmed-through key. ARGV: 1 the cutoff id: entries before it go. */
const TRIM_BEFORE = `local rows = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[1], '-', 'COUNT', 1)
if #rows == 0 then return 0 end
redis.call('SET', KEYS[2], rows[1][1])
return redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])`;

export interface EventRetention {
  /** Most events kept (the oldest go as new ones come). */
  maxLength: number;
  /** Longest an event is kept, in ms (trimmed by `trimByAge`, which a timer calls). */
  maxAgeMs: number;
}

/** Injection token of the process's EventStream. */
export const EVENT_STREAM = Symbol('EVENT_STREAM');

/** A stream id, `<ms>-<seq>`. */
export const CURSOR = /^(\d{1,15})-(\d{1,19})$/;

export function isCursor(value: string): boolean {
  return CURSOR.test(value);
}

/** The greatest stream id before `id` (`5-0` gives `4-18446744073709551615`). */
export function cursorBefore(id: string): string {
  const [ms, seq] = id.split('-').map((x) => BigInt(x)) as [bigint, bigint];
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-18446744073709551615` : '0-0';
}

/** Orders two stream ids (-1, 0, 1). */
export function compareCursors(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

export interface EventPage {
  events: GatewayEvent[];
  /**
   * Where the next page goes on from: the id of the last entry read (matching
   * or not), or the `after` given when nothing was read. Never null: a batch
   * consumer keeps it and asks again.
   */
  next: string | null;
  /** Whether entries after `next` were there when the page was read. */
  more: boolean;
}

/** A page of events as the API answers it (GET /v1/events as JSON). */
export interface EventsPage {
  items: GatewayEvent[];
  /** Where to go on from (the last event read, matching or not); null only when the stream holds none. */
  nextCursor: string | null;
  /** More events were there after nextCursor when the page was read. */
  more: boolean;
  /** Events out of the caller's scope were left out. */
  scopeFiltered: boolean;
}

/** How many entries a filtered read scans at most before it answers with what it found. */
const MAX_SCAN = 5000;
const CHUNK = 500;

/**
 * The event stream in Redis: appended by the publishers (workers, the job
 * store), read by every api process. Its ids are the one cursor of every
 * channel. Retention is by length (on every append) and by age (`trimByAge`).
 */
export class EventStream {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    readonly retention: EventRetention,
  ) {}

  /** Appends events in order, as one step; their ids. */
  async append(...events: NewEvent[]): Promise<string[]> {
    if (events.length === 0) return [];
    return (await this.redis.eval(
      APPEND,
      2,
      this.keys.events,
      this.keys.eventsTrimmedThrough,
      this.retention.maxLength,
      ...events.map((e) => JSON.stringify(e)),
    )) as string[];
  }

  /** Removes the events older than the retention's age; how many went. */
  async trimByAge(now = Date.now()): Promise<number> {
    const cutoff = `${Math.max(0, now - this.retention.maxAgeMs)}-0`;
    return (await this.redis.eval(
      TRIM_BEFORE,
      2,
      this.keys.events,
      this.keys.eventsTrimmedThrough,
      cutoff,
    )) as number;
  }

  /** The newest event's id, or `0-0` when the stream has none yet. */
  async latest(): Promise<string> {
    const rows = (await this.redis.xrevrange(this.keys.events, '+', '-', 'COUNT', 1)) as [
      string,
      string[],
    ][];
    return rows[0]?.[0] ?? '0-0';
  }

  /** The oldest retained event's id (null: none retained). */
  async oldest(): Promise<string | null> {
    const rows = (await this.redis.xrange(this.keys.events, '-', '+', 'COUNT', 1)) as [
      string,
      string[],
    ][];
    return rows[0]?.[0] ?? null;
  }

  /**
   * Checks a cursor a client gives (`field` names where it came from):
   * INVALID_ARGUMENT when it is no stream id; CURSOR_EXPIRED (410) when
   * events after it were trimmed, or when it lies ahead of the stream (the
   * stream was reset: it is from another one), naming the oldest retained id.
   */
  async checkCursor(cursor: string, field: string): Promise<void> {
    if (!isCursor(cursor)) {
      throw invalidField(
        field,
        `'${cursor.slice(0, 64)}' is not an event id (<ms>-<n>, as events carry them)`,
      );
    }
    const [trimmed, latest] = await Promise.all([
      this.redis.get(this.keys.eventsTrimmedThrough),
      this.latest(),
    ]);
    const expired = trimmed !== null && compareCursors(cursor, trimmed) < 0;
    // Ids only grow: one past the newest ever given was never given by this stream.
    const newest = trimmed !== null && compareCursors(trimmed, latest) > 0 ? trimmed : latest;
    const ahead = compareCursors(cursor, newest) > 0;
    if (!expired && !ahead) return;
    const oldest = await this.oldest();
    throw new AppError(
      ErrorCode.CURSOR_EXPIRED,
      expired
        ? `events after ${cursor} are no longer retained; the oldest retained is ${oldest ?? 'none (the stream is empty)'}: list again, then resume from there`
        : `${cursor} is ahead of the event stream (it was reset); list again, then resume from ${oldest ?? 'the start'}`,
      { oldestEventId: oldest },
    );
  }

  /**
   * Up to `limit` events after `after` (exclusive; null: from the oldest
   * retained) that `accept` takes. Scans at most MAX_SCAN entries, so a
   * narrow filter over a long stream answers quickly, perhaps with fewer
   * events and `more` set.
   */
  async page(
    after: string | null,
    limit: number,
    accept: (e: GatewayEvent) => boolean = () => true,
  ): Promise<EventPage> {
    const events: GatewayEvent[] = [];
    let position = after;
    let scanned = 0;
    for (;;) {
      const rows = await this.range(position, CHUNK);
      for (const event of rows) {
        scanned++;
        position = event.id;
        if (accept(event)) {
          events.push(event);
          if (events.length === limit) return { events, next: position, more: true };
        }
      }
      if (rows.length < CHUNK) return { events, next: position, more: false };
      if (scanned >= MAX_SCAN) return { events, next: position, more: true };
    }
  }

  /** Up to `count` events after `after` (exclusive; null: from the oldest), unfiltered. */
  async range(after: string | null, count: number): Promise<GatewayEvent[]> {
    const rows = (await this.redis.xrange(
      this.keys.events,
      after === null ? '-' : `(${after}`,
      '+',
      'COUNT',
      count,
    )) as [string, string[]][];
    return rows.map(([id, fields]) => decodeEntry(id, fields));
  }
}

/** An entry of the stream as the event it holds. */
export function decodeEntry(id: string, fields: string[]): GatewayEvent {
  const json = fields[fields.indexOf('e') + 1] ?? '{}';
  return { id, ...(JSON.parse(json) as Omit<GatewayEvent, 'id'>) };
}
