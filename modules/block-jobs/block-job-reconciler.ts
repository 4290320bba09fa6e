import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { fromLibvirtError } from '#src/common/errors/libvirt-errors.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { HostConnections } from '#src/hosts/host-connections.js';
import { HostRegistry, type HostRecord } from '#src/hosts/host-registry.js';
import {
  ConnectListAllDomainsFlags as ListFlags,
  DomainBlockJobInfoFlags,
  DomainXmlFlags,
  ErrorNumber,
  findDomainByUuid,
  isLibvirtError,
  isNoDomain,
  isOperationInvalid,
  uuidString,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { RECONCILE_ORDER, RedisRecovery } from '#src/redis/redis-recovery.js';
import { parseDomainXml, type DiskXml, type DomainXml } from '#src/xml/domain-xml.js';
import { BlockJobLedger, type DiskRef } from '#jobs/block-job-ledger.js';
import { JobStore, type JobError, type JobRecord } from '#jobs/job-store.js';
import {
  isBlockJobType,
  TERMINAL_STATES,
  type BlockJobType,
  type JobParams,
  type JobState,
} from '#jobs/job-types.js';
import { JobQueues, withDeadline } from '#jobs/queues.js';
import { disksView } from '#modules/domains/index.js';
import { adoptedParams, adoptedShape, jobTypeOf, outcomeOfJob, shapeOfJob } from './adoption.js';
import { chainPaths } from './block-chain.js';

/** Who an adopted job's record says asked for it: no caller did. */
export const ADOPTED_BY = 'virtgate:reconciliation';
/** How long a worker may hold a host's reconciliation (renewed as it goes from domain to domain). */
const LOCK_MS = 30_000;
/** How long a reconciliation waits for another worker's on the same host to end. */
const LOCK_WAIT_MS = 60_000;
/** How long the shutdown waits for the reconciliations under way. */
const SHUTDOWN_WAIT_MS = 10_000;
/** The states of a record whose job may have lost its queue entry while libvirt ran it. */
const LIVE_STATES: readonly JobState[] = ['running', 'ready', 'pivoting', 'queued'];

/** Deletes a lock only if it still holds our token. */
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Extends a lock only if it still holds our token. */
const RENEW_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

/** The request kinds by job type, as an adopted record's `request.type` names them. */
const KINDS: Record<BlockJobType, string> = {
  'block.commit': 'commit',
  'block.copy': 'copy',
  'block.pull': 'pull',
};

/** What one reconciliation of a host did. */
export interface ReconcileReport {
  host: string;
  /** Block jobs libvirt ran with no live record of the gateway's, each now a job (`adopted: true`). */
  adopted: { jobId: string; type: BlockJobType; domain: string; disk: string; state: JobState }[];
  /** Records whose queue entry was lost while libvirt still ran their job: queued again, to re-attach. */
  requeued: string[];
  /** Records whose queue entry and libvirt job were both gone: finished from the live chain, not run again. */
  finished: { jobId: string; state: JobState }[];
  /** Block jobs left alone, and why (a type the gateway does not run, a disk another job is claiming). */
  skipped: { domain: string; disk: string; reason: string }[];
  /** Why the host was not (fully) reconciled: unreachable, a driver without block jobs; null when it was. */
  error: string | null;
}

/**
 * Keeps the gateway's block job records and libvirt's block jobs together,
 * host by host, in the worker role: the one place where a job lost with
 * Redis's data, or started outside the gateway (`virsh blockcopy`), becomes a
 * job again instead of a mirror nobody will ever pivot.
 *
 * - Each block job libvirt runs on a disk that no live job of the gateway
 *   holds is adopted: a record (`adopted: true`) with what libvirt says of
 *   it (type, progress, ready, the mirror's image), the disk claimed for it,
 *   its bookkeeping written as started on the live chain, and queued, so the
 *   processor re-attaches to it and follows it like any other: it waits in
 *   `ready` for a pivot or a cancel through the API.
 * - Each record of a block job that should be running but whose queue entry
 *   is gone is queued again when libvirt still runs the job, and otherwise
 *   finished from the live chain (completed, canceled or failed), never
 *   started a second time.
 *
 * It runs at worker boot for every host, when a host's event link comes back
 * (HostEventPublisher, one worker per host), and when asked
 * (`reconcileHost`, `reconcileAll`: after a loss of Redis's data). Workers
 * reconciling one host take turns (a lock with a TTL), and the disk's claim
 * is taken before any record is written, so one block job is adopted once
 * however many workers look at it.
 */
@Injectable()
export class BlockJobReconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(BlockJobReconciler.name);
  private readonly running = new Set<Promise<unknown>>();
  private closed = false;
  private readonly rechecks = new Map<string, NodeJS.Timeout>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly registry: HostRegistry,
    private readonly connections: HostConnections,
    private readonly store: JobStore,
    private readonly queues: JobQueues,
    private readonly ledger: BlockJobLedger,
    private readonly recovery: RedisRecovery,
  ) {}

  /** Once the worker is up: every registered host, in the background (a host down is retried on reconnect). */
  onApplicationBootstrap(): void {
    // After a loss of Redis data: what libvirt runs with no record left is adopted.
    this.recovery.register({
      name: "the hosts' block jobs",
      order: RECONCILE_ORDER,
      onDataLoss: async () => {
        const failed = (await this.reconcileAll()).filter((r) => r.error !== null);
        if (failed.length > 0) {
          this.logger.warn(
            `after the loss of Redis data, not reconciled: ${failed.map((r) => `${r.host} (${r.error})`).join(', ')}; done when each comes back`,
          );
        }
      },
    });
    setImmediate(() => void this.reconcileAll().catch(() => undefined));
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    for (const timer of this.rechecks.values()) clearTimeout(timer);
    // A reconciliation stops at its next domain; what it awaits is bounded one by one
    // (Redis's command timeout, libvirt's call timeout), not as a whole: a while, not forever.
    await withDeadline(Promise.allSettled([...this.running]), SHUTDOWN_WAIT_MS);
  }

  /** Reconciles every registered host, one after the other; a host that fails says so in its report. */
  async reconcileAll(): Promise<ReconcileReport[]> {
    const reports: ReconcileReport[] = [];
    for (const host of await this.registry.list()) {
      if (this.closed) break;
      reports.push(await this.reconcileHost(host.name));
    }
    return reports;
  }

  /**
   * Reconciles one host's block jobs with libvirt (see the class). Waits for
   * another worker's reconciliation of the host to end first. Never throws
   * for the host's sake: what went wrong is the report's `error`.
   */
  reconcileHost(host: string): Promise<ReconcileReport> {
    const p = this.reconcile(host);
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
    return p;
  }

  private async reconcile(hostName: string): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      host: hostName,
      adopted: [],
      requeued: [],
      finished: [],
      skipped: [],
      error: null,
    };
    const lock = this.keys.blockJobReconcileLock(hostName);
    const token = randomUUID();
    try {
      if (!(await this.lock(lock, token))) {
        report.error = 'another worker held the reconciliation of the host for too long';
        return report;
      }
      const host = await this.registry.get(hostName);
      await this.connections.withClient(host, async (c) => {
        const requestId = `reconcile-${token}`;
        await this.lostQueueEntries(c, host, report, requestId);
        if (this.config.blockJobAdopt) {
          await this.orphans(c, host, report, requestId, () => this.renew(lock, token));
        }
      });
      const { adopted, requeued, finished, skipped } = report;
      this.logger.log(
        `host '${hostName}': block jobs reconciled with libvirt: ${adopted.length} adopted, ` +
          `${requeued.length} queued again, ${finished.length} finished, ${skipped.length} left alone` +
          skipped.map((s) => `; ${s.domain}/${s.disk}: ${s.reason}`).join(''),
      );
    } catch (err) {
      const appError = err instanceof AppError ? err : fromLibvirtError(err);
      report.error = appError?.message ?? (err as Error).message;
      this.logger.warn(`host '${hostName}': block jobs not reconciled: ${report.error}`);
    } finally {
      await this.redis.eval(RELEASE_LOCK, 1, lock, token).catch(() => undefined);
    }
    return report;
  }

  /** Reconciles `host` again in `ms` (once: a later ask within that time joins it). */
  private recheck(host: string, ms: number): void {
    if (this.rechecks.has(host) || this.closed) return;
    const timer = setTimeout(() => {
      this.rechecks.delete(host);
      if (!this.closed) void this.reconcileHost(host);
    }, ms + 100);
    timer.unref();
    this.rechecks.set(host, timer);
  }

  private async lock(key: string, token: string): Promise<boolean> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      if ((await this.redis.set(key, token, 'PX', LOCK_MS, 'NX')) === 'OK') return true;
      if (this.closed || Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async renew(key: string, token: string): Promise<void> {
    await this.redis.eval(RENEW_LOCK, 1, key, token, LOCK_MS);
  }

  /**
   * Adopts every block job libvirt runs on the host's active domains whose
   * disk no live gateway job holds. One getBlockJobInfo per disk: libvirt
   * has no bulk call for it (a commit below the top shows nowhere in the XML).
   */
  private async orphans(
    c: LibvirtClient,
    host: HostRecord,
    report: ReconcileReport,
    requestId: string,
    renew: () => Promise<void>,
  ): Promise<void> {
    const { domains } = await c.rpc.connectListAllDomains({
      needResults: 1,
      flags: ListFlags.ACTIVE,
    });
    for (const dom of domains) {
      if (this.closed) return;
      await renew();
      let live: DomainXml;
      try {
        live = parseDomainXml((await c.rpc.domainGetXmlDesc({ dom, flags: 0 })).xml);
      } catch (err) {
        if (isNoDomain(err)) continue; // gone since the listing
        throw err;
      }
      for (const disk of live.disks) {
        if (disk.chain.length === 0) continue;
        let info;
        try {
          info = await c.rpc.domainGetBlockJobInfo({
            dom,
            path: disk.target,
            flags: DomainBlockJobInfoFlags.BANDWIDTH_BYTES,
          });
        } catch (err) {
          if (isLibvirtError(err, ErrorNumber.VIR_ERR_NO_SUPPORT)) return; // no block jobs here
          if (isOperationInvalid(err) || isNoDomain(err)) break; // stopped since the listing
          throw err;
        }
        if (info.found !== 1) continue;
        await this.adopt(host, dom, disk, info, report, requestId);
      }
    }
  }

  private async adopt(
    host: HostRecord,
    dom: RemoteDomain,
    disk: DiskXml,
    info: { type: number; cur: bigint; end: bigint },
    report: ReconcileReport,
    requestId: string,
  ): Promise<void> {
    const uuid = uuidString(dom.uuid);
    const ref: DiskRef = { host: host.name, domainUuid: uuid, disk: disk.target };
    const skip = (reason: string): void => {
      report.skipped.push({ domain: dom.name, disk: disk.target, reason });
    };
    const holderId = await this.ledger.holder(ref);
    if (holderId !== null) {
      const holder = await this.store.get(holderId);
      if (holder && !TERMINAL_STATES.has(holder.state)) return; // the gateway's own job
    }
    if (disk.chain.some((i) => i.source.path === null)) {
      return skip('the disk has images that are not local files or block devices');
    }
    const params = adoptedParams(info.type, disk);
    if (typeof params === 'string') return skip(params);
    const type = jobTypeOf(info.type)!;
    const id = randomUUID();
    try {
      // Taken first: of two workers looking at this job, only one gets past here.
      await this.ledger.claim(ref, id);
    } catch (err) {
      if (err instanceof AppError && err.code === ErrorCode.CONFLICT) {
        return skip(`the disk is being claimed by another job: ${err.message}`);
      }
      throw err;
    }
    const cur = Number(info.cur);
    const end = Number(info.end);
    const ready =
      adoptedShape(params).twoPhase && (disk.mirror?.ready === 'yes' || (end > 0 && cur === end));
    const now = new Date().toISOString();
    const record: JobRecord = {
      id,
      type,
      host: host.name,
      domain: dom.name,
      domainUuid: uuid,
      disk: disk.target,
      request: { type: KINDS[type] },
      resolved: { ...params, domainUuid: uuid },
      state: ready ? 'ready' : 'running',
      progress: { cur, end, percent: end > 0 ? Math.floor((cur * 100) / end) : 0 },
      result: null,
      error: null,
      requestedBy: ADOPTED_BY,
      requestId,
      createdAt: now,
      // It runs in libvirt already: a cancel must reach libvirt, never drop it as never started.
      startedAt: now,
      finishedAt: null,
      updatedAt: now,
      attempts: 0,
      cancelRequested: false,
      adopted: true,
    };
    try {
      // The bookkeeping before the record: a record is never without it.
      await this.ledger.setPhase(id, 'started', chainPaths(disk));
      await this.store.create(record);
    } catch (err) {
      await this.ledger.release(ref, id).catch(() => undefined);
      throw err;
    }
    // Should this fail, the record is there without a queue entry: the next reconciliation queues it.
    await this.queues.add({
      jobId: id,
      type,
      target: { host: host.name, uuid, name: dom.name },
      params: params as unknown as JobParams[BlockJobType],
      requestId,
    });
    report.adopted.push({
      jobId: id,
      type,
      domain: dom.name,
      disk: disk.target,
      state: record.state,
    });
    this.logger.log(
      `host '${host.name}': adopted libvirt's ${KINDS[type]} on ${dom.name}/${disk.target} as job ${id} ` +
        `(${record.progress!.percent} %${ready ? ', ready' : ''}; chain ${chainPaths(disk).join(' <- ')})`,
    );
  }

  /**
   * Records of the host's block jobs that should be running but have no queue
   * entry any more (Redis lost part of its data): queued again while libvirt
   * runs the job, finished from the live chain otherwise.
   */
  private async lostQueueEntries(
    c: LibvirtClient,
    host: HostRecord,
    report: ReconcileReport,
    requestId: string,
  ): Promise<void> {
    for (const state of LIVE_STATES) {
      let after: { createdAtMs: number; id: string } | null = null;
      for (;;) {
        const page = await this.store.list({ host: host.name, state }, 200, after);
        for (const record of page.items) {
          if (this.closed) return;
          if (!isBlockJobType(record.type) || record.domainUuid === null || !record.disk) continue;
          // Queued and never started: its request is being accepted, or it waits its turn.
          if (record.state === 'queued' && record.startedAt === null) continue;
          if (await this.queues.queueOf(record.type).getJob(record.id)) continue;
          // A worker runs it still, or ran it until lately: its held mark lapses within two
          // job locks of its death; the host is looked at again then.
          const heldFor = await this.redis.pttl(this.keys.jobHeld(record.id));
          if (heldFor > 0) {
            this.recheck(host.name, heldFor);
            continue;
          }
          await this.lostEntry(c, host, record, report, requestId);
        }
        const last = page.items.at(-1);
        if (!page.more || !last) break;
        after = { createdAtMs: Date.parse(last.createdAt), id: last.id };
      }
    }
  }

  private async lostEntry(
    c: LibvirtClient,
    host: HostRecord,
    record: JobRecord,
    report: ReconcileReport,
    requestId: string,
  ): Promise<void> {
    const type = record.type as BlockJobType;
    const uuid = record.domainUuid!;
    const disk = record.disk!;
    const { domainUuid: _uuid, ...params } = record.resolved;
    void _uuid;
    const dom = await findDomainByUuid(c, uuid);
    let found = false;
    if (dom) {
      try {
        const info = await c.rpc.domainGetBlockJobInfo({ dom, path: disk, flags: 0 });
        found = info.found === 1 && info.type === shapeOfJob(type, params).libvirtType;
      } catch (err) {
        if (!isOperationInvalid(err) && !isNoDomain(err)) throw err;
      }
    }
    if (found) {
      await this.queues.add({
        jobId: record.id,
        type,
        target: { host: host.name, uuid, name: record.domain ?? uuid },
        params: params as unknown as JobParams[BlockJobType],
        requestId: record.requestId,
      });
      report.requeued.push(record.id);
      this.logger.log(
        `job ${record.id}: its queue entry was lost while libvirt runs it: queued again to re-attach [${requestId}]`,
      );
      return;
    }
    const { state, result, error } = await this.ending(c, record, dom, params);
    await this.store.update(record.id, {
      state,
      result,
      error,
      finishedAt: new Date().toISOString(),
    });
    await this.ledger.release({ host: host.name, domainUuid: uuid, disk }, record.id);
    report.finished.push({ jobId: record.id, state });
    this.logger.log(
      `job ${record.id}: its queue entry was lost and libvirt runs it no more: ${state}` +
        `${error ? `: ${error.message}` : ''} (from the live chain) [${requestId}]`,
    );
  }

  /** How a block job nobody followed to its end ended, from the live chain and its bookkeeping. */
  private async ending(
    c: LibvirtClient,
    record: JobRecord,
    dom: RemoteDomain | null,
    params: Record<string, unknown>,
  ): Promise<{ state: JobState; result: Record<string, unknown> | null; error: JobError | null }> {
    const type = record.type as BlockJobType;
    const failed = (code: ErrorCode, message: string, result: Record<string, unknown> | null) => ({
      state: 'failed' as const,
      result,
      error: { code, message, libvirtCode: null },
    });
    if (!dom) {
      return failed(ErrorCode.NOT_FOUND, `domain '${record.domain}' no longer exists`, null);
    }
    const book = await this.ledger.book(record.id);
    const [xml, isPersistent] = await Promise.all([
      c.rpc.domainGetXmlDesc({ dom, flags: 0 }),
      c.rpc.domainIsPersistent({ dom }),
    ]);
    const live = parseDomainXml(xml.xml);
    if (live.id === null) {
      return failed(
        ErrorCode.INVALID_STATE,
        `domain '${dom.name}' is not running: libvirt ended the block job with it`,
        null,
      );
    }
    const persistent =
      isPersistent.persistent === 1
        ? parseDomainXml(
            (await c.rpc.domainGetXmlDesc({ dom, flags: DomainXmlFlags.INACTIVE })).xml,
          )
        : null;
    const view = disksView(live, persistent, null).find((d) => d.target === record.disk);
    const now = live.disks.find((d) => d.target === record.disk);
    if (!now || !view) {
      return failed(
        ErrorCode.NOT_FOUND,
        `domain '${dom.name}' has no disk '${record.disk}' any more`,
        null,
      );
    }
    if (book.chainAtStart === null) {
      return failed(
        ErrorCode.INTERNAL,
        'the job lost its queue entry before libvirt was asked to start it; nothing was changed',
        null,
      );
    }
    const outcome = outcomeOfJob(type, params, book.chainAtStart, chainPaths(now));
    const result = {
      outcome,
      libvirtStatus: null,
      completionSeenIn: outcome === 'applied' ? 'chain' : null,
      pivoted: shapeOfJob(type, params).twoPhase ? outcome === 'applied' : null,
      reattached: true,
      chainBefore: book.chainAtStart,
      disk: view,
      persistentChainDiffers: persistent !== null ? view.persistentChainDiffers : null,
    };
    if (outcome === 'applied') return { state: 'completed', result, error: null };
    if (outcome === 'unchanged' && record.cancelRequested) {
      return { state: 'canceled', result, error: null };
    }
    return failed(
      ErrorCode.CONFLICT,
      outcome === 'unchanged'
        ? 'the block job ended without being applied while no worker followed it; the chain is as it was'
        : `the chain of disk '${record.disk}' is neither the one the job started on nor the one it leaves: ${chainPaths(now).join(' <- ')}`,
      result,
    );
  }
}
