import type { LibvirtClient, RemoteDomain } from '#src/libvirt/index.js';
import type { JobProgress, JobRecord } from './job-store.js';
import type { JOB_TYPES, JobState, JobType, QueueName, QueuedJob } from './job-types.js';

/** What a handler gets: the job, a read-write client of its host, and its domain as libvirt has it now. */
export interface JobContext<T extends JobType> {
  job: QueuedJob<T>;
  record: JobRecord;
  client: LibvirtClient;
  dom: RemoteDomain;
  setState(state: Extract<JobState, 'running' | 'ready' | 'pivoting'>): Promise<void>;
  setProgress(progress: JobProgress): Promise<void>;
  /** Whether a cancel was asked for since the job started (DELETE /v1/jobs/{id}). */
  cancelRequested(): Promise<boolean>;
}

/** Does the work; returns the job's result. Must be safe to run again after a crash. */
export type JobHandler<T extends JobType> = (
  ctx: JobContext<T>,
) => Promise<Record<string, unknown>>;

export type QueueHandlers<Q extends QueueName> = {
  [T in JobType as (typeof JOB_TYPES)[T] extends Q ? T : never]: JobHandler<T>;
};

/** One processor per queue: a handler for every job type of that queue. */
export interface QueueProcessor<Q extends QueueName = QueueName> {
  readonly queue: Q;
  readonly handlers: QueueHandlers<Q>;
  /** Jobs of this queue run at once per worker process. */
  readonly concurrency: number;
}
