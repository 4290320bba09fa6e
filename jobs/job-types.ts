import type { PathAccess } from '#src/hosts/path-confinement.js';

/**
 * Every queue and job type of the gateway, in one place. Each job type runs on
 * one queue; each queue has one processor, in the folder of the feature the
 * queue serves (modules/<feature>/<feature>.processor.ts), which must handle
 * every type of its queue: the worker refuses to start otherwise.
 */

export const QUEUES = ['domain-ops', 'block-jobs', 'snapshots', 'storage'] as const;
export type QueueName = (typeof QUEUES)[number];

export const JOB_TYPES = {
  'domain.start': 'domain-ops',
  'domain.shutdown': 'domain-ops',
  'domain.destroy': 'domain-ops',
  'domain.reboot': 'domain-ops',
  'domain.suspend': 'domain-ops',
  'domain.resume': 'domain-ops',
  'domain.autostart': 'domain-ops',
  'block.commit': 'block-jobs',
  'block.copy': 'block-jobs',
  'block.pull': 'block-jobs',
  'domain.define': 'domain-ops',
  'domain.undefine': 'domain-ops',
  'domain.snapshot': 'snapshots',
  'pool.define': 'storage',
  'pool.start': 'storage',
  'pool.stop': 'storage',
  'pool.refresh': 'storage',
  'pool.undefine': 'storage',
  'volume.create': 'storage',
  'volume.delete': 'storage',
} as const satisfies Record<string, QueueName>;

export type JobType = keyof typeof JOB_TYPES;

/**
 * What each job type's handler returns (the job's `result`): declared by the
 * feature that runs it, beside its models, by augmenting this interface
 * (`declare module '#jobs/job-types.js'`), so the compiler holds each
 * processor to its published result.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface JobResults {}

/** The result of a job of type `T`; an object until its feature declared it. */
export type ResultOf<T extends JobType> = T extends keyof JobResults ? JobResults[T] : object;

/** The domain a job acts on, resolved by the api when the job was requested. */
export interface DomainTarget {
  host: string;
  /** Canonical UUID: the worker finds the domain by it, whatever its name by then. */
  uuid: string;
  name: string;
}

/** A job on a host's own objects (storage pools and volumes): no domain. */
export interface HostTarget {
  host: string;
  uuid: null;
  name: null;
}

/** Job types that act on a host's objects rather than a domain: their target is a HostTarget. */
export type HostJobType =
  | 'pool.define'
  | 'pool.start'
  | 'pool.stop'
  | 'pool.refresh'
  | 'pool.undefine'
  | 'volume.create'
  | 'volume.delete';

/**
 * Job types whose domain may be missing when the job runs (not defined yet, or
 * undefined already by an earlier attempt): their handler gets `dom: null`
 * and decides, where other types fail with NOT_FOUND.
 */
export const DOMAIN_MAY_BE_ABSENT = [
  'domain.define',
  'domain.undefine',
] as const satisfies readonly JobType[];
export type DomainMayBeAbsentType = (typeof DOMAIN_MAY_BE_ABSENT)[number];

export type TargetOf<T extends JobType> = T extends HostJobType ? HostTarget : DomainTarget;

