import { DiscoveryService } from '@nestjs/core';
import type { HostRecord } from '#src/hosts/host-registry.js';
import type { LibvirtClient, RemoteDomain } from '#src/libvirt/index.js';
import type { JobProgress, JobRecord } from './job-store.js';
import type {
  DomainMayBeAbsentType,
  HostJobType,
  JOB_TYPES,
  JobState,
  JobType,
  QueueName,
  QueuedJob,
  ResultOf,
} from './job-types.js';

/** The domain a handler gets: none for host jobs, maybe none where it may be absent. */
export type DomainOf<T extends JobType> = [T] extends [never]
  ? RemoteDomain
  : T extends HostJobType
    ? null
    : T extends DomainMayBeAbsentType
      ? RemoteDomain | null
      : RemoteDomain;

/** What a handler gets: the job, a read-write client of its host, and its domain as libvirt has it now. */
export interface JobContext<T extends JobType> {
  job: QueuedJob<T>;
  record: JobRecord;
  /** The job's host as registered. */
  host: HostRecord;
  client: LibvirtClient;
  dom: DomainOf<T>;
  setState(state: Extract<JobState, 'running' | 'ready' | 'pivoting'>): Promise<void>;
  setProgress(progress: JobProgress): Promise<void>;
  /** Whether a cancel was asked for since the job started (DELETE /v1/jobs/{id}). */
  cancelRequested(): Promise<boolean>;
}

/** Does the work; returns the job's result. Must be safe to run again after a crash. */
export type JobHandler<T extends JobType> = (ctx: JobContext<T>) => Promise<ResultOf<T>>;

export type QueueHandlers<Q extends QueueName> = {
  [T in JobType as (typeof JOB_TYPES)[T] extends Q ? T : never]: JobHandler<T>;
};

/** One processor per queue: a handler for every job type of that queue. */
export interface QueueProcessorOf<Q extends QueueName> {
  readonly queue: Q;
  readonly handlers: QueueHandlers<Q>;
  /** Jobs of this queue run at once per worker process. */
  readonly concurrency: number;
}

/** The processor of queue `Q`; without `Q`, the processor of any one queue (a union, one per queue). */
export type QueueProcessor<Q extends QueueName = QueueName> = Q extends QueueName
  ? QueueProcessorOf<Q>
  : never;

/**
 * Marks a feature's processor for the worker's runner, which finds every
 * provider so marked at boot (and refuses to start unless each queue has
 * exactly one, handling every job type of its queue). Put the processor in
 * the providers of the feature's worker module.
 */
export const JobProcessor = DiscoveryService.createDecorator<void>();
