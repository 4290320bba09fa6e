import { newEvent, type BlockJobEventPart, type NewEvent } from '#src/events/event.js';
import { EVENT_TYPES, type EventType } from '#src/events/event-types.js';
import {
  DomainEventAgentLifecycleReason,
  DomainEventAgentLifecycleState,
  DomainEventDiskChangeReason,
  DomainEventIoErrorAction,
  DomainEventLifecycle as Lifecycle,
  DomainEventMemoryFailureAction,
  DomainEventMemoryFailureRecipient,
  DomainEventTrayChangeReason,
  DomainEventWatchdogAction,
  DomainJobOperation,
  DomainMemoryFailureFlags,
  DomainMetadataType,
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

/** The lifecycle events that take a domain from one state to another, in order. */
export function transitions(from: KnownState, to: KnownState): EventType[] {
  if (from === to) return [];
  if (to === 'shutoff') return ['domain.stopped'];
  // From pmsuspended or crashed, libvirt reports the domain running again as started (wakeup, recreated).
  if (to === 'running') return from === 'paused' ? ['domain.resumed'] : ['domain.started'];
  const out: EventType[] = from === 'shutoff' ? ['domain.started'] : [];
  out.push(
    to === 'paused'
      ? 'domain.suspended'
      : to === 'pmsuspended'
        ? 'domain.pmsuspended'
        : 'domain.crashed',
  );
  return out;
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
    case 'reboot':
      return newEvent('domain.rebooted', host, { domain });
    case 'rtcChange':
      return newEvent('domain.rtc-changed', host, { domain, data: { offsetSeconds: e.offset } });
    case 'watchdog':
      return newEvent('domain.watchdog', host, {
        domain,
        data: { action: nameOf(DomainEventWatchdogAction, e.action) },
      });
    case 'ioError':
      return newEvent('domain.io-error', host, {
        domain,
        data: {
          device: e.devAlias,
          path: e.srcPath || null,
          action: nameOf(DomainEventIoErrorAction, e.action),
          reason: e.reason,
        },
      });
    case 'controlError':
      return newEvent('domain.control-error', host, { domain });
    case 'diskChange':
      return newEvent('domain.disk-changed', host, {
        domain,
        data: {
          device: e.devAlias,
          oldPath: e.oldSrcPath,
          newPath: e.newSrcPath,
          reason: nameOf(DomainEventDiskChangeReason, e.reason),
        },
      });
    case 'trayChange':
      return newEvent('domain.tray-changed', host, {
        domain,
        data: {
          device: e.devAlias,
          tray: e.reason === DomainEventTrayChangeReason.OPEN ? 'open' : 'closed',
        },
      });
    case 'pmWakeup':
      return newEvent('domain.pm-wakeup', host, { domain });
    case 'deviceAdded':
      return newEvent('domain.device-added', host, { domain, data: { device: e.devAlias } });
    case 'deviceRemoved':
      return newEvent('domain.device-removed', host, { domain, data: { device: e.devAlias } });
    case 'deviceRemovalFailed':
      return newEvent('domain.device-removal-failed', host, {
        domain,
        data: { device: e.devAlias },
      });
    case 'agentLifecycle':
      return newEvent('domain.agent-lifecycle', host, {
        domain,
        data: {
          state: nameOf(DomainEventAgentLifecycleState, e.state),
          reason: nameOf(DomainEventAgentLifecycleReason, e.reason),
        },
      });
    case 'jobCompleted': {
      const operation = e.params.operation;
      return newEvent('domain.job-completed', host, {
        domain,
        data: {
          operation: typeof operation === 'number' ? nameOf(DomainJobOperation, operation) : null,
          statistics: e.params,
        },
      });
    }
    case 'metadataChange':
      return newEvent('domain.metadata-changed', host, {
        domain,
        data: { part: nameOf(DomainMetadataType, e.type), namespace: e.nsuri },
      });
    case 'blockThreshold':
      return newEvent('domain.block-threshold', host, {
        domain,
        data: { disk: e.disk, path: e.path, threshold: e.threshold, excess: e.excess },
      });
    case 'memoryFailure':
      return newEvent('domain.memory-failure', host, {
        domain,
        data: {
          recipient: nameOf(DomainEventMemoryFailureRecipient, e.recipient),
          action: nameOf(DomainEventMemoryFailureAction, e.action),
          actionRequired: (e.flags & DomainMemoryFailureFlags.ACTION_REQUIRED) !== 0,
          recursive: (e.flags & DomainMemoryFailureFlags.RECURSIVE) !== 0,
        },
      });
    default:
      return null;
  }
}

/** A libvirt enum value by its name, lower case with dashes (`DROP_MISSING_ON_START`: `drop-missing-on-start`). */
function nameOf(table: Readonly<Record<string, number>>, value: number): string {
  for (const [name, v] of Object.entries(table)) {
    if (v === value) return name.toLowerCase().replaceAll('_', '-');
  }
  return `unknown-${value}`;
}
