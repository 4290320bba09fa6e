import { newEvent, type BlockJobEventPart, type NewEvent } from '#src/events/event.js';
import { EVENT_TYPES, type EventType } from '#src/events/event-types.js';
import {
  DomainEventLifecycle as Lifecycle,
  uuidString,
  type DomainEvent,
} from '#src/libvirt/index.js';

/** A domain's state as the stream last announced it (what reconciliation compares). */
export type KnownState = 'running' | 'paused' | 'shutoff' | 'pmsuspended' | 'crashed';

/** libvirt's lifecycle events (virDomainEventType), in its order: the first nine types declared. */
const LIFECYCLE = EVENT_TYPES.slice(0, 9) as readonly {
  type: EventType;
  details: readonly string[];
}[];

const BLOCK_JOB_TYPES: Record<number, BlockJobEventPart['type']> = {
  1: 'pull',
  2: 'copy',
  3: 'commit',
  4: 'active-commit',
};
const BLOCK_JOB_STATUSES: Record<number, BlockJobEventPart['status']> = {
  0: 'completed',
  1: 'failed',
  2: 'canceled',
  3: 'ready',
};

/**
 * What a libvirt event does to a domain's announced state: the new state,
 * null when the domain is gone, undefined when it changes nothing.
 */
export function stateAfter(
  e: DomainEvent,
  known: KnownState | null,
): KnownState | null | undefined {
  if (e.kind !== 'lifecycle') return undefined;
  switch (e.event) {
    case Lifecycle.DEFINED:
      return known === null ? 'shutoff' : undefined;
    case Lifecycle.UNDEFINED:
      // A running domain undefined goes on, transient, until it stops.
      return known === null || known === 'shutoff' ? null : undefined;
    case Lifecycle.STARTED:
    case Lifecycle.RESUMED:
      return 'running';
    case Lifecycle.SUSPENDED:
      return 'paused';
    case Lifecycle.STOPPED:
      return 'shutoff';
    case Lifecycle.PMSUSPENDED:
      return 'pmsuspended';
    case Lifecycle.CRASHED:
      return 'crashed';
    default:
      return undefined;
  }
}

/**
 * A libvirt event as the stream carries it: its dotted type, the domain,
 * libvirt's detail by name, and for block jobs the disk, type, status and
 * the gateway's job on that disk. Null for an event the vocabulary has no
 * type for: it is not streamed.
 */
export function normaliseDomainEvent(
  host: string,
  e: DomainEvent,
  blockJobId: string | null,
): NewEvent | null {
  const domain = { uuid: uuidString(e.dom.uuid), name: e.dom.name };
  switch (e.kind) {
    case 'lifecycle': {
      const declared = LIFECYCLE[e.event];
      if (!declared) return null;
      const detail = declared.details[e.detail] ?? null;
      // A detail newer than this vocabulary: its number, as libvirt gave it.
      const data = detail === null ? { detailCode: e.detail } : null;
      return newEvent(declared.type, host, { domain, detail, data });
    }
    case 'blockJob': {
      const status = BLOCK_JOB_STATUSES[e.status] ?? 'unknown';
      const type: EventType | null = status === 'unknown' ? null : `block-job.${status}`;
      if (type === null) return null;
      return newEvent(type, host, {
        domain,
        blockJob: {
          disk: e.disk,
          type: BLOCK_JOB_TYPES[e.type] ?? 'unknown',
          status,
          jobId: blockJobId,
        },
      });
    }
    default:
      return null;
  }
}
