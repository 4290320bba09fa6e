import type { Redis } from 'ioredis';
import type { RedisKeys } from '#src/redis/keys.js';
import type { JobState, JobType } from './job-types.js';

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
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
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

  /** Changes some fields (and updatedAt) and announces it. */
  async update(id: string, patch: Partial<Omit<JobRecord, 'id'>>): Promise<JobRecord | null> {
    const fields = encode({ ...patch, updatedAt: new Date().toISOString() });
    const [, [, raw]] = (await this.redis
      .multi()
      .hset(this.keys.job(id), fields)
      .hgetall(this.keys.job(id))
      .publish(this.keys.jobUpdates, id)
      .exec()) as [[Error | null, number], [Error | null, Record<string, string>], unknown];
    return raw.id ? decode(raw) : null;
  }

  /**
   * Jobs newest first, filtered, after `afterId` (exclusive). Scans the
   * creation index in chunks, so a filter that matches little still ends.
   */
  async list(
    filter: JobFilter,
    limit: number,
    afterId: string | null,
  ): Promise<{ items: JobRecord[]; more: boolean }> {
    let start = 0;
    if (afterId !== null) {
      const rank = await this.redis.zrevrank(this.keys.jobsByCreation, afterId);
      if (rank === null) return { items: [], more: false };
      start = rank + 1;
    }
    const items: JobRecord[] = [];
    const chunk = Math.max(limit * 2, 100);
    for (;;) {
      const ids = await this.redis.zrevrange(this.keys.jobsByCreation, start, start + chunk - 1);
      if (ids.length === 0) return { items, more: false };
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hgetall(this.keys.job(id));
      const rows = (await pipeline.exec()) ?? [];
      for (const [, raw] of rows) {
        const fields = raw as Record<string, string>;
        if (!fields.id) continue;
        const record = decode(fields);
        if (!matches(record, filter)) continue;
        if (items.length === limit) return { items, more: true };
        items.push(record);
      }
      start += ids.length;
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
