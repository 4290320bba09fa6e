import type { OnApplicationShutdown } from '@nestjs/common';
import { Queue, type JobsOptions } from 'bullmq';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import {
  createRedisConnection,
  type RedisClient,
  type RedisTopology,
} from '#src/redis/redis-connection.js';
import {
  isBlockJobType,
  JOB_TYPES,
  QUEUES,
  type JobType,
  type QueueName,
  type QueuedJob,
} from './job-types.js';

/**
 * How many times a job may lose its worker (a crash, a kill) and be handed to
 * another before BullMQ fails it: handlers are safe to run again, so a few.
 */
export const MAX_STALLS = 5;

/** The backoff type of every job: exponential from 1 s, capped (see `retryDelay`). */
export const RETRY_BACKOFF = 'capped-exponential';
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

/**
 * How often a job is tried when its host cannot be reached (transient
 * failures; libvirt refusing fails a job at once). A short job tells its
 * caller soon (after about 3 s). A block job may run in libvirt for hours
 * whatever the connection does: giving up on it would leave libvirt's job
 * with nobody to pivot or watch it, so it rides out about 15 minutes of
 * outage (1, 2, 4, 8, 16 s, then every 30 s).
 */
export function retryAttempts(type: JobType): number {
  return isBlockJobType(type) ? 35 : 3;
}

/** The wait before retry `attemptsMade` (1-based): doubling from 1 s, at most 30 s, with ±20 % jitter. */
export function retryDelay(attemptsMade: number): number {
  const base = Math.min(RETRY_FIRST_MS * 2 ** Math.max(0, attemptsMade - 1), RETRY_MAX_MS);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/**
 * The options every job is added with: our record's id as BullMQ's job id (so
 * adding the same job twice is a no-op), retries with backoff for transient
 * failures, and bounded retention of BullMQ's own copies (our records stay in
 * the job store).
 */
export function jobOptions(jobId: string, type: JobType): JobsOptions {
  return {
    jobId,
    attempts: retryAttempts(type),
    backoff: { type: RETRY_BACKOFF },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
  };
}

/**
 * A Redis connection as BullMQ wants it (blocking commands must not give up
 * after N retries), on the configured topology (src/redis/redis-connection.ts).
 */
export function bullConnection(topology: RedisTopology, name: string): RedisClient {
  return createRedisConnection(topology, name, 'bullmq');
}

/**
 * How many replicas have every write `connection` made so far (Redis WAIT),
 * within `timeoutMs`; the count, or 0 when the command failed. WAIT counts
 * what the connection wrote up to its last write, whatever other connections
 * wrote before it: the last write of a step decides which connection waits.
 */
export async function replicasAcknowledging(
  connection: RedisClient,
  replicas: number,
  timeoutMs: number,
): Promise<number> {
  try {
    return (await connection.wait(replicas, timeoutMs)) as number;
  } catch {
    return 0;
  }
}

/** How many replicas must have a write before it counts (REDIS_WAIT_REPLICAS, REDIS_WAIT_TIMEOUT_MS). */
export interface ReplicaWait {
  readonly replicas: number;
  readonly timeoutMs: number;
}

/** The producer side: one BullMQ queue per queue name, on a connection of its own. */
export class JobQueues implements OnApplicationShutdown {
  private readonly connection: RedisClient;
  private readonly queues: Map<QueueName, Queue>;

  constructor(
    topology: RedisTopology,
    prefix: string,
    private readonly replicaWait: ReplicaWait = { replicas: 0, timeoutMs: 0 },
  ) {
    this.connection = bullConnection(topology, 'virtgate-queues');
    this.queues = new Map(
      QUEUES.map((name) => [name, new Queue(name, { connection: this.connection, prefix })]),
    );
  }

  queueOf(type: JobType): Queue {
    return this.queues.get(JOB_TYPES[type])!;
  }

  /**
   * Queues a job. With REDIS_WAIT_REPLICAS, only once that many replicas have
   * it (and its record, written before): a failover right after cannot lose a
   * job its caller was told about. Short of them, 503: the job may or may not
   * run, and a retry with the same Idempotency-Key gives back the same one.
   */
  async add(job: QueuedJob): Promise<void> {
    await this.queueOf(job.type).add(job.type, job, jobOptions(job.jobId, job.type));
    const { replicas, timeoutMs } = this.replicaWait;
    if (replicas === 0) return;
    const acknowledged = await replicasAcknowledging(this.connection, replicas, timeoutMs);
    if (acknowledged < replicas) {
      throw new AppError(
        ErrorCode.UNAVAILABLE,
        `the job was written, but ${acknowledged} of the ${replicas} Redis replicas required (REDIS_WAIT_REPLICAS) confirmed it within ${timeoutMs} ms: it may be lost in a failover; retry with the same Idempotency-Key`,
        { retryAfterSeconds: 1 },
      );
    }
  }

  /** Whether BullMQ holds the job (in any state). */
  async has(type: JobType, jobId: string): Promise<boolean> {
    return (await this.queueOf(type).getJob(jobId)) !== undefined;
  }

  /** Removes a job that no worker has taken yet; false if it is running (or gone). */
  async removeWaiting(type: JobType, jobId: string): Promise<boolean> {
    const job = await this.queueOf(type).getJob(jobId);
    if (!job) return false;
    const state = await job.getState();
    if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false; // a worker took it meanwhile
    }
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  /** Closes the queues; a Redis that does not answer cannot hold the shutdown for more than 5 s. */
  async close(): Promise<void> {
    await closeBullmq([...this.queues.values()], 5000);
    this.connection.disconnect();
  }
}

/**
 * Closes BullMQ queues or workers, each once its connections have finished
 * starting (bounded by `ms`, as is the close). BullMQ's close of a shared
 * connection still starting leaves that start running and drops its error
 * listeners: when the connection is then closed, the start fails into an
 * 'error' event nobody hears, which is an unhandled rejection (a crash in a
 * worker process). Seen when a gateway stops right after it started, as a
 * failed boot does.
 */
export async function closeBullmq(
  closables: readonly { waitUntilReady(): Promise<unknown>; close(): Promise<void> }[],
  ms: number,
): Promise<void> {
  await withDeadline(Promise.all(closables.map((c) => c.waitUntilReady())), ms);
  await withDeadline(Promise.all(closables.map((c) => c.close())), ms);
}

/** Resolves when `p` settles or after `ms`, whichever comes first (for shutdown paths). */
export async function withDeadline(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}
