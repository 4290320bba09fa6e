/**
 * Unsolicited event messages (type MESSAGE, serial 0) of the REMOTE program,
 * routed by procedure number. An event missing here is reported as unknown,
 * never silently dropped.
 *
 * Only the callback forms are decoded: the messages libvirt sends for
 * callbacks registered with CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, each
 * carrying its callbackID. Events older than DEVICE_REMOVED wrap the legacy
 * message in `msg`; the newer ones are flat structs (src/remote/remote_protocol.x).
 */
import { hyper, int, struct, uhyper, uint, type Codec, type Infer } from '../xdr/codec.js';
import {
  domain,
  int64ToJson,
  nonnullString,
  optString,
  typedParams,
  typedParamsToRecord,
  type TypedParamsRecord,
} from './types.js';

/** REMOTE_DOMAIN_JOB_STATS_MAX: the most typed parameters a JOB_COMPLETED event carries. */
export const REMOTE_DOMAIN_JOB_STATS_MAX = 64;

type Fields = Record<string, Codec<unknown>>;

/** `remote_domain_event_callback_X_msg`: the callbackID, then the legacy `msg` (dom first). */
function callbackMsg<F extends Fields>(fields: F) {
  return struct({ callbackID: int, msg: struct({ dom: domain, ...fields }) });
}

/** The PM events put a (reserved) `reason` between the callbackID and the legacy `msg`. */
function callbackReasonMsg() {
  return struct({ callbackID: int, reason: int, msg: struct({ dom: domain }) });
}

/** A flat callback message: callbackID, dom, then the fields. */
function flatMsg<F extends Fields>(fields: F) {
  return struct({ callbackID: int, dom: domain, ...fields });
}

export const domainEventLifecycleMsg = callbackMsg({ event: int, detail: int });

/** Legacy BLOCK_JOB (event 8): carries the disk's source path, only for local non-empty sources. */
export const domainEventBlockJobMsg = callbackMsg({
  path: nonnullString,
  type: int,
  status: int,
});

/** BLOCK_JOB_2 (event 16): carries the disk's target (`vda`). A flat struct. */
export const domainEventBlockJob2Msg = flatMsg({ dst: nonnullString, type: int, status: int });

export const domainEventRebootMsg = callbackMsg({});
export const domainEventRtcChangeMsg = callbackMsg({ offset: hyper });
export const domainEventWatchdogMsg = callbackMsg({ action: int });
export const domainEventIoErrorReasonMsg = callbackMsg({
  srcPath: nonnullString,
  devAlias: nonnullString,
  action: int,
  reason: nonnullString,
});
export const domainEventControlErrorMsg = callbackMsg({});
export const domainEventDiskChangeMsg = callbackMsg({
  oldSrcPath: optString,
  newSrcPath: optString,
  devAlias: nonnullString,
  reason: int,
});
export const domainEventTrayChangeMsg = callbackMsg({ devAlias: nonnullString, reason: int });
export const domainEventPmWakeupMsg = callbackReasonMsg();
export const domainEventPmSuspendMsg = callbackReasonMsg();
export const domainEventPmSuspendDiskMsg = callbackReasonMsg();
export const domainEventDeviceRemovedMsg = callbackMsg({ devAlias: nonnullString });
export const domainEventAgentLifecycleMsg = flatMsg({ state: int, reason: int });
export const domainEventDeviceAddedMsg = flatMsg({ devAlias: nonnullString });
export const domainEventJobCompletedMsg = flatMsg({
  params: typedParams(REMOTE_DOMAIN_JOB_STATS_MAX),
});
export const domainEventDeviceRemovalFailedMsg = flatMsg({ devAlias: nonnullString });
export const domainEventMetadataChangeMsg = flatMsg({ type: int, nsuri: optString });
export const domainEventBlockThresholdMsg = flatMsg({
  dev: nonnullString,
  path: optString,
  threshold: uhyper,
  excess: uhyper,
});
export const domainEventMemoryFailureMsg = flatMsg({ recipient: int, action: int, flags: uint });

