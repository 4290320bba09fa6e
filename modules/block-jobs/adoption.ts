/**
 * Block jobs the gateway did not start, or whose records it lost, and took
 * on ("adopted") from what libvirt says of them: the job's type, the disk,
 * and for a copy or an active commit the `<mirror>` of the live XML. What
 * libvirt does not say (the top and base of a commit below the active image,
 * the base of a pull, whether a copy is shallow) is not guessed: such a job
 * is judged, when it ends, by the shape of the change the live chain shows.
 *
 * Pure: the reconciler builds adopted jobs' parameters here, and the
 * processor decides how they ended with the same rules.
 */
import { DomainBlockJobType } from '#src/libvirt/index.js';
import type { DiskXml } from '#src/xml/domain-xml.js';
import type { BlockJobType, ChainMemberRef } from '#jobs/job-types.js';
import { chainPaths, sameChain, type ChainOutcome } from './block-chain.js';
import type { JobShape } from './plans/block-job-plan.js';
import { planOf } from './plans/index.js';

/**
 * An adopted job's parameters, in the fields of the job types' own where
 * libvirt tells them (`active`, `base` of an active commit, `destination`
 * and `format` of a copy) and absent where it does not. Never `pivot`: an
 * adopted job waits in `ready` for POST /v1/jobs/{id}/pivot or a cancel.
 */
export interface AdoptedParams {
  adopted: true;
  disk: string;
  /** libvirt's job type (virDomainBlockJobType) when the job was adopted. */
  libvirtType: number;
  pivot: false;
  /** Commits: the top is the active image (an active commit, two-phase). */
  active?: boolean;
  /** Active commit: the image at depth 0, committed into `base`. */
  top?: ChainMemberRef;
  /** Active commit: the image the mirror writes into, which the disk pivots to. */
  base?: ChainMemberRef;
  /** Copy: the image the guest wrote to when the copy was adopted. */
  source?: ChainMemberRef;
  /** Copy: the mirror's image, which the disk pivots to. */
  destination?: string;
  format?: string | null;
}

export function isAdopted(params: unknown): params is AdoptedParams {
  return (
    typeof params === 'object' &&
    params !== null &&
    (params as { adopted?: unknown }).adopted === true
  );
}

/** The gateway's job type of a libvirt block job type; null for one it does not run (backup). */
export function jobTypeOf(libvirtType: number): BlockJobType | null {
  switch (libvirtType) {
    case DomainBlockJobType.PULL:
      return 'block.pull';
    case DomainBlockJobType.COPY:
      return 'block.copy';
    case DomainBlockJobType.COMMIT:
    case DomainBlockJobType.ACTIVE_COMMIT:
      return 'block.commit';
    default:
      return null;
  }
}

function refAt(disk: DiskXml, depth: number): ChainMemberRef {
  const image = disk.chain[depth]!;
  return { given: null, path: image.source.path ?? '', index: image.index, depth };
}

/**
 * The parameters of a job adopting libvirt's block job of type `libvirtType`
 * on `disk` (as the live XML has it now), or a reason why it cannot be
 * adopted (a type the gateway does not run, a mirror it cannot place).
 */
export function adoptedParams(libvirtType: number, disk: DiskXml): AdoptedParams | string {
  const type = jobTypeOf(libvirtType);
  if (type === null) return `libvirt's block job type ${libvirtType} is not one the gateway runs`;
  const base: AdoptedParams = { adopted: true, disk: disk.target, libvirtType, pivot: false };
  if (disk.chain.length === 0) return 'the disk has no image';
  if (libvirtType === DomainBlockJobType.COPY) {
    const destination = disk.mirror?.source.path ?? null;
    if (destination === null) return "the live XML shows no local file as the copy's mirror";
    return {
      ...base,
      source: refAt(disk, 0),
      destination,
      format: disk.mirror?.format ?? null,
    };
  }
  if (libvirtType === DomainBlockJobType.ACTIVE_COMMIT) {
    const into = disk.mirror?.source.path ?? null;
    const depth = into === null ? -1 : chainPaths(disk).indexOf(into);
    if (depth < 1) return "the live XML does not place the active commit's base in the chain";
    return { ...base, active: true, top: refAt(disk, 0), base: refAt(disk, depth) };
  }
  if (libvirtType === DomainBlockJobType.COMMIT) return { ...base, active: false };
  return base;
}

/** Two-phase or not, and libvirt's type: how the processor recognises an adopted job. */
export function adoptedShape(p: AdoptedParams): JobShape {
  return {
    twoPhase:
      p.libvirtType === DomainBlockJobType.COPY ||
      p.libvirtType === DomainBlockJobType.ACTIVE_COMMIT,
    libvirtType: p.libvirtType,
  };
}

/**
 * What the live chain says of an adopted job. A copy is applied once the
 * disk's top is its destination; an active commit once the chain is the one
 * from its base down. A commit below the top or a pull, whose ends libvirt
 * does not tell, is applied when the live chain is the one it started on with
 * a run of images right below some kept image gone, the top kept: what a
 * commit or a pull leaves, and nothing else does.
 */
export function adoptedOutcome(
  p: AdoptedParams,
  atStart: readonly string[],
  live: readonly string[],
): ChainOutcome {
  if (sameChain(live, atStart)) return 'unchanged';
  let applied: boolean;
  if (p.destination !== undefined) {
    applied = live[0] === p.destination;
  } else if (p.base !== undefined) {
    const base = atStart.indexOf(p.base.path);
    applied = base > 0 && sameChain(live, atStart.slice(base));
  } else {
    applied = live.length < atStart.length && live[0] === atStart[0] && isRunRemoved(atStart, live);
  }
  return applied ? 'applied' : 'unexpected';
}

/** `live` is `atStart` with one contiguous run of images (not the first) taken out. */
function isRunRemoved(atStart: readonly string[], live: readonly string[]): boolean {
  let k = 0;
  while (k < live.length && live[k] === atStart[k]) k++;
  const removed = atStart.length - live.length;
  return k >= 1 && sameChain(live.slice(k), atStart.slice(k + removed));
}

/** A job's shape: its plan's, or for an adopted job what libvirt said. */
export function shapeOfJob(type: BlockJobType, params: unknown): JobShape {
  return isAdopted(params) ? adoptedShape(params) : planOf(type).shape(params as never);
}

/** What the live chain says of a job: by its plan, or for an adopted one by adoptedOutcome. */
export function outcomeOfJob(
  type: BlockJobType,
  params: unknown,
  atStart: readonly string[],
  live: readonly string[],
): ChainOutcome {
  return isAdopted(params)
    ? adoptedOutcome(params, atStart, live)
    : planOf(type).classify(params as never, atStart, live);
}
