import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { AUDIT_LOG, type AuditLog, type AuditResult } from '#src/common/audit/audit-log.js';
import type { Caller } from '#src/common/auth/caller.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { redactSecrets } from '#src/common/redact.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { JobCallbacks, requestedJobCallback } from './job-callback.js';
import { JobQuota } from './job-quota.js';
import { JobStore, type JobRecord } from './job-store.js';
import type { JobParams, JobType, TargetOf } from './job-types.js';
import { JobQueues } from './queues.js';

/** An Idempotency-Key stands for its job this long (never longer than the job's record is kept). */
const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

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
 * How every change to a host becomes a job: recorded (with idempotency) and
 * queued on BullMQ for the worker role. Features call `submit` once their
 * request-time checks passed.
 */
@Injectable()
export class JobSubmitter {
  private readonly quota: JobQuota;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly store: JobStore,
    private readonly queues: JobQueues,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
    private readonly callbacks: JobCallbacks,
  ) {
    this.quota = new JobQuota(redis, keys, config.jobsMaxActivePerCaller);
  }

  /**
   * Records and queues a job (`accept`), and records the request in the
   * audit trail: accepted, replayed, or refused with the code.
   */
  async submit<T extends JobType>(
    caller: Caller,
    spec: JobRequest<T>,
    idempotencyKey?: string,
  ): Promise<Accepted> {
    let accepted: Accepted;
    try {
      accepted = await this.accept(caller, spec, idempotencyKey);
    } catch (err) {
      await this.auditRequest(caller, spec, err instanceof AppError ? err.code : 'INTERNAL');
      throw err;
    }
    await this.auditRequest(caller, spec, accepted);
    return accepted;
  }

  /** The audit entry of a job request: what it was for, and what came of it. */
  private async auditRequest(
    caller: Caller,
    spec: { type: JobType; target: { host: string; name: string | null }; disk?: string | null },
    outcome: Accepted | string,
  ): Promise<void> {
    const refused = typeof outcome === 'string';
    const result: AuditResult = refused ? 'refused' : outcome.replayed ? 'replayed' : 'accepted';
    const { host, name } = spec.target;
    await this.audit.record({
      actor: { id: caller.id, role: caller.role },
      action: 'job.request',
      target: name === null ? host : `${host}/${name}`,
      host,
      requestId: caller.requestId,
      result,
      code: refused ? outcome : null,
      detail: {
        type: spec.type,
        ...(spec.disk ? { disk: spec.disk } : {}),
        ...(refused ? {} : { jobId: outcome.record.id }),
      },
    });
  }

  /**
   * Records and queues a job. With an Idempotency-Key, the same key and the
   * same request give back the first job; the same key with another request
   * is refused (422). The request's callbackUrl (job-callback.ts), checked
   * first, is noted for a new job; a replayed one keeps its first callback.
   */
  private async accept<T extends JobType>(
    caller: Caller,
    spec: JobRequest<T>,
    idempotencyKey?: string,
  ): Promise<Accepted> {
    const requestedCallback = requestedJobCallback();
    const callbackUrl =
      requestedCallback === undefined ? null : await this.callbacks.check(requestedCallback);
    const id = randomUUID();
    // The record keeps the request and params without their secrets (a VNC passwd in raw
    // XML); the idempotency fingerprint is taken on that same form, so a replay matches.
    const request = redactSecrets(spec.request);
    if (idempotencyKey !== undefined) {
      const fingerprint = createHash('sha256')
        .update(
          canonicalJson([
            spec.type,
            spec.target.host,
            spec.target.uuid,
            spec.disk ?? null,
            request,
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
        await this.quota.take(caller.id, id);
      } catch (err) {
        await this.redis.del(key); // refused: the key stays free for a later request
        throw err;
      }
      try {
        await spec.precheck?.(id);
      } catch (err) {
        await this.redis.del(key); // refused: the key stays free for a corrected request
        await this.quota.release(caller.id, id);
        throw err;
      }
    } else {
      await this.quota.take(caller.id, id);
      await spec.precheck?.(id).catch(async (err: unknown) => {
        await this.quota.release(caller.id, id);
        throw err;
      });
    }
    const now = new Date().toISOString();
    const record: JobRecord = {
      id,
      type: spec.type,
      host: spec.target.host,
      domain: spec.target.name,
      domainUuid: spec.target.uuid,
      disk: spec.disk ?? null,
      request,
      resolved: redactSecrets<Record<string, unknown>>({
        ...spec.params,
        domainUuid: spec.target.uuid,
      }),
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
      adopted: false,
    };
    if (callbackUrl !== null) await this.callbacks.remember(id, callbackUrl);
    await this.store.create(record);
    await this.queues.add({
      jobId: id,
      type: spec.type,
      target: spec.target,
      params: spec.params,
      requestId: caller.requestId,
      access: { role: caller.role, scopes: caller.scopes },
    });
    return { record, replayed: false };
  }

  /**
   * The job an Idempotency-Key already stands for, when it was asked for with
   * the same type, host and request; null otherwise. For requests whose target
   * is gone once their job ran (an undefine): a retry gets the job back, not a 404.
   */
  private async replayOf(
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
      JSON.stringify(record.request) !== JSON.stringify(redactSecrets(spec.request))
    ) {
      return null;
    }
    return { record, replayed: true };
  }

  /**
   * `find`, or, when what it looks for is gone (NOT_FOUND) and the
   * Idempotency-Key stood for a job of `spec` on it, that job: a retry of a
   * delete that already ran gets its job back.
   */
  async findOrReplay<T>(
    caller: Caller,
    idempotencyKey: string | undefined,
    spec: { type: JobType; host: string; request: Record<string, unknown> },
    find: () => Promise<T>,
  ): Promise<{ found: T } | { replay: Accepted }> {
    try {
      return { found: await find() };
    } catch (err) {
      if (
        idempotencyKey !== undefined &&
        err instanceof AppError &&
        err.code === ErrorCode.NOT_FOUND
      ) {
        const replay = await this.replayOf(caller, idempotencyKey, spec);
        if (replay) {
          const { record } = replay;
          const target = { host: record.host, name: record.domain };
          await this.auditRequest(caller, { type: record.type, target, disk: record.disk }, replay);
          return { replay };
        }
      }
      throw err;
    }
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
