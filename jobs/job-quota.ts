import type { RedisClient } from '#src/redis/redis-connection.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { TERMINAL_STATES, type JobState } from './job-types.js';

/**
 * Takes a place for a new job when the caller has fewer than ARGV[1] (a place
 * per job not yet finished, KEYS[1]): atomic, so callers racing each other
 * never get past the quota together. ARGV: 1 the quota, 2 the job id, 3 its score.
 */
const TAKE = `
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1
`;

/** A place whose job has no record yet is a submission in progress this long; after, a leftover. */
const SUBMIT_GRACE_MS = 60_000;

/** Seconds a caller over its quota is told to wait before trying again. */
const QUOTA_RETRY_AFTER_SECONDS = 5;

/**
 * JOBS_MAX_ACTIVE_PER_CALLER: how many jobs one caller (token) may have queued
 * or running. Each accepted job takes a place in its caller's set; a place is
 * given back lazily: when the set is full, the jobs whose records are final
 * (or gone) are dropped from it before the caller is refused. So the job
 * machinery needs no hook where jobs end, and a place can never leak.
 */
export class JobQuota {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly max: number,
  ) {}

  /** Takes a place for job `id` of `callerId`, or throws QUOTA_EXCEEDED (429). */
  async take(callerId: string, id: string): Promise<void> {
    const key = this.keys.activeJobs(callerId);
    const score = Date.now();
    if (await this.tryTake(key, id, score)) return;
    await this.dropFinished(key);
    if (await this.tryTake(key, id, score)) return;
    throw new AppError(
      ErrorCode.QUOTA_EXCEEDED,
      `this caller has ${this.max} jobs queued or running, as many as it may: wait for some to finish`,
      { retryAfterSeconds: QUOTA_RETRY_AFTER_SECONDS },
    );
  }

  /** Gives back the place of a job that was refused after all (its checks failed). */
  async release(callerId: string, id: string): Promise<void> {
    await this.redis.zrem(this.keys.activeJobs(callerId), id);
  }

  private async tryTake(key: string, id: string, score: number): Promise<boolean> {
    return (await this.redis.eval(TAKE, 1, key, this.max, id, score)) === 1;
  }

  private async dropFinished(key: string): Promise<void> {
    const flat = await this.redis.zrange(key, 0, -1, 'WITHSCORES');
    const ids = flat.filter((_v, i) => i % 2 === 0);
    const takenAt = flat.filter((_v, i) => i % 2 === 1).map(Number);
    if (ids.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.keys.job(id), 'state');
    const states = (await pipeline.exec()) ?? [];
    const done = ids.filter((_id, i) => {
      const raw = states[i]?.[1];
      // No record: being submitted (it holds its place), or pruned long after it ended.
      if (raw === null || raw === undefined) return Date.now() - takenAt[i]! > SUBMIT_GRACE_MS;
      return TERMINAL_STATES.has(JSON.parse(raw as string) as JobState);
    });
    if (done.length > 0) await this.redis.zrem(key, ...done);
  }
}
