/**
 * Every queue and job type of the gateway, in one place. Each job type runs on
 * one queue; each queue has one processor (jobs/processors/), which must
 * handle every type of its queue: the worker refuses to start otherwise.
 */

export const QUEUES = ['domain-ops'] as const;
export type QueueName = (typeof QUEUES)[number];

export const JOB_TYPES = {
  'domain.start': 'domain-ops',
  'domain.shutdown': 'domain-ops',
  'domain.destroy': 'domain-ops',
  'domain.reboot': 'domain-ops',
  'domain.suspend': 'domain-ops',
  'domain.resume': 'domain-ops',
  'domain.autostart': 'domain-ops',
} as const satisfies Record<string, QueueName>;

export type JobType = keyof typeof JOB_TYPES;

/** The domain a job acts on, resolved by the api when the job was requested. */
export interface DomainTarget {
  host: string;
  /** Canonical UUID: the worker finds the domain by it, whatever its name by then. */
  uuid: string;
  name: string;
}

/** What each job type carries besides its target, as resolved at request time. */
export interface JobParams {
  'domain.start': { paused: boolean };
  'domain.shutdown': { timeoutSeconds: number; force: boolean };
  'domain.destroy': { graceful: boolean };
  'domain.reboot': Record<string, never>;
  'domain.suspend': Record<string, never>;
  'domain.resume': Record<string, never>;
  'domain.autostart': { enabled: boolean };
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
  target: DomainTarget;
  params: JobParams[T];
  /** The request id of the API call that asked for it, for the logs. */
  requestId: string;
}
