import { Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { decodeCursor, encodeCursor } from '#src/common/pagination.js';
import { BlockJobLedger } from '#jobs/block-job-ledger.js';
import { JobSignals } from '#jobs/job-signals.js';
import { JobStore, type JobFilter, type JobPosition, type JobRecord } from '#jobs/job-store.js';
import { isBlockJobType, TERMINAL_STATES } from '#jobs/job-types.js';
import { JobUpdates } from '#jobs/job-updates.js';
import { JobQueues } from '#jobs/queues.js';

export const MAX_WAIT_SECONDS = 60;

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