/** What each job type carries besides its target, as resolved at request time. */
export interface JobParams {
  'domain.start': { paused: boolean };
  'domain.shutdown': { timeoutSeconds: number; force: boolean };
  'domain.destroy': { graceful: boolean };
  'domain.reboot': Record<string, never>;
  'domain.suspend': Record<string, never>;
  'domain.resume': Record<string, never>;
  'domain.autostart': { enabled: boolean };
  'block.commit': BlockCommitParams;
  'block.copy': BlockCopyParams;
  'block.pull': BlockPullParams;
  /** The domain XML to define (built from a spec, or as given with a UUID added); the target holds its UUID. */
  'domain.define': {
    xml: string;
    source: 'spec' | 'xml';
    /** The images the domain opens, with the request field each came from (checked again at job start). */
    paths?: { field: string; path: string }[];
  };
  'domain.undefine': { snapshotsMetadata: boolean; managedSave: boolean; nvram: boolean };
  /** Each disk's overlay, and its top image when the request was accepted. */
  'domain.snapshot': {
    name: string;
    description: string | null;
    metadata: boolean;
    disks: { target: string; top: string; overlay: string }[];
  };
  /** The pool XML to define; `uuid` (chosen at request time) lets a re-run find the pool it defined. */
  'pool.define': { pool: string; uuid: string; xml: string };
  'pool.start': { pool: string; uuid: string; build: boolean };
  'pool.stop': { pool: string; uuid: string };
  'pool.refresh': { pool: string; uuid: string };
  'pool.undefine': { pool: string; uuid: string };
  'volume.create': {
    pool: string;
    poolUuid: string;
    volume: string;
    xml: string;
    format: 'raw' | 'qcow2';
    capacityBytes: number | null;
    backing: { path: string; format: string } | null;
  };
  /** `path`: the volume's file when the request was accepted. */
  'volume.delete': { pool: string; poolUuid: string; volume: string; path: string | null };
}

/** The block job types: long jobs on one disk's backing chain (modules/block-jobs/). */
export const BLOCK_JOB_TYPES = ['block.commit', 'block.copy', 'block.pull'] as const;
export type BlockJobType = (typeof BLOCK_JOB_TYPES)[number];
export const isBlockJobType = (t: string): t is BlockJobType =>
  (BLOCK_JOB_TYPES as readonly string[]).includes(t);

/**
 * One image of a disk's backing chain as a block job request named it, and
 * what that name meant in the live chain when the request was accepted. The
 * worker resolves `given` again when the job starts and refuses to go on if it
 * no longer names the same image (`path`).
 */
export interface ChainMemberRef {
  /** As the caller gave it (`vda[3]` or a path); null when the gateway chose the image (a default). */
  given: string | null;
  /** The image's path: what identifies it whatever libvirt's indexes become. */
  path: string;
  /** libvirt's index of the image then. */
  index: number | null;
  /** Its depth then (0: the image the guest writes to). */
  depth: number;
}

export interface BlockCommitParams {
  disk: string;
  top: ChainMemberRef;
  base: ChainMemberRef;
  /** top is the active image (depth 0): a two-phase job that ends with a pivot. */
  active: boolean;
  shallow: boolean;
  deleteCommittedImages: boolean;
  /** Bytes per second, 0 for no limit. */
  bandwidth: number;
  /** Active commit only: pivot as soon as libvirt reports the job ready. */
  pivot: boolean;
}

export interface BlockCopyParams {
  disk: string;
  /** The active image the copy replaces. */
  source: ChainMemberRef;
  /** Absolute path of the copy. */
  destination: string;
  format: 'qcow2' | 'raw';
  shallow: boolean;
  reuseExisting: boolean;
  bandwidth: number;
  pivot: boolean;
  /**
   * The dir pool the copy creates its destination in, as a new volume (the
   * pool is refreshed once libvirt made the file); null otherwise.
   */
  newVolumeIn?: string | null;
}

export interface BlockPullParams {
  disk: string;
  /** The active image the data is pulled into. */
  top: ChainMemberRef;
  /** Pull down to (not including) this image; null pulls the whole chain. */
  base: ChainMemberRef | null;
  bandwidth: number;
}

export type JobState =
  'queued' | 'running' | 'ready' | 'pivoting' | 'completed' | 'failed' | 'canceled';
export const JOB_STATES: readonly JobState[] = [
  'queued',
  'running',
  'ready',
  'pivoting',
  'completed',
  'failed',
  'canceled',
];
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['completed', 'failed', 'canceled']);

/** What BullMQ carries for a job: our record's id and what the processor needs. */
export interface QueuedJob<T extends JobType = JobType> {
  jobId: string;
  type: T;
  target: TargetOf<T>;
  params: JobParams[T];
  /** The request id of the API call that asked for it, for the logs. */
  requestId: string;
  /**
   * The requester's role and scopes, for the checks the worker makes again at
   * job start (confined paths). Absent on a job queued before it was carried:
   * read it with `jobAccess()`, which takes that as the least privileged.
   */
  access?: PathAccess;
}