export type RemoteDomain = Infer<typeof domain>;

/** What every decoded event carries. */
interface EventBase {
  /** The callback ID `domainEventRegisterAny` returned. */
  callbackId: number;
  dom: RemoteDomain;
}

/**
 * The events this client decodes, normalised. 64-bit values are numbers when
 * exact, else decimal strings, so that `JSON.stringify` takes every event.
 */
export type DomainEvent =
  | (EventBase & { kind: 'lifecycle'; event: number; detail: number })
  | (EventBase & {
      kind: 'blockJob';
      /** The disk target, e.g. `vda`. */
      disk: string;
      type: number;
      status: number;
    })
  | (EventBase & {
      kind: 'blockJobLegacy';
      /** The source path the job ran on (the *old* path after a pivot). */
      path: string;
      type: number;
      status: number;
    })
  /** REBOOT: the guest rebooted or was reset (virDomainReset). */
  | (EventBase & { kind: 'reboot' })
  | (EventBase & {
      kind: 'rtcChange';
      /** The guest RTC's new offset from the host's UTC, in seconds. */
      offset: number | string;
    })
  | (EventBase & {
      kind: 'watchdog';
      /** DomainEventWatchdogAction. */
      action: number;
    })
  | (EventBase & {
      kind: 'ioError';
      /** The host path of the disk's source (may be empty, e.g. for network disks). */
      srcPath: string;
      /** The device alias, e.g. `virtio-disk0`. */
      devAlias: string;
      /** DomainEventIoErrorAction. */
      action: number;
      /** The hypervisor's reason, e.g. `enospc`. */
      reason: string;
    })
  /** CONTROL_ERROR: libvirt lost control of the domain's hypervisor process. */
  | (EventBase & { kind: 'controlError' })
  | (EventBase & {
      kind: 'diskChange';
      /** The medium's source before the change, or null. */
      oldSrcPath: string | null;
      /** The medium's source after the change, or null (none now). */
      newSrcPath: string | null;
      devAlias: string;
      /** DomainEventDiskChangeReason. */
      reason: number;
    })
  | (EventBase & {
      kind: 'trayChange';
      devAlias: string;
      /** DomainEventTrayChangeReason. */
      reason: number;
    })
  /** PMWAKEUP, PMSUSPEND, PMSUSPEND_DISK: `reason` is reserved by libvirt (0). */
  | (EventBase & { kind: 'pmWakeup'; reason: number })
  | (EventBase & { kind: 'pmSuspend'; reason: number })
  | (EventBase & { kind: 'pmSuspendDisk'; reason: number })
  | (EventBase & { kind: 'deviceRemoved'; devAlias: string })
  | (EventBase & {
      kind: 'agentLifecycle';
      /** DomainEventAgentLifecycleState. */
      state: number;
      /** DomainEventAgentLifecycleReason. */
      reason: number;
    })
  | (EventBase & { kind: 'deviceAdded'; devAlias: string })
  | (EventBase & {
      kind: 'jobCompleted';
      /** The job's statistics (virDomainGetJobStats fields: `operation`, `time_elapsed`, …). */
      params: TypedParamsRecord;
    })
  | (EventBase & { kind: 'deviceRemovalFailed'; devAlias: string })
  | (EventBase & {
      kind: 'metadataChange';
      /** DomainMetadataType. */
      type: number;
      /** The namespace URI of an ELEMENT change; null for the title and description. */
      nsuri: string | null;
    })
  | (EventBase & {
      kind: 'blockThreshold';
      /** The disk the threshold was set on: its target (`vda`) or an image of its chain (`vda[1]`). */
      disk: string;
      /** The image's source path, or null where it has none. */
      path: string | null;
      /** The threshold that was crossed, in bytes. */
      threshold: number | string;
      /** How far past the threshold the write went, in bytes. */
      excess: number | string;
    })
  | (EventBase & {
      kind: 'memoryFailure';
      /** DomainEventMemoryFailureRecipient. */
      recipient: number;
      /** DomainEventMemoryFailureAction. */
      action: number;
      /** DomainMemoryFailureFlags. */
      flags: number;
    });

