import { randomUUID } from 'node:crypto';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { APPEND_EVENT_LUA } from '#src/events/event-stream.js';
import type { ErrorCode } from '#src/common/errors/app-error.js';
import { JOB_STATES, TERMINAL_STATES, type JobState, type JobType } from './job-types.js';

export interface JobProgress {
  cur: number;
  end: number;
  percent: number;
}

export interface JobError {
  /** The gateway's error code (NOT_FOUND, INVALID_STATE, HOST_UNREACHABLE…). */
  code: ErrorCode;
  message: string;
  /** libvirt's error name when libvirt refused (VIR_ERR_OPERATION_INVALID…). */
  libvirtCode: string | null;
}

/** A job as the API shows it: the one record every transport and the worker share. */
export interface JobRecord {
  id: string;
  type: JobType;
  host: string;
  domain: string | null;
  domainUuid: string | null;
  disk: string | null;
  /** The request as the caller gave it. */
  request: Record<string, unknown>;
  /** The request as resolved against the live state when the job was accepted. */
  resolved: Record<string, unknown>;
  state: JobState;
  progress: JobProgress | null;
  /** What the job did: its type's result, as the feature that runs it declares it. */
  result: object | null;
  error: JobError | null;
  requestedBy: string;
  requestId: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
  /** Attempts the worker made (a lost connection is retried). */
  attempts: number;
  /** A cancel was asked for while the job ran. */
  cancelRequested: boolean;
  /**
   * A block job libvirt ran with no record of the gateway's (started outside
   * it, or its record lost with Redis's data), taken on by reconciliation so
   * it can be pivoted or canceled like any other; false for every job asked for.
   */
  adopted: boolean;
}

const JSON_FIELDS = ['request', 'resolved', 'progress', 'result', 'error'] as const;

/**
 * A Lua function building a job event's JSON from the job's hash (whose
 * values are JSON already, so they are joined, never re-encoded), in the
 * shape of GatewayEvent: job.state-changed with the state before, or
 * job.progress. The result rides only on the event of a completed job.
 */
const JOB_EVENT_LUA = `local function job_event(etype, time, prev, h)
  local pool = 'null'
  local ok, r = pcall(cjson.decode, h.resolved or 'null')
  if ok and type(r) == 'table' and type(r.pool) == 'string' then pool = cjson.encode(r.pool) end
  local domain = 'null'
  if h.domain and h.domain ~= 'null' then
    domain = '{"uuid":' .. (h.domainUuid or 'null') .. ',"name":' .. h.domain .. '}'
  end
  local result = 'null'
  if h.state == '"completed"' then result = h.result or 'null' end
  return '{"time":' .. time .. ',"type":"' .. etype .. '","host":' .. h.host .. ',"domain":' .. domain ..
    ',"detail":null,"reconciled":false,"blockJob":null,"job":{"id":' .. h.id .. ',"type":' .. h.type ..
    ',"state":' .. h.state .. ',"previousState":' .. prev .. ',"progress":' .. (h.progress or 'null') ..
    ',"error":' .. (h.error or 'null') .. ',"result":' .. result .. ',"requestedBy":' .. h.requestedBy ..
    ',"disk":' .. (h.disk or 'null') .. ',"pool":' .. pool .. '},"data":null}'
end
local function hash_of(key)
  local raw = redis.call('HGETALL', key)
  local h = {}
  for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
  return h, raw
end
`;

/**
 * Announces a job just created: its job.state-changed event (from nothing).
 * KEYS: 1 the hash, 2 the event stream, 3 its trimmed-through key.
 * ARGV: 1 the time (JSON), 2 the stream's maxlen.
 */
const CREATED = `${APPEND_EVENT_LUA}${JOB_EVENT_LUA}
local h = hash_of(KEYS[1])
if not h.id then return nil end
return append_event(KEYS[2], KEYS[3], tonumber(ARGV[2]), job_event('job.state-changed', ARGV[1], 'null', h))`;

/**
 * Updates a job's hash only if it exists (a late update to a pruned record
 * must not leave a fragment behind), moves it between the state indexes when
 * its state changes, notes when it finished, appends the change's event
 * (job.state-changed when the state changed; job.progress when progress
 * came and the job's progress gate was open), and returns the whole hash
 * (nil when there is none): record and event are one step.
 * KEYS: 1 the hash, 2 the creation index, 3 the finished index, 4…3+n the
 * state indexes in the order of ARGV[4…], then the event stream, its
 * trimmed-through key, the job's progress gate.
 * ARGV: 1 the id, 2 when it finished (ms; 0: not final), 3 the number of
 * states n, 4…3+n the states (JSON, as stored), then the time (JSON), the
 * stream's maxlen, the progress interval (ms), then field, value, …
 */
