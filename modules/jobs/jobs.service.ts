import { Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { domainInScope, hostInScope, isUnscoped, poolInScope } from '#src/common/auth/scope.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { decodeCursor, encodeCursor } from '#src/common/pagination.js';
import { BlockJobLedger } from '#jobs/block-job-ledger.js';
import { JobSignals } from '#jobs/job-signals.js';
import { JobStore, type JobFilter, type JobPosition, type JobRecord } from '#jobs/job-store.js';
import { isBlockJobType, TERMINAL_STATES } from '#jobs/job-types.js';
import { JobUpdates } from '#jobs/job-updates.js';
import { JobQueues } from '#jobs/queues.js';

export const MAX_WAIT_SECONDS = 60;

/** How many batches a scoped listing reads before it returns a short page. */
const SCOPED_LIST_BATCHES = 20;

/**
 * Whether `caller` may see a job: its requester may, and so may every caller
 * whose scope covers the job's target (its domain, or its pool on a host).
 * Unscoped callers (the admin token among them) see every job.
 */
export function jobVisibleTo(caller: Caller, record: JobRecord): boolean {
  if (record.requestedBy === caller.id || isUnscoped(caller)) return true;
  if (!hostInScope(caller, record.host)) return false;
  if (record.domain !== null) return domainInScope(caller, record.host, record.domain);
  const pool = record.resolved.pool;
  return typeof pool === 'string' && poolInScope(caller, record.host, pool);
}

/**
 * The jobs resource: every change to a host is a job (accepted by its
 * feature through the JobSubmitter), shown, waited for, canceled and (a
 * block job in ready) pivoted here, for REST and GraphQL alike.
 */
@Injectable()
export class JobsService {
  constructor(
    private readonly store: JobStore,
    private readonly queues: JobQueues,
    private readonly updates: JobUpdates,
    private readonly ledger: BlockJobLedger,
    private readonly signals: JobSignals,
  ) {}

  /** A job `caller` may see (jobVisibleTo); NOT_FOUND otherwise, as for a job that does not exist. */
  async get(caller: Caller, id: string): Promise<JobRecord> {
    const record = await this.store.get(id);
    if (!record || !jobVisibleTo(caller, record)) {
      throw new AppError(ErrorCode.NOT_FOUND, `no job '${id}'`);
    }
    return record;
  }

  /**
   * A job `caller` may see (NOT_FOUND otherwise, as `get`) and the event
   * stream's position when it was read: the events after `cursor` are the
   * changes the record does not show yet.
   */
  async snapshot(caller: Caller, id: string): Promise<{ record: JobRecord; cursor: string }> {
    const read = await this.store.getWithEventCursor(id);
    if (!read || !jobVisibleTo(caller, read.record)) {
      throw new AppError(ErrorCode.NOT_FOUND, `no job '${id}'`);
    }
    return read;
  }

  /**
   * The jobs `caller` may see, newest first. A scoped caller's page is
   * filtered as it is read, a few batches at most: it may come out shorter
   * than `limit` with a nextCursor still to follow.
   */
  async list(
    caller: Caller,
    filter: JobFilter,
    limit: number,
    cursor: string | undefined,
  ): Promise<{ items: JobRecord[]; nextCursor: string | null; scopeFiltered: boolean }> {
    let after = cursor === undefined ? null : positionOf(decodeCursor(cursor));
    const items: JobRecord[] = [];
    let more = true;
    for (let batch = 0; batch < SCOPED_LIST_BATCHES && more && items.length < limit; batch++) {
      const read = await this.store.list(filter, limit - items.length, after);
      more = read.more;
      for (const record of read.items) {
        if (jobVisibleTo(caller, record)) items.push(record);
      }
      const last = read.items.at(-1);
      if (!last) break;
      after = { createdAtMs: Date.parse(last.createdAt), id: last.id };
    }
    return {
      items,
      nextCursor: more && after ? encodeCursor(`${after.createdAtMs}.${after.id}`) : null,
      scopeFiltered: !isUnscoped(caller),
    };
  }

  /** The job once it is final, or as it is after `seconds`: for a job the caller was shown already. */
  async wait(id: string, seconds: number): Promise<JobRecord> {
    const record = (await this.updates.waitFor(id, seconds * 1000)) ?? (await this.store.get(id));
    if (!record) throw new AppError(ErrorCode.NOT_FOUND, `no job '${id}'`);
    return record;
  }

  /**
   * Cancels a job: one still queued never starts; a running one that can stop
   * (a block job) is asked to; a short running job cannot be stopped half-way.
   */
  async cancel(caller: Caller, id: string): Promise<JobRecord> {
    const record = await this.get(caller, id);
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
  async pivot(caller: Caller, id: string): Promise<JobRecord> {
    const record = await this.get(caller, id);
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
