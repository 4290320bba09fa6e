import { Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { requireDomain } from '#src/common/domain-ref.js';
import { AppError, ErrorCode, invalidField } from '#src/common/errors/app-error.js';
import { withoutNulls } from '#src/common/without-nulls.js';
import { HostConnections } from '#src/hosts/host-connections.js';
import { HostRegistry } from '#src/hosts/host-registry.js';
import { accessOf, PathConfinement } from '#src/hosts/path-confinement.js';
import {
  domainState,
  DomainBlockJobInfoFlags,
  DomainBlockJobType,
  uuidString,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { parseDomainXml } from '#src/xml/domain-xml.js';
import { BlockJobLedger } from '#jobs/block-job-ledger.js';
import { JobSubmitter, type Accepted } from '#jobs/job-submitter.js';
import type { BlockCopyParams, BlockJobType, JobParams } from '#jobs/job-types.js';
import { usableChain } from './block-chain.js';
import type { StartBlockJobDto } from './dto/start-block-job.dto.js';
import {
  BLOCK_JOB_DOMAIN_STATES,
  confineCopy,
  PLAN_KINDS,
  planOfKind,
  type BlockJobPlan,
} from './plans/index.js';

const LIBVIRT_JOB_NAMES: Record<number, string> = {
  [DomainBlockJobType.PULL]: 'pull',
  [DomainBlockJobType.COPY]: 'copy',
  [DomainBlockJobType.COMMIT]: 'commit',
  [DomainBlockJobType.ACTIVE_COMMIT]: 'active commit',
  [DomainBlockJobType.BACKUP]: 'backup',
};

/**
 * Block job requests (commit, copy, pull on one disk): checked for form,
 * resolved against the live chain over the api's read-only connection by the
 * type's plan (a reference that names no image is refused, and so is a disk
 * that already has a block job, in libvirt or queued in the gateway), then
 * handed to the worker as a job that claims the disk until it ends.
 */
@Injectable()
export class BlockJobOperationsService {
  constructor(
    private readonly registry: HostRegistry,
    private readonly connections: HostConnections,
    private readonly jobs: JobSubmitter,
    private readonly ledger: BlockJobLedger,
    private readonly confinement: PathConfinement,
  ) {}

  async start(
    caller: Caller,
    hostName: string,
    domainRef: string,
    target: string,
    given: StartBlockJobDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    // GraphQL clients may send null for a field they leave out.
    const dto = withoutNulls(given);
    const plan = planOfKind(dto.type);
    if (!plan) throw invalidField('type', `must be one of ${PLAN_KINDS.join(', ')}`);
    const allowed = new Set<string>(['type', ...plan.fields]);
    const stray = Object.keys(dto).filter(
      (k) => dto[k as keyof StartBlockJobDto] !== undefined && !allowed.has(k),
    );
    if (stray.length > 0) {
      throw new AppError(
        ErrorCode.INVALID_ARGUMENT,
        `a ${plan.kind} takes no ${stray.join(', ')}`,
        {
          fields: stray.map((field) => ({ field, message: `a ${plan.kind} takes no ${field}` })),
        },
      );
    }
    const parsed = plan.parse(target, dto);
    const host = await this.registry.getFor(caller, hostName);
    const { dom, resolved } = await this.connections.withClient(host, async (c) => {
      const d = await requireDomain(c, domainRef, { caller, host: host.name });
      // What depends on the live state is refused only for a new job: a retry with the
      // same Idempotency-Key gets its job back, whatever the chain has become since.
      let r: JobParams[BlockJobType] | AppError;
      try {
        r = await this.resolve(c, d, target, dto, plan, parsed);
        if (plan.type === 'block.copy') {
          const copy = r as BlockCopyParams;
          await confineCopy(this.confinement, c, host, accessOf(caller), copy, dto.destination);
        }
      } catch (err) {
        if (!(err instanceof AppError) || err.code === ErrorCode.HOST_UNREACHABLE) throw err;
        r = err;
      }
      return { dom: d, resolved: r };
    });
    const uuid = uuidString(dom.uuid);
    const request: Record<string, unknown> = { type: dto.type };
    for (const field of plan.fields) if (dto[field] !== undefined) request[field] = dto[field];
    return this.jobs.submit(
      caller,
      {
        type: plan.type,
        target: { host: host.name, uuid, name: dom.name },
        disk: target,
        params: (resolved instanceof AppError ? {} : resolved) as never,
        request,
        precheck: async (jobId: string) => {
          if (resolved instanceof AppError) throw resolved;
          await this.ledger.claim({ host: host.name, domainUuid: uuid, disk: target }, jobId);
        },
      },
      idempotencyKey,
    );
  }

  /** The checks every type shares (a running domain, the disk, its chain, no block job yet), then the plan's. */
  private async resolve(
    c: LibvirtClient,
    dom: RemoteDomain,
    target: string,
    dto: StartBlockJobDto,
    plan: BlockJobPlan,
    parsed: unknown,
  ): Promise<JobParams[BlockJobType]> {
    if (!BLOCK_JOB_DOMAIN_STATES.has(await domainState(c, dom))) {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        `domain '${dom.name}' is not running: libvirt runs block jobs only on a running domain`,
      );
    }
    const live = parseDomainXml((await c.rpc.domainGetXmlDesc({ dom, flags: 0 })).xml);
    const disk = live.disks.find((d) => d.target === target);
    if (!disk) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `domain '${dom.name}' has no disk '${target}' (it has ${live.disks.map((d) => d.target).join(', ') || 'none'})`,
      );
    }
    usableChain(disk);
    const info = await c.rpc.domainGetBlockJobInfo({
      dom,
      path: target,
      flags: DomainBlockJobInfoFlags.BANDWIDTH_BYTES,
    });
    if (info.found === 1) {
      const pct = info.end > 0n ? Number((info.cur * 100n) / info.end) : 0;
      throw new AppError(
        ErrorCode.CONFLICT,
        `disk '${target}' already has a block job in libvirt (${LIBVIRT_JOB_NAMES[info.type] ?? `type ${info.type}`}, ${pct}%): one block job per disk`,
      );
    }
    return plan.resolve({ client: c, dom, disk, disks: live.disks, dto }, parsed);
  }
}