export type DomainEventKind = DomainEvent['kind'];

interface EventDecoder {
  readonly codec: Codec<never>;
  toEvent(v: never): DomainEvent | null;
}

function decoder<T>(codec: Codec<T>, toEvent: (v: T) => DomainEvent | null): EventDecoder {
  return { codec: codec as Codec<never>, toEvent: toEvent as (v: never) => DomainEvent | null };
}

/** The common part of a nested callback message. */
function base(v: { callbackID: number; msg: { dom: RemoteDomain } }): EventBase {
  return { callbackId: v.callbackID, dom: v.msg.dom };
}

/** The common part of a flat callback message. */
function flatBase(v: { callbackID: number; dom: RemoteDomain }): EventBase {
  return { callbackId: v.callbackID, dom: v.dom };
}

type PmMsg = Infer<ReturnType<typeof callbackReasonMsg>>;

function pm(kind: 'pmWakeup' | 'pmSuspend' | 'pmSuspendDisk') {
  return (v: PmMsg): DomainEvent => ({
    kind,
    callbackId: v.callbackID,
    dom: v.msg.dom,
    reason: v.reason,
  });
}

/** REMOTE_PROC_DOMAIN_EVENT_*: the procedure numbers of the event messages decoded here. */
export const EventProc = {
  DOMAIN_EVENT_CALLBACK_LIFECYCLE: 318,
  DOMAIN_EVENT_CALLBACK_REBOOT: 319,
  DOMAIN_EVENT_CALLBACK_RTC_CHANGE: 320,
  DOMAIN_EVENT_CALLBACK_WATCHDOG: 321,
  DOMAIN_EVENT_CALLBACK_IO_ERROR_REASON: 324,
  DOMAIN_EVENT_CALLBACK_CONTROL_ERROR: 325,
  DOMAIN_EVENT_CALLBACK_BLOCK_JOB: 326,
  DOMAIN_EVENT_CALLBACK_DISK_CHANGE: 327,
  DOMAIN_EVENT_CALLBACK_TRAY_CHANGE: 328,
  DOMAIN_EVENT_CALLBACK_PMWAKEUP: 329,
  DOMAIN_EVENT_CALLBACK_PMSUSPEND: 330,
  DOMAIN_EVENT_CALLBACK_PMSUSPEND_DISK: 332,
  DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED: 333,
  DOMAIN_EVENT_BLOCK_JOB_2: 339,
  DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE: 348,
  DOMAIN_EVENT_CALLBACK_DEVICE_ADDED: 354,
  DOMAIN_EVENT_CALLBACK_JOB_COMPLETED: 363,
  DOMAIN_EVENT_CALLBACK_DEVICE_REMOVAL_FAILED: 367,
  DOMAIN_EVENT_CALLBACK_METADATA_CHANGE: 379,
  DOMAIN_EVENT_BLOCK_THRESHOLD: 385,
  DOMAIN_EVENT_MEMORY_FAILURE: 423,
} as const;

