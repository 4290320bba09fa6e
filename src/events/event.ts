import type { ErrorCode } from '../common/errors/app-error.js';
import type { EventType } from './event-types.js';

/** A block job as libvirt reports it, with the gateway job that runs it when one matches. */
export interface BlockJobEventPart {
  /** The disk's target (`vda`). */
  disk: string;
  type: 'pull' | 'copy' | 'commit' | 'active-commit' | 'unknown';
  status: 'completed' | 'failed' | 'canceled' | 'ready' | 'unknown';
  /** The gateway's job on this disk, when it has one (null for a block job started outside it). */
  jobId: string | null;
}

/** A gateway job's record at the change, as job.state-changed and job.progress carry it. */
export interface JobEventPart {
  id: string;
  type: string;
  state: string;
  /** The state before (null when the job was just queued, and in job.progress). */
  previousState: string | null;
  progress: { cur: number; end: number; percent: number } | null;
  error: { code: ErrorCode; message: string; libvirtCode: string | null } | null;
  /** The job's result, in the event of its final state (null before). */
  result: Record<string, unknown> | null;
  /** The id of the caller that asked for the job. */
  requestedBy: string;
  disk: string | null;
  /** The storage pool of a storage job. */
  pool: string | null;
}

/**
 * One event, as every channel delivers it (SSE `data:`, JSON pages, GraphQL
 * subscriptions, webhook bodies). Every key is always present; those that do
 * not apply to the type are null.
 */
export interface GatewayEvent {
  /** The cursor: the event's Redis stream id (`<ms>-<n>`), increasing, resumable on every channel. */
  id: string;
  /** When the source saw it (ISO 8601). */
  time: string;
  type: EventType;
  host: string | null;
  /** The domain (its UUID is null only in the events of a job for a domain not yet defined). */
  domain: { uuid: string | null; name: string } | null;
  /** libvirt's detail of a lifecycle event (`booted`, `destroyed`, …); null otherwise. */
  detail: string | null;
  /**
   * True for an event produced by reconciliation: the change happened while
   * no worker listened to the host (a lost connection, a worker taken over),
   * and was found by comparing the host's state with what was last announced.
   */
  reconciled: boolean;
  blockJob: BlockJobEventPart | null;
  job: JobEventPart | null;
  /** What the type carries beyond the above (a device alias, a tray's state, …); null when nothing. */
  data: Record<string, unknown> | null;
}

/** An event before the stream gave it its id. */
export type NewEvent = Omit<GatewayEvent, 'id'>;

/** A new event with every optional part null. */
export function newEvent(
  type: EventType,
  host: string | null,
  parts: Partial<Omit<NewEvent, 'type' | 'host'>> = {},
): NewEvent {
  return {
    time: parts.time ?? new Date().toISOString(),
    type,
    host,
    domain: parts.domain ?? null,
    detail: parts.detail ?? null,
    reconciled: parts.reconciled ?? false,
    blockJob: parts.blockJob ?? null,
    job: parts.job ?? null,
    data: parts.data ?? null,
  };
}
