import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { DelayedError, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { hostname } from 'node:os';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { redactSecrets, redactText } from '#src/common/redact.js';
import { fromLibvirtError } from '#src/common/errors/libvirt-errors.js';
import { fromRedisError } from '#src/common/errors/redis-errors.js';
import { WorkerConnections } from '#src/hosts/host-connections.js';
import { HostRegistry } from '#src/hosts/host-registry.js';
import {
  findDomainByUuid,
  LibvirtError,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import { RedisRecovery } from '#src/redis/redis-recovery.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { JobStore, type JobError, type JobRecord } from './job-store.js';
import {
  DOMAIN_MAY_BE_ABSENT,
  isBlockJobType,
  JOB_TYPES,
  QUEUES,
  TERMINAL_STATES,
  type JobType,
  type QueuedJob,
} from './job-types.js';
import {
  JobProcessor,
  type DomainOf,
  type JobContext,
  type JobHandler,
  type QueueProcessor,
} from './processor.js';
import { HandBack, JobEnd } from './job-end.js';
import {
  bullConnection,
  MAX_STALLS,
  replicasAcknowledging,
  RETRY_BACKOFF,
  retryDelay,
  closeBullmq,
} from './queues.js';
import { BlockJobLedger } from './block-job-ledger.js';

/**
 * Refuses a set of processors that leaves a job type without a handler, or a
 * queue with two processors: such a worker would accept jobs it cannot run.
 */
export function checkProcessors(processors: readonly QueueProcessor[]): void {
  const problems: string[] = [];
  for (const queue of QUEUES) {
    const count = processors.filter((p) => p.queue === queue).length;
    if (count !== 1) problems.push(`queue '${queue}' has ${count} processors (needs exactly one)`);
  }
  for (const [type, queue] of Object.entries(JOB_TYPES)) {
    const p = processors.find((x) => x.queue === queue);
    if (p && typeof (p.handlers as Record<string, unknown>)[type] !== 'function') {
      problems.push(`job type '${type}' (queue '${queue}') has no handler`);
    }
  }
  for (const p of processors) {
    for (const type of Object.keys(p.handlers)) {
      const queue = (JOB_TYPES as Record<string, string>)[type];
      if (queue !== p.queue) {
        problems.push(
          `the processor of queue '${p.queue}' handles '${type}', ${queue === undefined ? 'which is no job type' : `a job type of queue '${queue}'`}`,
        );
      }
    }
  }
  if (problems.length > 0) throw new Error(`the worker cannot start: ${problems.join('; ')}`);
}

/**
 * The worker role: one BullMQ worker per queue, running each job through its
 * processor with a read-write connection to the job's host, and keeping the
 * job's record (state, result, error) true. A libvirt refusal fails the job at
 * once; a lost connection is retried with backoff, and the record says so. A
 * job whose record is already final is never run again.
 *
 * The processors are the providers marked @JobProcessor() in the features'
 * worker modules, found at boot.
 */
@Injectable()
export class JobRunner implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(JobRunner.name);
  private readonly workers: Worker[] = [];
  private connection: RedisClient | null = null;
  private processors: QueueProcessor[] = [];
  /**
   * The jobs this process runs, with their record as last written: what
   * it writes back when Redis loses its data under them.
   */
  private readonly inFlight = new Map<string, { data: QueuedJob; record: JobRecord }>();
  /** Renews the in-flight jobs' held marks (an orphan is a job nobody holds). */
  private holdTimer: NodeJS.Timeout | null = null;
  private readonly holder = `${hostname()}:${process.pid}`;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly store: JobStore,
    private readonly registry: HostRegistry,
    private readonly connections: WorkerConnections,
    private readonly ledger: BlockJobLedger,
    private readonly discovery: DiscoveryService,
    private readonly recovery: RedisRecovery,
  ) {}

  /** How long a job's held mark outlives its worker: two lock periods, as BullMQ's stall check takes. */
  private get holdMs(): number {
    return 2 * this.config.jobLockMs;
  }

  onApplicationBootstrap(): void {
    this.recovery.register({
      name: 'the running jobs',
      order: 10,
      onDataLoss: () => this.restoreInFlight(),
    });
    this.holdTimer = setInterval(() => void this.renewHolds(), this.config.jobLockMs);
    this.holdTimer.unref();
    this.processors = this.discovery
      .getProviders({ metadataKey: JobProcessor.KEY })
      .map((wrapper) => wrapper.instance as QueueProcessor);
    checkProcessors(this.processors);
    this.connection = bullConnection(this.config.redisTopology, `virtgate-worker`);
    for (const processor of this.processors) {
      const worker = new Worker<QueuedJob>(
        processor.queue,
        (job, token) => this.run(processor, job, token),
        {
          connection: this.connection,
          prefix: this.keys.bull,
          concurrency: processor.concurrency,
          // A worker that dies leaves its jobs locked until the lock lapses; the stalled
          // check then hands them to another worker, whose handler finishes them.
          lockDuration: this.config.jobLockMs,
          stalledInterval: this.config.jobLockMs,
          maxStalledCount: MAX_STALLS,
          settings: {
            backoffStrategy: (attemptsMade, type) =>
              type === RETRY_BACKOFF ? retryDelay(attemptsMade) : 1000,
          },
        },
      );
      worker.on('error', (err) => this.logger.error(`queue '${processor.queue}': ${err.message}`));
      worker.on('failed', (job, err) => void this.failedOutside(job, err));
      // BullMQ keeps its copy of a finished job for a while: without the secrets its params
      // carried for the handler (a VNC passwd in raw XML; the record never had them).
      worker.on('completed', (job) => void forgetSecrets(job));
      worker.on('failed', (job) => void forgetSecrets(job));
      this.workers.push(worker);
    }
    this.logger.log(`processing queues: ${QUEUES.join(', ')}`);
  }

  /** Lets running jobs finish (BullMQ hands back any it cannot), then closes the connections. */
  async onApplicationShutdown(): Promise<void> {
    if (this.holdTimer) clearInterval(this.holdTimer);
    // Running jobs may take a while to finish; a Redis that is gone must not hold the shutdown.
    await closeBullmq(this.workers, 10_000);
    this.connection?.disconnect();
  }

  private async run(
    processor: QueueProcessor,
    bullJob: Job<QueuedJob>,
    token: string | undefined,
  ): Promise<void> {
    const data = bullJob.data;
    const id = data.jobId;
    const record = await this.store.get(id);
    if (!record) throw new UnrecoverableError(`job ${id} has no record`);
    if (TERMINAL_STATES.has(record.state)) return; // finished before a crash: never run twice
    const now = (): string => new Date().toISOString();
    // Canceled before it ever started. (A job that started and was then asked to stop is
    // its handler's to stop: a block job must be aborted in libvirt, even after a crash.)
    if (record.cancelRequested && record.startedAt === null) {
      await this.store.update(id, { state: 'canceled', finishedAt: now() });
      return;
    }
    const log = this.logger;
    const running = await this.store.update(id, {
      // A job run again after its worker died keeps the state it reached (ready, pivoting).
      state: record.state === 'queued' ? 'running' : record.state,
      startedAt: record.startedAt ?? now(),
      // What stopped an earlier attempt (a lost host) is past once this one runs.
      error: null,
      attempts: Math.max(bullJob.attemptsMade + 1, bullJob.attemptsStarted),
    });
    if (!(await this.replicated())) {
      // A failover now could bring back a Redis where this job was never taken: another
      // worker would run it too. It runs once the start is known to be on the replicas.
      log.warn(`job ${id}: its start is not on enough Redis replicas (REDIS_WAIT_REPLICAS); later`);
      await this.store.update(id, { state: record.state, startedAt: record.startedAt });
      await bullJob.moveToDelayed(Date.now() + 1000, token);
      throw new DelayedError();
    }
    this.inFlight.set(id, { data, record: running ?? record });
    await this.redis.set(this.keys.jobHeld(id), this.holder, 'PX', this.holdMs);
    const note = (updated: JobRecord | null): void => {
      const entry = this.inFlight.get(id);
      if (entry && updated) entry.record = updated;
    };
    let handlerCalled = false;
    try {
      const host = await this.registry.get(data.target.host);
      const handler = (processor.handlers as Record<JobType, JobHandler<JobType>>)[data.type];
      const result = await this.connections.withClient(host, async (client) => {
        const ctx: JobContext<JobType> = {
          job: data,
          record,
          host,
          client,
          dom: (await domainOf(client, data)) as DomainOf<JobType>,
          setState: async (state) => note(await this.store.update(id, { state })),
          setProgress: async (progress) => note(await this.store.update(id, { progress })),
          cancelRequested: () => this.store.cancelRequested(id),
        };
        // Logged as the handler is called (what a job run twice would show twice).
        log.log(
          `job ${id} (${data.type}) on ${data.target.host}${data.target.name === null ? '' : `/${data.target.name}`}: running [request ${data.requestId}]`,
        );
        handlerCalled = true;
        return handler(ctx);
      });
      await this.persist(() =>
        this.store.update(id, { state: 'completed', result, error: null, finishedAt: now() }),
      );
      await this.endReplicated(id);
      log.log(`job ${id}: completed`);
    } catch (err) {
      if (err instanceof HandBack) {
        // Back to waiting, as it is (not an attempt, not a stall): the next worker re-attaches.
        log.log(`job ${id}: handed back (shutting down)`);
        await bullJob.moveToWait(token);
        throw new WaitingError();
      }
      if (!handlerCalled && fromRedisError(err)) {
        // Redis went away before anything was done: the job waits for it, no attempt spent.
        log.warn(`job ${id}: Redis is not answering (${(err as Error).message}); later`);
        await bullJob.moveToDelayed(Date.now() + 1000, token);
        throw new DelayedError();
      }
      if (err instanceof JobEnd) {
        const error = err.error ? jobError(err.error) : null;
        await this.persist(() =>
          this.store.update(id, {
            state: err.state,
            result: err.result,
            error,
            finishedAt: now(),
          }),
        );
        await this.endReplicated(id);
        log.log(`job ${id}: ${err.state}${error ? `: ${error.message}` : ''}`);
        if (err.state === 'failed') throw new UnrecoverableError(err.message);
        return;
      }
      const appError =
        err instanceof AppError
          ? err
          : (fromLibvirtError(err) ??
            new AppError(ErrorCode.INTERNAL, (err as Error).message, { cause: err }));
      const error = jobError(appError);
      const transient = appError.code === ErrorCode.HOST_UNREACHABLE;
      // A block job libvirt was asked to start may run on there whatever our connection
      // does: it keeps its state (running, ready) while the worker retries, and says why.
      const mayRunInLibvirt =
        isBlockJobType(data.type) && (await this.ledger.book(id)).phase !== null;
      if (transient && bullJob.attemptsMade + 1 < (bullJob.opts.attempts ?? 1)) {
        log.warn(`job ${id}: ${appError.message}; will retry`);
        await this.store.update(id, mayRunInLibvirt ? { error } : { state: 'queued', error });
        throw appError;
      }
      if (transient && mayRunInLibvirt) {
        const disk = (data.params as { disk?: string }).disk ?? '?';
        error.message += `; libvirt may still run the block job on disk '${disk}': GET the disk to see its chain`;
      }
      log.warn(`job ${id}: failed: ${appError.message}`);
      await this.store.update(id, { state: 'failed', error, finishedAt: now() });
      await this.endReplicated(id);
      throw new UnrecoverableError(appError.message);
    } finally {
      this.inFlight.delete(id);
      await this.redis.del(this.keys.jobHeld(id)).catch(() => undefined);
    }
  }

  private async renewHolds(): Promise<void> {
    if (this.inFlight.size === 0 || this.redis.status !== 'ready') return;
    const pipeline = this.redis.pipeline();
    for (const id of this.inFlight.keys()) {
      pipeline.set(this.keys.jobHeld(id), this.holder, 'PX', this.holdMs);
    }
    await pipeline.exec().catch(() => undefined);
  }

  /**
   * Redis lost its data under the jobs running here: their records (as last
   * written), held marks, and for block jobs the disk's claim and the book,
   * are written back, so each caller's job URL works again, the job ends as
   * it would have, and reconciliation takes none of their libvirt jobs for
   * an orphan. BullMQ's copy is not: the job finishes here, and if this
   * worker dies first, the orphan sweep queues it again from its record.
   */
  private async restoreInFlight(): Promise<void> {
    for (const [id, { data, record }] of this.inFlight) {
      const restored = await this.store.restore(record);
      await this.redis.set(this.keys.jobHeld(id), this.holder, 'PX', this.holdMs);
      const disk = (data.params as { disk?: string }).disk;
      if (isBlockJobType(data.type) && disk && data.target.uuid) {
        await this.ledger.restore(id, {
          host: data.target.host,
          domainUuid: data.target.uuid,
          disk,
        });
      }
      if (restored)
        this.logger.log(
          `job ${id} (${data.type}): record written back after the loss of Redis data`,
        );
    }
  }

  /**
   * A job's end, written however long Redis takes to come back (within 2
   * minutes): a handler that ran must not be run again for want of its
   * record saying so.
   */
  private async persist(write: () => Promise<unknown>): Promise<void> {
    const deadline = Date.now() + 120_000;
    for (let attempt = 0; ; attempt++) {
      try {
        await write();
        return;
      } catch (err) {
        if (!fromRedisError(err) || Date.now() > deadline) throw err;
        if (attempt === 0) this.logger.warn(`Redis is not answering; retrying a job's end`);
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 2000)));
      }
    }
  }

  /**
   * With REDIS_WAIT_REPLICAS: whether the replicas have every write so far
   * (the record's, on the shared connection, came after BullMQ's move of the
   * job): a failover then keeps them. Always true without it.
   */
  private async replicated(): Promise<boolean> {
    const { redisWaitReplicas: replicas, redisWaitTimeoutMs: timeoutMs } = this.config;
    if (replicas === 0) return true;
    return (await replicasAcknowledging(this.redis, replicas, timeoutMs)) >= replicas;
  }

  /**
   * A job's end on the replicas before BullMQ hears of it: after a failover,
   * a BullMQ copy still `active` is run again only to find its record final.
   * What ran cannot be undone, so a shortfall is only said.
   */
  private async endReplicated(id: string): Promise<void> {
    if (!(await this.replicated())) {
      this.logger.warn(`job ${id}: its end is not on enough Redis replicas (REDIS_WAIT_REPLICAS)`);
    }
  }

  /**
   * A job BullMQ failed without running it: one whose workers died too often
   * (MAX_STALLS). Its record says so rather than staying `running` for ever.
   */
  private async failedOutside(job: Job<QueuedJob> | undefined, err: Error): Promise<void> {
    if (!job?.data?.jobId || !job.deferredFailure) return;
    const record = await this.store.get(job.data.jobId).catch(() => null);
    if (!record || TERMINAL_STATES.has(record.state)) return;
    this.logger.warn(`job ${record.id}: failed by the queue: ${err.message}`);
    await this.store
      .update(record.id, {
        state: 'failed',
        error: {
          code: ErrorCode.INTERNAL,
          message: `the workers running this job stopped ${MAX_STALLS + 1} times (${err.message}); what it changed, if anything, shows in the domain`,
          libvirtCode: null,
        },
        finishedAt: new Date().toISOString(),
      })
      .catch(() => undefined);
  }
}

