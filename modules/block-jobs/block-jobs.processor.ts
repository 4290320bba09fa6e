import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { fromLibvirtError } from '#src/common/errors/libvirt-errors.js';
import { HostEvents } from '#src/hosts/host-events.js';
import { jobAccess, PathConfinement } from '#src/hosts/path-confinement.js';
import {
  BlockJobStatus,
  domainState,
  DomainBlockJobAbortFlags,
  DomainBlockJobInfoFlags,
  DomainXmlFlags,
  findStoragePool,
  isBlockCopyActive,
  isInvalidArg,
  isOperationInvalid,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { parseDomainXml, type DiskXml } from '#src/xml/domain-xml.js';
import { BlockJobLedger, type DiskRef } from '#jobs/block-job-ledger.js';
import { HandBack, JobEnd } from '#jobs/job-end.js';
import { JobSignals } from '#jobs/job-signals.js';
import { JobStore } from '#jobs/job-store.js';
import type {
  BlockCommitParams,
  BlockCopyParams,
  BlockJobType,
  BlockPullParams,
  JobState,
} from '#jobs/job-types.js';
import { JobProcessor, type JobContext, type QueueProcessor } from '#jobs/processor.js';
import { RedisRecovery } from '#src/redis/redis-recovery.js';
import { disksView } from '#modules/domains/index.js';
import type { DiskModel } from '#modules/domains/models/domain.model.js';
import { isAdopted, outcomeOfJob, shapeOfJob } from './adoption.js';
import type { BlockJobResult, LibvirtBlockJobStatus } from './models/block-job-results.model.js';
import { chainPaths, conflict, usableChain, type ChainOutcome } from './block-chain.js';
import { BlockJobWatch } from './block-job-watch.js';
import { BLOCK_JOB_DOMAIN_STATES, confineCopy, planOf } from './plans/index.js';

/** How often a running block job's progress is read (and cancel or pivot requests looked at). */
const POLL_MS = 250;
/**
 * The same for a job that waits in `ready` for a pivot or a cancel: nothing
 * moves there, and many may wait for hours (events still wake it at once).
 */
const READY_POLL_MS = 1000;
/** How long a job that vanished from libvirt may take to send its terminal event. */
const EVENT_GRACE_MS = 1000;
/** How long libvirt may take to show a completed job's chain in the live XML. */
const CHAIN_SETTLE_MS = 5000;

const STATUS_NAMES: Record<number, LibvirtBlockJobStatus> = {
  [BlockJobStatus.COMPLETED]: 'completed',
  [BlockJobStatus.FAILED]: 'failed',
  [BlockJobStatus.CANCELED]: 'canceled',
  [BlockJobStatus.READY]: 'ready',
};

type AnyParams = BlockCommitParams | BlockCopyParams | BlockPullParams;

interface DiskRead {
  disk: DiskXml;
  view: DiskModel;
  persistent: boolean;
  running: boolean;
}

interface Ending {
  /** libvirt's terminal status from BLOCK_JOB_2, or null when the job was found gone without one. */
  status: number | null;
  /** The domain stopped while the job ran. */
  domainStopped: boolean;
}

/** What a block job run knows, carried from its start (or re-attach) to its end. */
interface Run {
  type: BlockJobType;
  params: AnyParams;
  twoPhase: boolean;
  libvirtType: number;
  chainAtStart: string[];
  reattached: boolean;
  aborted: boolean;
  pivoted: boolean;
  /** libvirt's `end` as last read (bytes to process), null until read. */
  end: number | null;
}

/** An error that a later attempt may not meet: the host went away. */
function isTransient(err: unknown): boolean {
  const appError = err instanceof AppError ? err : fromLibvirtError(err);
  return appError?.code === ErrorCode.HOST_UNREACHABLE;
}

/**
 * The worker side of block commit, copy and pull. A job is started only
 * after its plan resolved its references again against the live chain; then
 * it is followed through libvirt's BLOCK_JOB_2 events, heard from the host's
 * event source (and getBlockJobInfo every 250 ms, for progress and as a
 * fallback), pivoted when ready and wanted, aborted when canceled, and it is
 * complete only when the event says so and a fresh read of the live XML
 * shows the chain it leaves.
 *
 * Safe to run again after a crash: how far the start got is recorded before
 * and after asking libvirt (BlockJobLedger), so a re-run re-attaches to the
 * job libvirt still runs, or decides from the live chain how it ended, and
 * never starts it a second time.
 */
@Injectable()
@JobProcessor()
export class BlockJobsProcessor implements QueueProcessor<'block-jobs'>, BeforeApplicationShutdown {
  readonly queue = 'block-jobs' as const;
  /** Block jobs mostly wait on libvirt: many may be followed at once (BLOCK_JOB_CONCURRENCY). */
  readonly concurrency: number;
  private readonly logger = new Logger(BlockJobsProcessor.name);
  /** The worker is shutting down: jobs being followed are handed back, none is started. */
  private stopping = false;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly ledger: BlockJobLedger,
    private readonly events: HostEvents,
    private readonly signals: JobSignals,
    private readonly confinement: PathConfinement,
    private readonly store: JobStore,
    private readonly recovery: RedisRecovery,
  ) {
    this.concurrency = config.blockJobConcurrency;
  }

  /**
   * Whether the job's record exists. One found gone may be a loss of Redis
   * data this process has not noticed yet: the marker is looked at first,
   * which writes back the records of the jobs this worker runs.
   */
  private async recordStillThere(id: string): Promise<boolean> {
    if (await this.store.exists(id)) return true;
    await this.recovery.check();
    return this.store.exists(id);
  }

  /** Runs before the queues' workers are closed, which waits for the jobs they run. */
  beforeApplicationShutdown(): void {
    this.stopping = true;
  }

  readonly handlers: QueueProcessor<'block-jobs'>['handlers'] = {
    'block.commit': (ctx) => this.run(ctx),
    'block.copy': (ctx) => this.run(ctx),
    'block.pull': (ctx) => this.run(ctx),
  };

  private async run(ctx: JobContext<BlockJobType>): Promise<BlockJobResult> {
    const { job } = ctx;
    const diskRef: DiskRef = {
      host: job.target.host,
      domainUuid: job.target.uuid as string,
      disk: job.params.disk,
    };
    // Watch before anything is started: a fast job's events must not be missed.
    const watch = await BlockJobWatch.open(
      this.events,
      ctx.host,
      ctx.dom as RemoteDomain,
      job.params.disk,
    );
    let ended = false;
    try {
      const result = await this.drive(ctx, diskRef, watch);
      ended = true;
      return result;
    } catch (err) {
      // A lost host is retried, a job handed back is picked up again (both re-attach):
      // the disk stays the job's meanwhile.
      ended = !isTransient(err) && !(err instanceof HandBack);
      throw err;
    } finally {
      watch.close();
      if (ended) {
        await this.ledger.release(diskRef, job.jobId).catch(() => undefined);
        await this.refreshNewVolume(ctx.client, job.params);
      }
    }
  }

  /**
   * A copy into a new volume: libvirt made the file in the pool's directory;
   * a refresh makes the pool list it (its size up to date at the end). Best
   * effort: the copy does not depend on it.
   */
  private async refreshNewVolume(client: LibvirtClient, params: AnyParams): Promise<void> {
    const poolName = 'newVolumeIn' in params ? params.newVolumeIn : null;
    if (!poolName) return;
    try {
      const pool = await findStoragePool(client, poolName);
      if (pool) await client.rpc.storagePoolRefresh({ pool, flags: 0 });
    } catch (err) {
      this.logger.warn(`refreshing storage pool '${poolName}': ${(err as Error).message}`);
    }
  }

  private async drive(
    ctx: JobContext<BlockJobType>,
    diskRef: DiskRef,
    watch: BlockJobWatch,
  ): Promise<BlockJobResult> {
    const { client, job } = ctx;
    const dom = ctx.dom as RemoteDomain;
    const id = job.jobId;
    const target = job.params.disk;
    const book = await this.ledger.book(id);
    const info = await this.jobInfo(client, dom, target);
    if (info === null) {
      throw new AppError(ErrorCode.INVALID_STATE, `domain '${dom.name}' is not running`);
    }
    const read = await this.readDisk(client, dom, target);
    const fresh =
      book.phase === null ||
      // A start that did not take (the worker died while asking): nothing runs, nothing changed.
      (book.phase === 'starting' &&
        !info.found &&
        book.chainAtStart !== null &&
        outcomeOfJob(job.type, job.params, book.chainAtStart, chainPaths(read.disk)) ===
          'unchanged');

    let run: Run;
    if (this.stopping) throw new HandBack();
    if (fresh && isAdopted(job.params)) {
      // Adopted jobs are libvirt's: one whose bookkeeping is gone has nothing the gateway may start.
      throw new AppError(
        ErrorCode.INTERNAL,
        `job ${id}: an adopted block job without its record of the chain; reconciliation adopts libvirt's job anew`,
      );
    }
    if (fresh) {
      if (await ctx.cancelRequested()) {
        throw new JobEnd('canceled', this.resultOf(read, null, 'unchanged', null, false, null));
      }
      await this.ledger.claim(diskRef, id);
      if (info.found) {
        throw conflict(
          `disk '${target}' has a block job that this job did not start (libvirt job type ${info.type}); it is left alone`,
        );
      }
      usableChain(read.disk);
      if (job.type === 'block.copy') {
        // Where the copy would write now, for the requester (an old job: the least privileged).
        const params = job.params as BlockCopyParams;
        await confineCopy(
          this.confinement,
          client,
          ctx.host,
          jobAccess(job.access),
          params,
          undefined,
          book.phase === null,
        );
      }
      const plan = planOf(job.type);
      const call = plan.prepare(job.params, read.disk, read.persistent);
      const shape = plan.shape(job.params);
      const chainAtStart = chainPaths(read.disk);
      await this.ledger.setPhase(id, 'starting', chainAtStart);
      this.logger.log(`job ${id}: starting ${job.type} on ${dom.name}/${target}`);
      await call(client, dom);
      await this.ledger.setPhase(id, 'started');
      await this.refreshNewVolume(client, job.params);
      run = {
        type: job.type,
        params: job.params,
        twoPhase: shape.twoPhase,
        libvirtType: shape.libvirtType,
        chainAtStart,
        reattached: false,
        aborted: false,
        pivoted: false,
        end: null,
      };
    } else {
      if (book.chainAtStart === null) {
        throw new AppError(ErrorCode.INTERNAL, `job ${id}: its start left no record of the chain`);
      }
      const { twoPhase, libvirtType } = shapeOfJob(job.type, job.params);
      if (info.found && info.type !== libvirtType) {
        throw conflict(
          `disk '${target}' now runs a block job of another type (${info.type}) than this job's (${libvirtType}); it is left alone`,
        );
      }
      this.logger.log(
        `job ${id}: re-attaching (${isAdopted(job.params) ? 'adopted' : `start ${book.phase}`}; libvirt ${info.found ? `still runs it, ${info.cur}/${info.end}` : 'has no job on the disk any more'})`,
      );
      run = {
        type: job.type,
        params: job.params,
        twoPhase,
        libvirtType,
        chainAtStart: book.chainAtStart,
        reattached: true,
        aborted: false,
        pivoted: false,
        end: null,
      };
    }
    const ending = await this.follow(ctx, watch, run);
    return this.finish(ctx, run, ending);
  }

  /** Follows the job until libvirt no longer has it: progress, ready, cancel, pivot. */
  private async follow(
    ctx: JobContext<BlockJobType>,
    watch: BlockJobWatch,
    run: Run,
  ): Promise<Ending> {
    const { client, job } = ctx;
    const dom = ctx.dom as RemoteDomain;
    const target = job.params.disk;
    const pivotWanted = 'pivot' in run.params && run.params.pivot;
    let state: JobState = ctx.record.state === 'queued' ? 'running' : ctx.record.state;
    let lastProgress = '';
    for (;;) {
      const terminal = watch.terminal();
      if (terminal) return { status: terminal.status, domainStopped: false };
      // libvirt goes on with the job; the next worker re-attaches to it.
      if (this.stopping) throw new HandBack();
      if (!(await this.recordStillThere(job.jobId))) {
        // Redis lost the record: reconciliation adopts libvirt's job as a job of its own, which
        // is pivoted or canceled; following it here too would only hold a slot until it ends.
        this.logger.warn(
          `job ${job.jobId}: its record is gone; libvirt's job is left to reconciliation`,
        );
        throw new JobEnd(
          'failed',
          {},
          new AppError(ErrorCode.INTERNAL, 'the record of the job was lost while it ran'),
        );
      }
      const info = await this.jobInfo(client, dom, target);
      if (info === null) return { status: null, domainStopped: true };
      if (!info.found) {
        // Gone from libvirt: its terminal event may still be on its way.
        const grace = Date.now() + EVENT_GRACE_MS;
        while (!watch.terminal() && Date.now() < grace) await watch.sleep(grace - Date.now());
        return { status: watch.terminal()?.status ?? null, domainStopped: false };
      }
      const progress = {
        cur: info.cur,
        end: info.end,
        percent: info.end > 0 ? Math.floor((info.cur * 100) / info.end) : 0,
      };
      // libvirt keeps cur < end until QEMU says the job is ready, so either tells.
      const ready = watch.sawReady() || (info.end > 0 && info.cur === info.end);
      if (run.twoPhase && ready && info.end > 0) {
        // The READY event may come just after this read: ready is all copied.
        progress.cur = info.end;
        progress.percent = 100;
      }
      run.end = info.end;
      const key = `${progress.cur}/${progress.end}`;
      if (key !== lastProgress) {
        lastProgress = key;
        await ctx.setProgress(progress);
      }
      if (run.twoPhase && ready && state === 'running') {
        await ctx.setState('ready');
        state = 'ready';
      }
      if (!run.aborted && state !== 'pivoting' && (await ctx.cancelRequested())) {
        this.logger.log(`job ${job.jobId}: canceling (abort without pivot)`);
        run.aborted = await this.abort(client, dom, target, 0);
      } else if (
        run.twoPhase &&
        !run.aborted &&
        (state === 'ready' || state === 'pivoting') &&
        (pivotWanted || (await this.ledger.pivotRequested(job.jobId)))
      ) {
        if (state !== 'pivoting') {
          await ctx.setState('pivoting');
          state = 'pivoting';
        }
        this.logger.log(`job ${job.jobId}: pivoting`);
        try {
          run.pivoted = await this.abort(client, dom, target, DomainBlockJobAbortFlags.PIVOT);
        } catch (err) {
          if (!isBlockCopyActive(err)) throw err;
          // Not ready after all: wait for READY.
          await ctx.setState('running');
          state = 'running';
        }
      }
      // Until the next look: sooner on an event from libvirt or a cancel or pivot request.
      const wait = state === 'ready' ? READY_POLL_MS : POLL_MS;
      const request = await this.signals.next(job.jobId, wait).catch(() => null);
      await watch.sleep(wait, request?.promise);
      request?.cancel();
    }
  }

  /** Aborts (or with PIVOT, pivots) the disk's job; false when libvirt had none to abort any more. */
  private async abort(
    client: LibvirtClient,
    dom: RemoteDomain,
    target: string,
    flags: number,
  ): Promise<boolean> {
    try {
      await client.rpc.domainBlockJobAbort({ dom, path: target, flags });
      return true;
    } catch (err) {
      // No job any more (it ended meanwhile), or the domain stopped: the next look tells which.
      if (isInvalidArg(err) || isOperationInvalid(err)) return false;
      throw err;
    }
  }

  /**
   * Decides how the job ended from a fresh read of the live chain: applied,
   * unchanged (canceled, failed) or neither. A completion libvirt reported must
   * show in the live XML; it is read again for a few seconds until it does.
   */
  private async finish(
    ctx: JobContext<BlockJobType>,
    run: Run,
    ending: Ending,
  ): Promise<BlockJobResult> {
    const { client, job } = ctx;
    const dom = ctx.dom as RemoteDomain;
    const target = job.params.disk;
    const deadline =
      Date.now() + (ending.status === BlockJobStatus.COMPLETED ? CHAIN_SETTLE_MS : 0);
    let read: DiskRead;
    let outcome: ChainOutcome;
    for (;;) {
      read = await this.readDisk(client, dom, target);
      outcome = outcomeOfJob(run.type, run.params, run.chainAtStart, chainPaths(read.disk));
      if (outcome === 'applied' || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const result = this.resultOf(
      read,
      run,
      outcome,
      ending.status,
      ending.status !== null,
      run.twoPhase ? outcome === 'applied' : null,
    );
    const chain = chainPaths(read.disk).join(' <- ');
    if (outcome === 'applied') {
      if (run.end !== null) await ctx.setProgress({ cur: run.end, end: run.end, percent: 100 });
      this.logger.log(
        `job ${job.jobId}: applied (${ending.status === null ? 'seen in the live chain' : `libvirt: ${STATUS_NAMES[ending.status]}`}); chain now ${chain}`,
      );
      return result;
    }
    const canceled = run.aborted || (await ctx.cancelRequested());
    if (outcome === 'unchanged' && canceled) throw new JobEnd('canceled', result);
    let why: AppError;
    if (ending.domainStopped || !read.running) {
      // A stopped domain's XML names only its top image: libvirt probes chains of running domains.
      why = new AppError(
        ErrorCode.INVALID_STATE,
        `domain '${dom.name}' stopped while the block job ran: libvirt ended the job with it (the disk's image is now ${chainPaths(read.disk)[0] ?? 'none'})`,
      );
    } else if (outcome === 'unexpected') {
      why = conflict(
        `the chain of disk '${target}' is neither the one the job started on nor the one it leaves: ${chain}`,
      );
    } else if (ending.status === BlockJobStatus.FAILED) {
      why = new AppError(
        ErrorCode.INTERNAL,
        "libvirt reported that the block job failed (QEMU's reason is in libvirt's log); the chain is as it was",
      );
    } else if (ending.status === BlockJobStatus.COMPLETED) {
      why = new AppError(
        ErrorCode.INTERNAL,
        `libvirt reported the block job completed, but the live chain does not show it: ${chain}`,
      );
    } else {
      why = conflict(
        'the block job ended without being applied (aborted outside the gateway?); the chain is as it was',
      );
    }
    throw new JobEnd('failed', result, why);
  }

  private resultOf(
    read: DiskRead,
    run: Run | null,
    outcome: ChainOutcome,
    status: number | null,
    byEvent: boolean,
    pivoted: boolean | null,
  ): BlockJobResult {
    return {
      outcome,
      // libvirt's event has these four statuses only (virConnectDomainEventBlockJobStatus).
      libvirtStatus: status === null ? null : (STATUS_NAMES[status] ?? null),
      completionSeenIn: outcome === 'applied' ? (byEvent ? 'event+chain' : 'chain') : null,
      pivoted,
      reattached: run?.reattached ?? false,
      chainBefore: run?.chainAtStart ?? chainPaths(read.disk),
      disk: read.view,
      persistentChainDiffers: read.persistent ? read.view.persistentChainDiffers : null,
    };
  }

  /** getBlockJobInfo in bytes, as numbers; null when the domain is not running (no job can be). */
  private async jobInfo(
    client: LibvirtClient,
    dom: RemoteDomain,
    target: string,
  ): Promise<{ found: boolean; type: number; cur: number; end: number } | null> {
    try {
      const info = await client.rpc.domainGetBlockJobInfo({
        dom,
        path: target,
        flags: DomainBlockJobInfoFlags.BANDWIDTH_BYTES,
      });
      return {
        found: info.found === 1,
        type: info.type,
        cur: Number(info.cur),
        end: Number(info.end),
      };
    } catch (err) {
      if (isOperationInvalid(err) && !(await this.active(client, dom))) {
        return null;
      }
      throw err;
    }
  }

  private async active(client: LibvirtClient, dom: RemoteDomain): Promise<boolean> {
    return BLOCK_JOB_DOMAIN_STATES.has(await domainState(client, dom));
  }

  /** The disk as the live XML has it now, with the gateway's view of it (and the persistent definition's). */
  private async readDisk(
    client: LibvirtClient,
    dom: RemoteDomain,
    target: string,
  ): Promise<DiskRead> {
    const [xml, isPersistent, running] = await Promise.all([
      client.rpc.domainGetXmlDesc({ dom, flags: 0 }),
      client.rpc.domainIsPersistent({ dom }),
      this.active(client, dom),
    ]);
    const live = parseDomainXml(xml.xml);
    const persistent =
      isPersistent.persistent === 1
        ? parseDomainXml(
            (await client.rpc.domainGetXmlDesc({ dom, flags: DomainXmlFlags.INACTIVE })).xml,
          )
        : null;
    const disk = live.disks.find((d) => d.target === target);
    const view = disksView(live, persistent, null).find((d) => d.target === target);
    if (!disk || !view) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `domain '${dom.name}' has no disk '${target}' any more`,
      );
    }
    return { disk, view, persistent: persistent !== null, running };
  }
}
