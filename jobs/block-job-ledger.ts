import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { JobStore } from './job-store.js';
import { TERMINAL_STATES } from './job-types.js';

/** A claim whose job record never appeared (its request failed half-way) is free after this. */
const ORPHAN_CLAIM_MS = 60_000;
/** Bookkeeping outlives its job by as long as BullMQ keeps failed jobs. */
const BOOK_TTL_SECONDS = 7 * 24 * 3600;

/** Replaces a key's value only if it still holds what we read (compare-and-set). */
const CAS = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0`;
/**
 * Deletes a claim only if it is still held by the given job, noting the job
 * as the disk's latest (with a TTL), so libvirt's events that come after the
 * job ended still name it.
 */
const RELEASE = `local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).jobId == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
  return 1
end return 0`;
/** How long a disk's latest block job is remembered after it ended, for correlating late events. */
const LAST_JOB_TTL_SECONDS = 600;

/** How far a block job's start got: written before and after asking libvirt, so a re-run knows. */
export type BlockJobPhase = 'starting' | 'started';

export interface BlockJobBook {
  phase: BlockJobPhase | null;
  /** The chain's image paths (top first) just before the job was started in libvirt. */
  chainAtStart: string[] | null;
  /** When the worker asked libvirt to start it (ISO time). */
  startedAt: string | null;
  /** POST /v1/jobs/{id}/pivot was accepted. */
  pivotRequested: boolean;
}

export interface DiskRef {
  host: string;
  domainUuid: string;
  disk: string;
}

/**
 * What the gateway knows of its block jobs besides their records, in Redis,
 * shared by the api (which claims a disk when it accepts a job, and records a
 * pivot request) and the workers (which record how far a start got, so a
 * re-run after a crash re-attaches instead of starting twice):
 *
 * - a claim per disk (host, domain UUID, target) naming the job that holds
 *   it: a second block job on that disk is refused at once. A claim is
 *   released when its job ends; one whose job's record is final (or never
 *   appeared) is stale and taken over, so a lost release cannot lock a disk.
 * - a small hash per job: phase (`starting` / `started`), the chain when it
 *   started, and whether a pivot was asked for.
 */
@Injectable()
export class BlockJobLedger {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly store: JobStore,
  ) {}

  /**
   * What this process wrote of its block jobs' bookkeeping, until each is
   * released: enough to write it back if Redis loses it while they run.
   */
  private readonly written = new Map<string, Record<string, string>>();

  /**
   * Writes back what Redis lost of a block job this process runs: its disk's
   * claim (so reconciliation does not take its libvirt job for an orphan)
   * and its book (phase, chain at start, a pivot asked for).
   */
  async restore(jobId: string, ref: DiskRef): Promise<void> {
    const mine = this.written.get(jobId);
    const multi = this.redis
      .multi()
      .set(
        this.keys.diskBlockJob(ref.host, ref.domainUuid, ref.disk),
        JSON.stringify({ jobId, at: Date.now() }),
        'NX',
      );
    if (mine && Object.keys(mine).length > 0) {
      multi
        .hset(this.keys.blockJob(jobId), mine)
        .expire(this.keys.blockJob(jobId), BOOK_TTL_SECONDS);
    }
    await multi.exec();
  }

  private remember(jobId: string, fields: Record<string, string>): void {
    this.written.set(jobId, { ...this.written.get(jobId), ...fields });
  }

  /** Claims `ref` for job `jobId`; CONFLICT naming the job that holds it otherwise. */
  async claim(ref: DiskRef, jobId: string): Promise<void> {
    const key = this.keys.diskBlockJob(ref.host, ref.domainUuid, ref.disk);
    const mine = JSON.stringify({ jobId, at: Date.now() });
    for (let attempt = 0; attempt < 5; attempt++) {
      if ((await this.redis.set(key, mine, 'NX')) === 'OK') return;
      const raw = await this.redis.get(key);
      if (raw === null) continue;
      const held = JSON.parse(raw) as { jobId: string; at: number };
      if (held.jobId === jobId) return;
      const holder = await this.store.get(held.jobId);
      const stale = holder
        ? TERMINAL_STATES.has(holder.state)
        : Date.now() - held.at > ORPHAN_CLAIM_MS;
      if (!stale) {
        throw new AppError(
          ErrorCode.CONFLICT,
          `disk '${ref.disk}' already has a block job: job ${held.jobId}` +
            (holder ? ` (${holder.type}, ${holder.state})` : ' (being accepted)') +
            '; wait for it to end or cancel it',
        );
      }
      if ((await this.redis.eval(CAS, 1, key, raw, mine)) === 1) return;
    }
    throw new AppError(ErrorCode.CONFLICT, `disk '${ref.disk}' is being claimed by another job`);
  }

  /** Releases `ref` if job `jobId` still holds it. */
  async release(ref: DiskRef, jobId: string): Promise<void> {
    this.written.delete(jobId);
    await this.redis.eval(
      RELEASE,
      2,
      this.keys.diskBlockJob(ref.host, ref.domainUuid, ref.disk),
      this.keys.diskLastBlockJob(ref.host, ref.domainUuid, ref.disk),
      jobId,
      LAST_JOB_TTL_SECONDS,
    );
  }

  /**
   * The gateway job a block job of libvirt on `ref` belongs to: the one
   * holding the disk, or the one that held it last (for 10 minutes after it
   * ended); null when the gateway has none (a block job started elsewhere).
   */
  async jobOn(ref: DiskRef): Promise<string | null> {
    const [held, last] = await this.redis.mget(
      this.keys.diskBlockJob(ref.host, ref.domainUuid, ref.disk),
      this.keys.diskLastBlockJob(ref.host, ref.domainUuid, ref.disk),
    );
    if (held) return (JSON.parse(held) as { jobId: string }).jobId;
    return last ?? null;
  }

  /** The job whose claim `ref` has (live or stale: the caller judges by its record), or null. */
  async holder(ref: DiskRef): Promise<string | null> {
    const held = await this.redis.get(this.keys.diskBlockJob(ref.host, ref.domainUuid, ref.disk));
    return held === null ? null : (JSON.parse(held) as { jobId: string }).jobId;
  }

  async book(jobId: string): Promise<BlockJobBook> {
    const h = await this.redis.hgetall(this.keys.blockJob(jobId));
    return {
      phase: (h.phase as BlockJobPhase | undefined) ?? null,
      chainAtStart: h.chainAtStart ? (JSON.parse(h.chainAtStart) as string[]) : null,
      startedAt: h.startedAt ?? null,
      pivotRequested: h.pivotRequested === '1',
    };
  }

  async setPhase(jobId: string, phase: BlockJobPhase, chainAtStart?: string[]): Promise<void> {
    const fields: Record<string, string> = { phase };
    if (chainAtStart) {
      fields.chainAtStart = JSON.stringify(chainAtStart);
      fields.startedAt = new Date().toISOString();
    }
    this.remember(jobId, fields);
    await this.redis
      .multi()
      .hset(this.keys.blockJob(jobId), fields)
      .expire(this.keys.blockJob(jobId), BOOK_TTL_SECONDS)
      .exec();
  }

  async requestPivot(jobId: string): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.blockJob(jobId), 'pivotRequested', '1')
      .expire(this.keys.blockJob(jobId), BOOK_TTL_SECONDS)
      .exec();
  }

  async pivotRequested(jobId: string): Promise<boolean> {
    return (await this.redis.hget(this.keys.blockJob(jobId), 'pivotRequested')) === '1';
  }
}
