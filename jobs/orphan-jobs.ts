import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { ErrorCode } from '#src/common/errors/app-error.js';
import { REDACTED } from '#src/common/redact.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import { RedisRecovery } from '#src/redis/redis-recovery.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { JobStore, type JobRecord } from './job-store.js';
import {
  isBlockJobType,
  JOB_STATES,
  TERMINAL_STATES,
  type JobParams,
  type QueuedJob,
} from './job-types.js';
import { JobQueues } from './queues.js';

/** How often a worker looks for orphans (besides at boot and after a loss of Redis data). */
const SWEEP_INTERVAL_MS = 60_000;
/**
 * A record younger than this is left alone: the api writes the record just
 * before it queues the job, and the two must not be taken for an orphan.
 */
const GRACE_MS = 5000;
const LOCK_MS = 30_000;

const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface SweepReport {
  /** Jobs put back on their queue from their records. */
  requeued: string[];
  /** Jobs that could not be (their parameters held a secret the record never keeps): failed, saying so. */
  failed: string[];
}

/**
 * Jobs whose records survived but whose queue entries did not (a partial
 * loss of Redis data, a flushed BullMQ prefix): a record not final, with no
 * BullMQ job and no worker holding it, would otherwise wait for ever. (A
 * block job that started is left to modules/block-jobs' reconciliation,
 * which asks libvirt first.) Each
 * goes back on its queue under its own id, rebuilt from its record, so the
 * worker that takes it runs it as after a crash: a job already final is never
 * run again, a block job libvirt runs is re-attached (its book says how far
 * it got), a lifecycle job finds the domain as it is. Runs in the workers,
 * one at a time gateway-wide (a lock), at boot, every minute, and after a
 * loss of Redis data.
 */
@Injectable()
export class OrphanJobSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('OrphanJobs');
  private timer: NodeJS.Timeout | null = null;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly store: JobStore,
    private readonly queues: JobQueues,
    private readonly recovery: RedisRecovery,
  ) {}

  onApplicationBootstrap(): void {
    this.recovery.register({
      name: 'the orphaned jobs',
      order: 15,
      onDataLoss: async () => void (await this.sweep()),
    });
    const run = (): void =>
      void this.sweep().catch((err: unknown) => {
        this.logger.warn(`looking for orphaned jobs failed: ${(err as Error).message}`);
      });
    setTimeout(run, GRACE_MS).unref();
    this.timer = setInterval(run, SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass; an empty report when another process holds the lock. */
  async sweep(now = Date.now()): Promise<SweepReport> {
    const report: SweepReport = { requeued: [], failed: [] };
    const token = randomUUID();
    if ((await this.redis.set(this.keys.jobsOrphanLock, token, 'PX', LOCK_MS, 'NX')) !== 'OK') {
      return report;
    }
    try {
      for (const state of JOB_STATES) {
        if (TERMINAL_STATES.has(state)) continue;
        const ids = await this.redis.zrange(this.keys.jobsBy('state', state), 0, -1);
        for (const id of ids) await this.consider(id, now, report);
      }
    } finally {
      await this.redis.eval(RELEASE_LOCK, 1, this.keys.jobsOrphanLock, token);
    }
    return report;
  }

  private async consider(id: string, now: number, report: SweepReport): Promise<void> {
    const record = await this.store.get(id);
    if (!record || TERMINAL_STATES.has(record.state)) return;
    if (now - Date.parse(record.updatedAt) < GRACE_MS) return;
    // A block job that started is the block-job reconciliation's: it asks libvirt whether
    // the job still runs there before queueing it again or finishing it from the chain.
    if (isBlockJobType(record.type) && record.startedAt !== null) return;
    if ((await this.redis.exists(this.keys.jobHeld(id))) === 1) return; // a worker runs it
    if (await this.queues.has(record.type, id)) return;
    const job = queuedJobOf(record);
    if (job === null) {
      await this.store.update(id, {
        state: 'failed',
        error: {
          code: ErrorCode.INTERNAL,
          message:
            'its queue entry was lost, and it cannot be queued again from its record: its parameters held a secret the record does not keep. What it changed, if anything, shows in the domain',
          libvirtCode: null,
        },
        finishedAt: new Date().toISOString(),
      });
      this.logger.warn(`job ${id} (${record.type}): queue entry lost; failed (not re-queueable)`);
      report.failed.push(id);
      return;
    }
    await this.queues.add(job);
    this.logger.warn(`job ${id} (${record.type}, ${record.state}): queue entry lost; queued again`);
    report.requeued.push(id);
  }
}

/**
 * The queue entry of a job rebuilt from its record (what the api queued:
 * the resolved params, the target), or null when the record's params had
 * secrets taken out. The requester's access is not in the record: the job
 * runs with the least (jobAccess), which only narrows the paths it may use.
 */
export function queuedJobOf(record: JobRecord): QueuedJob | null {
  const resolved: Record<string, unknown> = { ...record.resolved };
  if (JSON.stringify(resolved).includes(REDACTED)) return null;
  delete resolved.domainUuid;
  return {
    jobId: record.id,
    type: record.type,
    target: {
      host: record.host,
      uuid: record.domainUuid,
      name: record.domain,
    } as QueuedJob['target'],
    params: resolved as JobParams[typeof record.type],
    requestId: record.requestId,
  };
}
