import type { Redis } from 'ioredis';
import type { RedisKeys } from '#src/redis/keys.js';
import { TERMINAL_STATES, type JobState, type JobType } from './job-types.js';

export interface JobProgress {
  cur: number;
  end: number;
  percent: number;
}

export interface JobError {
  /** The gateway's error code (NOT_FOUND, INVALID_STATE, HOST_UNREACHABLE…). */
  code: string;
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
  result: Record<string, unknown> | null;
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
}

const JSON_FIELDS = ['request', 'resolved', 'progress', 'result', 'error'] as const;

/**
 * Updates a job's hash only if it exists (a late update to an expired record
 * must not leave a fragment behind), sets its expiry when ARGV[1] > 0, and
 * returns the whole hash (nil when there is none). ARGV[2..]: field, value, …
 */
const UPDATE = `if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return redis.call('HGETALL', KEYS[1])`;

export interface JobFilter {
  host?: string;
  domain?: string;
  state?: JobState;
  type?: JobType;
}

/**
 * Job records in Redis: one hash per job (each field JSON-encoded), a sorted
 * set of all jobs by creation time for listings, and a channel on which every
 * change is announced (its message is the job id), so waiters need not poll.
 * BullMQ carries the execution (queueing, retries, locks); this is the
 * resource the API shows.
 */
export class JobStore {
  /**
   * @param retentionSeconds how long a finished job's record stays once it is
   * final (its hash expires then; listings drop its id when they meet it).
   */
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly retentionSeconds: number,
  ) {}

  async create(record: JobRecord): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.job(record.id), encode(record))
      .zadd(this.keys.jobsByCreation, Date.parse(record.createdAt), record.id)
      .publish(this.keys.jobUpdates, record.id)
      .exec();
  }

  async get(id: string): Promise<JobRecord | null> {
    const fields = await this.redis.hgetall(this.keys.job(id));
    return fields.id ? decode(fields) : null;
  }

  /**
   * Changes some fields (and updatedAt) of an existing record and announces
   * it; null (and nothing written) when there is no such record. A record
   * made final starts its retention period.
   */
  async update(id: string, patch: Partial<Omit<JobRecord, 'id'>>): Promise<JobRecord | null> {
    const fields = encode({ ...patch, updatedAt: new Date().toISOString() });
    const expire = patch.state !== undefined && TERMINAL_STATES.has(patch.state);
    const raw = (await this.redis.eval(
      UPDATE,
      1,
      this.keys.job(id),
      expire ? this.retentionSeconds : 0,
      ...Object.entries(fields).flat(),
    )) as string[] | null;
    if (raw === null) return null;
    await this.redis.publish(this.keys.jobUpdates, id);
    const record: Record<string, string> = {};
    for (let i = 0; i + 1 < raw.length; i += 2) record[raw[i]!] = raw[i + 1]!;
    return decode(record);
  }

  /**
   * Jobs newest first, filtered, after `afterId` (exclusive). Scans the
   * creation index in chunks, so a filter that matches little still ends;
   * each chunk starts after the last record of the one before, wherever jobs
   * created or pruned meanwhile have moved it. Ids whose record has expired
   * are dropped from the index on the way.
   */
  async list(
    filter: JobFilter,
    limit: number,
    afterId: string | null,
  ): Promise<{ items: JobRecord[]; more: boolean }> {
    const index = this.keys.jobsByCreation;
    let start = 0;
    if (afterId !== null) {
      const rank = await this.redis.zrevrank(index, afterId);
      if (rank === null) return { items: [], more: false };
      start = rank + 1;
    }
    const items: JobRecord[] = [];
    const chunk = Math.max(limit * 2, 100);
    for (;;) {
      const ids = await this.redis.zrevrange(index, start, start + chunk - 1);
      if (ids.length === 0) return { items, more: false };
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hgetall(this.keys.job(id));
      const rows = (await pipeline.exec()) ?? [];
      const gone: string[] = [];
      let lastKept: string | null = null;
      for (const [i, [, raw]] of rows.entries()) {
        const fields = raw as Record<string, string>;
        if (!fields.id) {
          gone.push(ids[i]!); // its retention ran out
          continue;
        }
        lastKept = ids[i]!;
        const record = decode(fields);
        if (!matches(record, filter)) continue;
        if (items.length === limit) {
          if (gone.length > 0) await this.redis.zrem(index, ...gone);
          return { items, more: true };
        }
        items.push(record);
      }
      if (gone.length > 0) await this.redis.zrem(index, ...gone);
      const rank = lastKept === null ? null : await this.redis.zrevrank(index, lastKept);
      start = rank === null ? start + ids.length - gone.length : rank + 1;
    }
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
  return out as unknown as JobRecord;
}
