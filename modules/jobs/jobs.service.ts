import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Caller } from '#src/common/auth/caller.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { decodeCursor, encodeCursor } from '#src/common/pagination.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { BlockJobLedger } from '#jobs/block-job-ledger.js';
import { JobSignals } from '#jobs/job-signals.js';
import { JobStore, type JobFilter, type JobPosition, type JobRecord } from '#jobs/job-store.js';
import {
  isBlockJobType,
  TERMINAL_STATES,
  type JobParams,
  type JobType,
  type TargetOf,
} from '#jobs/job-types.js';
import { JobQueues } from '#jobs/queues.js';
import { JobUpdates } from './job-updates.service.js';

/** How long an Idempotency-Key is remembered. */
/** An Idempotency-Key stands for its job this long (never longer than the job's record is kept). */
const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
export const MAX_WAIT_SECONDS = 60;

export interface JobRequest<T extends JobType> {
  type: T;
  /** The domain, resolved (UUID and name), or for a host job (storage) the host alone. */
  target: TargetOf<T>;
  disk?: string | null;
  params: JobParams[T];
  /** The request as the caller gave it (shown on the job; part of the idempotency check). */
  request: Record<string, unknown>;
  /**
   * Checks against the live state, run only for a new job (a replayed
   * Idempotency-Key gives back the first job whatever the state is now), with
   * the id the job will have (to claim what it needs under that id).
   */
  precheck?: (jobId: string) => Promise<void>;
}

export interface Accepted {
  record: JobRecord;
  /** True when an Idempotency-Key matched an earlier request: no new job was created. */
  replayed: boolean;
}

/**
 * The jobs every change to a host becomes: accepted here (with idempotency),
 * queued on BullMQ, run by the worker role, shown through one record.
 */