export const domainEventDecoders: ReadonlyMap<number, EventDecoder> = new Map([
  [
    EventProc.DOMAIN_EVENT_CALLBACK_LIFECYCLE,
    decoder(domainEventLifecycleMsg, (v) => ({
      kind: 'lifecycle',
      ...base(v),
      event: v.msg.event,
      detail: v.msg.detail,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_BLOCK_JOB,
    decoder(domainEventBlockJobMsg, (v) => ({
      kind: 'blockJobLegacy',
      ...base(v),
      path: v.msg.path,
      type: v.msg.type,
      status: v.msg.status,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_BLOCK_JOB_2,
    decoder(domainEventBlockJob2Msg, (v) => ({
      kind: 'blockJob',
      ...flatBase(v),
      disk: v.dst,
      type: v.type,
      status: v.status,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_REBOOT,
    decoder(domainEventRebootMsg, (v) => ({ kind: 'reboot', ...base(v) })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_RTC_CHANGE,
    decoder(domainEventRtcChangeMsg, (v) => ({
      kind: 'rtcChange',
      ...base(v),
      offset: int64ToJson(v.msg.offset),
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_WATCHDOG,
    decoder(domainEventWatchdogMsg, (v) => ({
      kind: 'watchdog',
      ...base(v),
      action: v.msg.action,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_IO_ERROR_REASON,
    decoder(domainEventIoErrorReasonMsg, (v) => ({
      kind: 'ioError',
      ...base(v),
      srcPath: v.msg.srcPath,
      devAlias: v.msg.devAlias,
      action: v.msg.action,
      reason: v.msg.reason,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_CONTROL_ERROR,
    decoder(domainEventControlErrorMsg, (v) => ({ kind: 'controlError', ...base(v) })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_DISK_CHANGE,
    decoder(domainEventDiskChangeMsg, (v) => ({
      kind: 'diskChange',
      ...base(v),
      oldSrcPath: v.msg.oldSrcPath,
      newSrcPath: v.msg.newSrcPath,
      devAlias: v.msg.devAlias,
      reason: v.msg.reason,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_TRAY_CHANGE,
    decoder(domainEventTrayChangeMsg, (v) => ({
      kind: 'trayChange',
      ...base(v),
      devAlias: v.msg.devAlias,
      reason: v.msg.reason,
    })),
  ],
  [EventProc.DOMAIN_EVENT_CALLBACK_PMWAKEUP, decoder(domainEventPmWakeupMsg, pm('pmWakeup'))],
  [EventProc.DOMAIN_EVENT_CALLBACK_PMSUSPEND, decoder(domainEventPmSuspendMsg, pm('pmSuspend'))],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_PMSUSPEND_DISK,
    decoder(domainEventPmSuspendDiskMsg, pm('pmSuspendDisk')),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED,
    decoder(domainEventDeviceRemovedMsg, (v) => ({
      kind: 'deviceRemoved',
      ...base(v),
      devAlias: v.msg.devAlias,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE,
    decoder(domainEventAgentLifecycleMsg, (v) => ({
      kind: 'agentLifecycle',
      ...flatBase(v),
      state: v.state,
      reason: v.reason,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_DEVICE_ADDED,
    decoder(domainEventDeviceAddedMsg, (v) => ({
      kind: 'deviceAdded',
      ...flatBase(v),
      devAlias: v.devAlias,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_JOB_COMPLETED,
    decoder(domainEventJobCompletedMsg, (v) => ({
      kind: 'jobCompleted',
      ...flatBase(v),
      params: typedParamsToRecord(v.params),
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_DEVICE_REMOVAL_FAILED,
    decoder(domainEventDeviceRemovalFailedMsg, (v) => ({
      kind: 'deviceRemovalFailed',
      ...flatBase(v),
      devAlias: v.devAlias,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_CALLBACK_METADATA_CHANGE,
    decoder(domainEventMetadataChangeMsg, (v) => ({
      kind: 'metadataChange',
      ...flatBase(v),
      type: v.type,
      nsuri: v.nsuri,
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_BLOCK_THRESHOLD,
    decoder(domainEventBlockThresholdMsg, (v) => ({
      kind: 'blockThreshold',
      ...flatBase(v),
      disk: v.dev,
      path: v.path,
      threshold: int64ToJson(v.threshold),
      excess: int64ToJson(v.excess),
    })),
  ],
  [
    EventProc.DOMAIN_EVENT_MEMORY_FAILURE,
    decoder(domainEventMemoryFailureMsg, (v) => ({
      kind: 'memoryFailure',
      ...flatBase(v),
      recipient: v.recipient,
      action: v.action,
      flags: v.flags,
    })),
  ],
]);