/** Replaces a finished job's params in BullMQ's copy by their redacted form (not before: a retry needs them). */
async function forgetSecrets(job: Job<QueuedJob> | undefined): Promise<void> {
  if (!job?.data) return;
  const params = redactSecrets(job.data.params);
  if (JSON.stringify(params) === JSON.stringify(job.data.params)) return;
  if (!(await job.isCompleted().catch(() => false)) && !(await job.isFailed().catch(() => false)))
    return;
  await job.updateData({ ...job.data, params }).catch(() => undefined);
}

function jobError(err: AppError): JobError {
  let cause: unknown = err.cause;
  while (cause instanceof Error && !(cause instanceof LibvirtError)) cause = cause.cause;
  return {
    code: err.code,
    message: redactText(err.message), // libvirt may quote what it was given
    libvirtCode: cause instanceof LibvirtError ? cause.codeName : null,
  };
}

/**
 * The job's domain as libvirt has it now: none for a host job; null for a type
 * whose domain may be absent (a define not done yet, an undefine done already).
 */
async function domainOf(client: LibvirtClient, job: QueuedJob): Promise<RemoteDomain | null> {
  const { uuid, name } = job.target;
  if (uuid === null || name === null) return null;
  try {
    return await lookupByUuid(client, uuid, name);
  } catch (err) {
    const mayBeAbsent = (DOMAIN_MAY_BE_ABSENT as readonly JobType[]).includes(job.type);
    if (mayBeAbsent && err instanceof AppError && err.code === ErrorCode.NOT_FOUND) return null;
    throw err;
  }
}

async function lookupByUuid(
  client: LibvirtClient,
  uuid: string,
  name: string,
): Promise<RemoteDomain> {
  const dom = await findDomainByUuid(client, uuid);
  if (!dom) throw new AppError(ErrorCode.NOT_FOUND, `domain '${name}' (${uuid}) no longer exists`);
  return dom;
}