const UPDATE = `${APPEND_EVENT_LUA}${JOB_EVENT_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local n = tonumber(ARGV[3])
local stream, trimmed, gate = KEYS[4 + n], KEYS[5 + n], KEYS[6 + n]
local time, maxlen, interval = ARGV[4 + n], tonumber(ARGV[5 + n]), tonumber(ARGV[6 + n])
local old = redis.call('HGET', KEYS[1], 'state')
local progressed = false
for i = 7 + n, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  if ARGV[i] == 'progress' then progressed = true end
end
local new = redis.call('HGET', KEYS[1], 'state')
if new ~= old then
  local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
  for i = 1, n do
    if ARGV[3 + i] == old then redis.call('ZREM', KEYS[3 + i], ARGV[1]) end
    if ARGV[3 + i] == new and score then redis.call('ZADD', KEYS[3 + i], score, ARGV[1]) end
  end
end
if tonumber(ARGV[2]) > 0 then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1]) end
local h, raw = hash_of(KEYS[1])
if new ~= old then
  append_event(stream, trimmed, maxlen, job_event('job.state-changed', time, old or 'null', h))
elseif progressed and h.progress ~= 'null' then
  if interval == 0 or redis.call('SET', gate, '1', 'PX', interval, 'NX') then
    append_event(stream, trimmed, maxlen, job_event('job.progress', time, 'null', h))
  end
end
return raw`;

/** Where the store's job events go: the event stream's length bound, the least time between progress events. */
export interface JobEventOptions {
  maxLength: number;
  progressIntervalMs: number;
}

/** Deletes a lock only if it still holds the given token. */
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface JobFilter {
  host?: string;
  domain?: string;
  state?: JobState;
  type?: JobType;
}

/** Where a listing goes on from: the last job of the page before (its creation time and id). */
export interface JobPosition {
  createdAtMs: number;
  id: string;
}

/** How many jobs a listing reads from Redis at a time. */
const CHUNK = 200;

/**
 * Job records in Redis: one hash per job (each field JSON-encoded); indexes
 * of job ids by creation time, all of them and per value of each listing
 * filter (so a filtered listing reads only jobs that match it, however many
 * others there are); an index of finished jobs by when they finished, which
 * retention prunes; and a channel on which every change is announced (its
 * message is the job id), so waiters need not poll. BullMQ carries the
 * execution (queueing, retries, locks); this is the resource the API shows.
 */
export class JobStore {
  /**
   * @param retentionSeconds how long a finished job's record stays once it is
   * final (then `prune` removes it and its index entries).
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly retentionSeconds: number,
    private readonly events: JobEventOptions = { maxLength: 1_000_000, progressIntervalMs: 1000 },
  ) {}

  async create(record: JobRecord): Promise<void> {
    const score = Date.parse(record.createdAt);
    const multi = this.redis
      .multi()
      .hset(this.keys.job(record.id), encode(record))
      .zadd(this.keys.jobsByCreation, score, record.id);
    for (const index of this.indexesOf(record)) multi.zadd(index, score, record.id);
    multi.eval(
      CREATED,
      3,
      this.keys.job(record.id),
      this.keys.events,
      this.keys.eventsTrimmedThrough,
      JSON.stringify(record.createdAt),
      this.events.maxLength,
    );
    await multi.publish(this.keys.jobUpdates, record.id).exec();
  }

  /**
   * Writes a record back that Redis lost, as its worker still knows it (a
   * recovery from lost data), announced as if new; false, and nothing
   * written, when one exists. For a job still running: a final record is
   * not restored (its retention indexes are not rebuilt).
   */
  async restore(record: JobRecord): Promise<boolean> {
    if (TERMINAL_STATES.has(record.state)) return false;
    if ((await this.redis.exists(this.keys.job(record.id))) === 1) return false;
    await this.create(record);
    return true;
  }

  async get(id: string): Promise<JobRecord | null> {
    const fields = await this.redis.hgetall(this.keys.job(id));
    return fields.id ? decode(fields) : null;
  }