@Injectable()
export class JobsService implements OnApplicationShutdown {
  private readonly queues: JobQueues;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly store: JobStore,
    private readonly updates: JobUpdates,
    private readonly ledger: BlockJobLedger,
    private readonly signals: JobSignals,
  ) {
    this.queues = new JobQueues(config.redisUrl, keys.bull);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queues.close();
  }

  /**
   * Records and queues a job. With an Idempotency-Key, the same key and the
   * same request give back the first job; the same key with another request
   * is refused (422).
   */
  async submit<T extends JobType>(
    caller: Caller,
    spec: JobRequest<T>,
    idempotencyKey?: string,
  ): Promise<Accepted> {
    const id = randomUUID();
    if (idempotencyKey !== undefined) {
      const fingerprint = createHash('sha256')
        .update(
          canonicalJson([
            spec.type,
            spec.target.host,
            spec.target.uuid,
            spec.disk ?? null,
            spec.request,
          ]),
        )
        .digest('hex');
      const key = this.keys.idempotency(caller.id, idempotencyKey);
      const claimed = await this.redis.set(
        key,
        JSON.stringify({ id, fingerprint }),
        'EX',
        Math.min(IDEMPOTENCY_TTL_SECONDS, this.config.jobRetentionHours * 3600),
        'NX',
      );
      if (claimed !== 'OK') {
        const earlier = JSON.parse((await this.redis.get(key)) ?? '{}') as {
          id?: string;
          fingerprint?: string;
        };
        if (earlier.fingerprint !== fingerprint) {
          throw new AppError(
            ErrorCode.IDEMPOTENCY_MISMATCH,
            'this Idempotency-Key was used with another request; use a new key for a new request',
          );
        }
        const record = earlier.id ? await this.waitForRecord(earlier.id) : null;
        if (record) return { record, replayed: true };
      }
      try {
        await spec.precheck?.(id);
      } catch (err) {
        await this.redis.del(key); // refused: the key stays free for a corrected request
        throw err;
      }
    } else {
      await spec.precheck?.(id);
    }
    const now = new Date().toISOString();
    const record: JobRecord = {
      id,
      type: spec.type,
      host: spec.target.host,
      domain: spec.target.name,
      domainUuid: spec.target.uuid,
      disk: spec.disk ?? null,
      request: spec.request,
      resolved: { ...spec.params, domainUuid: spec.target.uuid },
      state: 'queued',
      progress: null,
      result: null,
      error: null,
      requestedBy: caller.id,
      requestId: caller.requestId,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
      updatedAt: now,
      attempts: 0,
      cancelRequested: false,
    };
    await this.store.create(record);
    await this.queues.add({
      jobId: id,
      type: spec.type,
      target: spec.target,
      params: spec.params,
      requestId: caller.requestId,
    });
    return { record, replayed: false };
  }

  /**
   * The job an Idempotency-Key already stands for, when it was asked for with
   * the same type, host and request; null otherwise. For requests whose target
   * is gone once their job ran (an undefine): a retry gets the job back, not a 404.
   */
  async replayOf(
    caller: Caller,
    idempotencyKey: string,
    spec: { type: JobType; host: string; request: Record<string, unknown> },
  ): Promise<Accepted | null> {
    const raw = await this.redis.get(this.keys.idempotency(caller.id, idempotencyKey));
    const earlier = raw === null ? null : (JSON.parse(raw) as { id?: string });
    const record = earlier?.id ? await this.store.get(earlier.id) : null;
    if (
      !record ||
      record.type !== spec.type ||
      record.host !== spec.host ||
      JSON.stringify(record.request) !== JSON.stringify(spec.request)
    ) {
      return null;
    }
    return { record, replayed: true };
  }

  async get(id: string): Promise<JobRecord> {
    const record = await this.store.get(id);
    if (!record) throw new AppError(ErrorCode.NOT_FOUND, `no job '${id}'`);
    return record;
  }

  async list(
    filter: JobFilter,
    limit: number,
    cursor: string | undefined,
  ): Promise<{ items: JobRecord[]; nextCursor: string | null }> {
    const after = cursor === undefined ? null : positionOf(decodeCursor(cursor));
    const { items, more } = await this.store.list(filter, limit, after);
    const last = items.at(-1);
    return {
      items,
      nextCursor: more && last ? encodeCursor(`${Date.parse(last.createdAt)}.${last.id}`) : null,
    };
  }

  /** The job once it is final, or as it is after `seconds`. */
  async wait(id: string, seconds: number): Promise<JobRecord> {
    return (await this.updates.waitFor(id, seconds * 1000)) ?? this.get(id);
  }

  /**
   * Cancels a job: one still queued never starts; a running one that can stop
   * (a block job) is asked to; a short running job cannot be stopped half-way.
   */
  async cancel(_caller: Caller, id: string): Promise<JobRecord> {
    const record = await this.get(id);
    if (TERMINAL_STATES.has(record.state)) {
      throw new AppError(ErrorCode.INVALID_STATE, `job '${id}' is already ${record.state}`);
    }
    // A block job queued again after it started (a retry) may still run in libvirt: its worker aborts it.
    const neverStarted = record.startedAt === null || !isBlockJobType(record.type);
    if (
      record.state === 'queued' &&
      neverStarted &&
      (await this.queues.removeWaiting(record.type, id))
    ) {
      const now = new Date().toISOString();
      return (await this.store.update(id, {
        state: 'canceled',
        cancelRequested: true,
        finishedAt: now,
      }))!;
    }
    if (isBlockJobType(record.type)) {
      // The worker aborts it in libvirt, without pivot: the chain stays as it was.
      if (record.state === 'pivoting' || (await this.ledger.pivotRequested(id))) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `job '${id}' is pivoting (a pivot was asked for): too late to cancel`,
        );
      }
      const asked = (await this.store.update(id, { cancelRequested: true }))!;
      await this.signals.signal(id);
      return asked;
    }
    throw new AppError(
      ErrorCode.INVALID_STATE,
      `job '${id}' (${record.type}) is already running and cannot be stopped half-way`,
    );
  }

  /**
   * Asks a two-phase block job (active commit, copy) that waits in `ready` to
   * pivot; the worker does it. Before libvirt reported the job ready this is
   * NOT_READY (409), and the job goes on as it was.
   */
  async pivot(_caller: Caller, id: string): Promise<JobRecord> {
    const record = await this.get(id);
    const twoPhase =
      record.type === 'block.copy' ||
      (record.type === 'block.commit' && record.resolved.active === true);
    if (!twoPhase) {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        `job '${id}' (${record.type}${record.type === 'block.commit' ? ', not an active commit' : ''}) has no pivot: only an active commit or a copy is pivoted`,
      );
    }
    if (TERMINAL_STATES.has(record.state)) {
      throw new AppError(ErrorCode.INVALID_STATE, `job '${id}' is already ${record.state}`);
    }
    if (record.cancelRequested) {
      throw new AppError(ErrorCode.INVALID_STATE, `job '${id}' is being canceled`);
    }
    if (record.state === 'pivoting') return record;
    if (record.state !== 'ready') {
      throw new AppError(
        ErrorCode.NOT_READY,
        `job '${id}' is ${record.state}: libvirt has not reported it ready yet; pivot once its state is ready`,
      );
    }
    await this.ledger.requestPivot(id);
    await this.signals.signal(id);
    return record;
  }

  /** An idempotent replay may race the first request's record creation by a few ms. */
  private async waitForRecord(id: string): Promise<JobRecord | null> {
    for (let i = 0; i < 20; i++) {
      const record = await this.store.get(id);
      if (record) return record;
      await new Promise((r) => setTimeout(r, 25));
    }
    return null;
  }
}

/**
 * JSON with object keys sorted and nulls left out, so the same request gives the
 * same fingerprint whatever order its fields came in (GraphQL sorts them, a
 * REST client may not) and whether an absent field was sent as null.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v)) return v;
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== null && x !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  });
}

/** A jobs cursor's key: the last job's creation time (ms) and id. */
function positionOf(key: string): JobPosition {
  const m = /^(\d{1,15})\.([0-9a-f-]{36})$/.exec(key);
  if (!m) {
    throw new AppError(
      ErrorCode.INVALID_ARGUMENT,
      'cursor is not valid: pass back a nextCursor unchanged',
      {
        fields: [{ field: 'cursor', message: 'cursor is not a cursor this API returned' }],
      },
    );
  }
  return { createdAtMs: Number(m[1]), id: m[2]! };
}
