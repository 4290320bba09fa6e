/**
 * A block job type's rules, in one place for the api and the worker: what a
 * request may say, what it means against the live chain when it is accepted,
 * how to start it in libvirt once it is resolved again at job start, and what
 * the chain looks like once it is applied. One plan per type (commit.plan.ts,
 * copy.plan.ts, pull.plan.ts), all of them in plans/index.ts.
 *
 * Plans are imported by the worker: they import no DTO or model at run time
 * (types only), so the worker does not load the HTTP and GraphQL layers.
 */
import { DomainState, type LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import type { DiskXml } from '#src/xml/domain-xml.js';
import type { BlockJobType, JobParams } from '#jobs/job-types.js';
import type { ChainOutcome } from '../block-chain.js';
import type { BlockJobKind, StartBlockJobDto } from '../dto/start-block-job.dto.js';

/**
 * The domain states in which a block job can run: those of a domain whose
 * QEMU process runs (a paused or pmsuspended guest's disks still copy and
 * commit). The api refuses a job outside them; the worker takes a domain
 * found outside them as stopped.
 */
export const BLOCK_JOB_DOMAIN_STATES: ReadonlySet<number> = new Set([
  DomainState.RUNNING,
  DomainState.BLOCKED,
  DomainState.PAUSED,
  DomainState.PMSUSPENDED,
]);

/** What a plan resolves a request against at request time, over the api's read-only connection. */
export interface RequestContext {
  client: LibvirtClient;
  dom: RemoteDomain;
  /** The disk as the live XML has it now; its chain is complete and local. */
  disk: DiskXml;
  /** Every disk of the domain's live XML. */
  disks: readonly DiskXml[];
  /** The request, without fields given as null. */
  dto: StartBlockJobDto;
}

/** Starts the job in libvirt, on the worker's read-write connection. */
export type StartCall = (client: LibvirtClient, dom: RemoteDomain) => Promise<void>;

/** How the worker recognises its job: two-phase (READY, then a pivot) or not, and libvirt's job type. */
export interface JobShape {
  twoPhase: boolean;
  libvirtType: number;
}

export interface BlockJobPlan<T extends BlockJobType = BlockJobType, Parsed = unknown> {
  /** The request's `type`. */
  readonly kind: BlockJobKind;
  /** The job type it becomes. */
  readonly type: T;
  /** The fields a request of this kind takes besides `type`; any other is refused. */
  readonly fields: readonly (keyof StartBlockJobDto)[];
  /** Checks the request's form before anything is read from libvirt (INVALID_ARGUMENT). */
  parse(target: string, dto: StartBlockJobDto): Parsed;
  /**
   * Resolves the request against the live chain (a reference that names no
   * image is INVALID_STATE, with the field named) and the state of the host
   * (images other domains or volumes depend on): the job's parameters.
   */
  resolve(ctx: RequestContext, parsed: Parsed): Promise<JobParams[T]>;
  shape(params: JobParams[T]): JobShape;
  /**
   * At job start, with the live chain just read: resolves the job's references
   * again (CONFLICT when they no longer name the images they named when the
   * job was accepted) and builds the libvirt call that starts it.
   */
  prepare(params: JobParams[T], disk: DiskXml, persistent: boolean): StartCall;
  /** The chain (image paths, top first) the job leaves once libvirt has applied it; null if none can be told. */
  expectedChain(params: JobParams[T], atStart: readonly string[]): string[] | null;
  /** What the live chain says of the job: applied, unchanged, or neither. */
  classify(params: JobParams[T], atStart: readonly string[], live: readonly string[]): ChainOutcome;
}