  /**
   * A job's record and the id of the newest event in the stream, read at
   * one instant (MULTI): every event after that id is a change the record
   * does not show yet, every one before it is in the record. For following a
   * job from its record on (GraphQL's job subscription). Null: no such job.
   */
  async getWithEventCursor(id: string): Promise<{ record: JobRecord; cursor: string } | null> {
    const replies = await this.redis
      .multi()
      .hgetall(this.keys.job(id))
      .xrevrange(this.keys.events, '+', '-', 'COUNT', 1)
      .exec();
    const [fieldsReply, newestReply] = replies ?? [];
    if (fieldsReply?.[0] || newestReply?.[0]) throw fieldsReply?.[0] ?? newestReply?.[0];
    const fields = fieldsReply?.[1] as Record<string, string> | undefined;
    if (!fields?.id) return null;
    const newest = newestReply?.[1] as [string, string[]][] | undefined;
    return { record: decode(fields), cursor: newest?.[0]?.[0] ?? '0-0' };
  }

  /** Whether the record is there (a worker following a long job notices that Redis lost it). */
  async exists(id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.job(id))) === 1;
  }

  /** Whether a cancel was asked for: one field, for workers that look every poll. */
  async cancelRequested(id: string): Promise<boolean> {
    return (await this.redis.hget(this.keys.job(id), 'cancelRequested')) === 'true';
  }

  /**
   * Changes some fields (and updatedAt) of an existing record and announces
   * it; null (and nothing written) when there is no such record. A record
   * made final starts its retention period.
   */
  async update(id: string, patch: Partial<Omit<JobRecord, 'id'>>): Promise<JobRecord | null> {
    const updatedAt = new Date();
    const fields = encode({ ...patch, updatedAt: updatedAt.toISOString() });
    const final = patch.state !== undefined && TERMINAL_STATES.has(patch.state);
    const finishedMs = final
      ? patch.finishedAt
        ? Date.parse(patch.finishedAt)
        : updatedAt.getTime()
      : 0;
    const raw = (await this.redis.eval(
      UPDATE,
      6 + JOB_STATES.length,
      this.keys.job(id),
      this.keys.jobsByCreation,
      this.keys.jobsFinished,
      ...JOB_STATES.map((state) => this.keys.jobsBy('state', state)),
      this.keys.events,
      this.keys.eventsTrimmedThrough,
      this.keys.jobProgressGate(id),
      id,
      finishedMs,
      JOB_STATES.length,
      ...JOB_STATES.map((state) => JSON.stringify(state)),
      JSON.stringify(updatedAt.toISOString()),
      this.events.maxLength,
      this.events.progressIntervalMs,
      ...Object.entries(fields).flat(),
    )) as string[] | null;
    if (raw === null) return null;
    await this.redis.publish(this.keys.jobUpdates, id);
    const record: Record<string, string> = {};
    for (let i = 0; i + 1 < raw.length; i += 2) record[raw[i]!] = raw[i + 1]!;
    return decode(record);
  }

  /**
   * Jobs newest first, filtered, after `after` (exclusive). Reads the
   * smallest index the filters allow (the one of all jobs without filters),
   * in chunks, going on from the last job read by its creation time and id,
   * so jobs created or removed meanwhile neither hide nor repeat one.
   */
  async list(
    filter: JobFilter,
    limit: number,
    after: JobPosition | null,
  ): Promise<{ items: JobRecord[]; more: boolean }> {
    const index = await this.smallestIndex(filter);
    const items: JobRecord[] = [];
    let position = after;
    for (;;) {
      const ids = await this.idsAfter(index, position, CHUNK);
      if (ids.length === 0) return { items, more: false };
      const pipeline = this.redis.pipeline();
      for (const { id } of ids) pipeline.hgetall(this.keys.job(id));
      const rows = (await pipeline.exec()) ?? [];
      const gone: string[] = [];
      for (const [i, [, raw]] of rows.entries()) {
        const fields = raw as Record<string, string>;
        if (!fields.id) {
          gone.push(ids[i]!.id); // pruned meanwhile, or left behind by a crash
          continue;
        }
        const record = decode(fields);
        if (!matches(record, filter)) continue;
        if (items.length === limit) {
          if (gone.length > 0) await this.redis.zrem(index, ...gone);
          return { items, more: true };
        }
        items.push(record);
      }
      if (gone.length > 0) await this.redis.zrem(index, ...gone);
      const last = ids.at(-1)!;
      position = { createdAtMs: last.score, id: last.id };
    }
  }

  /**
   * Removes the finished jobs whose retention has run out, with their index
   * entries; returns how many. One process at a time prunes (a lock with a
   * TTL): calling it from every process is safe.
   */
  async prune(now = Date.now()): Promise<number> {
    const token = randomUUID();
    const lock = await this.redis.set(this.keys.jobsPruneLock, token, 'PX', 60_000, 'NX');
    if (lock !== 'OK') return 0;
    let removed = 0;
    try {
      const cutoff = now - this.retentionSeconds * 1000;
      for (;;) {
        const ids = await this.redis.zrangebyscore(
          this.keys.jobsFinished,
          '-inf',
          cutoff,
          'LIMIT',
          0,
          500,
        );
        if (ids.length === 0) return removed;
        const pipeline = this.redis.pipeline();
        for (const id of ids) pipeline.hgetall(this.keys.job(id));
        const rows = (await pipeline.exec()) ?? [];
        const multi = this.redis.multi();
        for (const [i, [, raw]] of rows.entries()) {
          const id = ids[i]!;
          const fields = raw as Record<string, string>;
          if (fields.id) {
            const record = decode(fields);
            // Final and old enough, unless it changed since it was noted (it never should).
            if (!TERMINAL_STATES.has(record.state)) {
              multi.zrem(this.keys.jobsFinished, id);
              continue;
            }
            for (const index of this.indexesOf(record)) multi.zrem(index, id);
          }
          multi
            .del(this.keys.job(id))
            .zrem(this.keys.jobsByCreation, id)
            .zrem(this.keys.jobsFinished, id);
          removed++;
        }
        await multi.exec();
      }
    } finally {
      // Only our own lock: one that lapsed during a long prune may be another process's now.
      await this.redis.eval(RELEASE_LOCK, 1, this.keys.jobsPruneLock, token);
    }
  }

  /** The filter indexes a record is in. */
  private indexesOf(record: JobRecord): string[] {
    const indexes = [
      this.keys.jobsBy('state', record.state),
      this.keys.jobsBy('host', record.host),
      this.keys.jobsBy('type', record.type),
    ];
    if (record.domain !== null) indexes.push(this.keys.jobsBy('domain', record.domain));
    if (record.domainUuid !== null && record.domainUuid !== record.domain) {
      indexes.push(this.keys.jobsBy('domain', record.domainUuid));
    }
    return indexes;
  }

  /** Of the indexes `filter` allows, the one with the fewest entries. */
  private async smallestIndex(filter: JobFilter): Promise<string> {
    const candidates: string[] = [];
    if (filter.state !== undefined) candidates.push(this.keys.jobsBy('state', filter.state));
    if (filter.host !== undefined) candidates.push(this.keys.jobsBy('host', filter.host));
    if (filter.type !== undefined) candidates.push(this.keys.jobsBy('type', filter.type));
    if (filter.domain !== undefined) candidates.push(this.keys.jobsBy('domain', filter.domain));
    if (candidates.length === 0) return this.keys.jobsByCreation;
    if (candidates.length === 1) return candidates[0]!;
    const pipeline = this.redis.pipeline();
    for (const key of candidates) pipeline.zcard(key);
    const sizes = ((await pipeline.exec()) ?? []).map(([, n]) => Number(n));
    return candidates[sizes.indexOf(Math.min(...sizes))]!;
  }

  /**
   * Up to `count` ids of `index`, newest first, strictly after `position`:
   * older ones, and among those created in the same millisecond, those whose
   * id sorts before (Redis orders equal scores by member).
   */
  private async idsAfter(
    index: string,
    position: JobPosition | null,
    count: number,
  ): Promise<{ id: string; score: number }[]> {
    const out: { id: string; score: number }[] = [];
    let max = '+inf';
    if (position !== null) {
      const s = position.createdAtMs;
      const ties = await this.redis.zrevrangebyscore(index, s, s);
      for (const id of ties) if (id < position.id) out.push({ id, score: s });
      if (out.length >= count) return out;
      max = `(${s}`;
    }
    const rows = await this.redis.zrevrangebyscore(
      index,
      max,
      '-inf',
      'WITHSCORES',
      'LIMIT',
      0,
      count - out.length,
    );
    for (let i = 0; i + 1 < rows.length; i += 2) {
      out.push({ id: rows[i]!, score: Number(rows[i + 1]) });
    }
    return out;
  }
}

function matches(r: JobRecord, f: JobFilter): boolean {
  return (
    (f.host === undefined || r.host === f.host) &&
    (f.domain === undefined || r.domain === f.domain || r.domainUuid === f.domain) &&
    (f.state === undefined || r.state === f.state) &&
    (f.type === undefined || r.type === f.type)
  );
}

function encode(patch: Partial<JobRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) out[k] = JSON.stringify(v);
  return out;
}

function decode(fields: Record<string, string>): JobRecord {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = JSON.parse(v);
  for (const k of JSON_FIELDS) out[k] ??= null;
  out.adopted ??= false; // records written before the field existed
  return out as unknown as JobRecord;
}
