/**
 * Every event message this client decodes, written field by field in the
 * order of src/remote/remote_protocol.x with the XDR writer (not with the
 * decoder's own codec, so that a field out of order shows), then read back
 * through `domainEventDecoders` as the client routes a MESSAGE packet.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { XdrWriter } from '#src/libvirt/xdr/writer.js';
import { decodeFromBuffer } from '#src/libvirt/xdr/codec.js';
import {
  REMOTE_STRING_MAX,
  TypedParamType,
  domain,
  typedParam,
  type TypedParam,
} from '#src/libvirt/protocol/types.js';
import {
  domainEventDecoders,
  EventProc,
  type DomainEvent,
  type DomainEventKind,
} from '#src/libvirt/protocol/events.js';
import {
  DomainEventAgentLifecycleReason,
  DomainEventAgentLifecycleState,
  DomainEventDiskChangeReason,
  DomainEventIoErrorAction,
  DomainEventMemoryFailureAction,
  DomainEventMemoryFailureRecipient,
  DomainEventTrayChangeReason,
  DomainEventWatchdogAction,
  DomainJobOperation,
  DomainMemoryFailureFlags,
  DomainMetadataType,
} from '#src/libvirt/protocol/constants.js';

const UUID = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const DOM = { name: 'vm-ev', uuid: UUID, id: 12 };
const CB = 41;

/** A payload written with the XDR writer by `build`. */
function payload(build: (w: XdrWriter) => void): Buffer {
  const w = new XdrWriter();
  build(w);
  return w.finish();
}

const str = (w: XdrWriter, s: string): void => w.writeString(s, REMOTE_STRING_MAX);
/** `remote_string`: a pointer, present flag first. */
const optStr = (w: XdrWriter, s: string | null): void => {
  w.writeUint(s === null ? 0 : 1);
  if (s !== null) str(w, s);
};
const dom = (w: XdrWriter): void => domain.encode(w, DOM);

/** Decodes `bytes` as the client does for a MESSAGE of procedure `proc` (all bytes consumed). */
function decodeEvent(proc: number, bytes: Buffer): DomainEvent | null {
  const d = domainEventDecoders.get(proc);
  assert.ok(d, `a decoder for procedure ${proc}`);
  return d.toEvent(decodeFromBuffer(d.codec, bytes));
}

/** `remote_domain_event_callback_X_msg`: callbackID, then the legacy msg beginning with dom. */
function nested(rest: (w: XdrWriter) => void = () => undefined): Buffer {
  return payload((w) => {
    w.writeInt(CB);
    dom(w);
    rest(w);
  });
}

/** A flat message: callbackID, dom, then the fields (the same bytes as `nested`). */
const flat = nested;

/** The PM events: callbackID, a reserved reason, then the legacy msg (dom). */
function pm(reason: number): Buffer {
  return payload((w) => {
    w.writeInt(CB);
    w.writeInt(reason);
    dom(w);
  });
}

const common = { callbackId: CB, dom: DOM };
const covered = new Set<DomainEventKind>();

function check(proc: number, bytes: Buffer, expected: DomainEvent): void {
  const event = decodeEvent(proc, bytes);
  assert.deepEqual(event, expected);
  assert.doesNotThrow(() => JSON.stringify(event), 'the event is plain JSON (no bigint)');
  covered.add(expected.kind);
}

describe('domain event decoders', () => {
  it('decodes REBOOT and CONTROL_ERROR (a domain alone)', () => {
    check(EventProc.DOMAIN_EVENT_CALLBACK_REBOOT, nested(), { kind: 'reboot', ...common });
    check(EventProc.DOMAIN_EVENT_CALLBACK_CONTROL_ERROR, nested(), {
      kind: 'controlError',
      ...common,
    });
  });

  it('decodes RTC_CHANGE with a signed 64-bit offset', () => {
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_RTC_CHANGE,
      nested((w) => w.writeHyper(-3600n)),
      { kind: 'rtcChange', ...common, offset: -3600 },
    );
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_RTC_CHANGE,
      nested((w) => w.writeHyper(-(2n ** 62n))),
      { kind: 'rtcChange', ...common, offset: (-(2n ** 62n)).toString() },
    );
  });

  it('decodes WATCHDOG', () => {
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_WATCHDOG,
      nested((w) => w.writeInt(DomainEventWatchdogAction.INJECTNMI)),
      { kind: 'watchdog', ...common, action: DomainEventWatchdogAction.INJECTNMI },
    );
  });

  it('decodes IO_ERROR_REASON', () => {
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_IO_ERROR_REASON,
      nested((w) => {
        str(w, '/var/lib/images/a.qcow2');
        str(w, 'virtio-disk0');
        w.writeInt(DomainEventIoErrorAction.PAUSE);
        str(w, 'enospc');
      }),
      {
        kind: 'ioError',
        ...common,
        srcPath: '/var/lib/images/a.qcow2',
        devAlias: 'virtio-disk0',
        action: DomainEventIoErrorAction.PAUSE,
        reason: 'enospc',
      },
    );
  });

  it('decodes DISK_CHANGE with either source path absent', () => {
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_DISK_CHANGE,
      nested((w) => {
        optStr(w, '/isos/missing.iso');
        optStr(w, null);
        str(w, 'ide0-1-0');
        w.writeInt(DomainEventDiskChangeReason.MISSING_ON_START);
      }),
      {
        kind: 'diskChange',
        ...common,
        oldSrcPath: '/isos/missing.iso',
        newSrcPath: null,
        devAlias: 'ide0-1-0',
        reason: DomainEventDiskChangeReason.MISSING_ON_START,
      },
    );
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_DISK_CHANGE,
      nested((w) => {
        optStr(w, null);
        optStr(w, '/isos/new.iso');
        str(w, 'sata0-0-1');
        w.writeInt(DomainEventDiskChangeReason.DROP_MISSING_ON_START);
      }),
      {
        kind: 'diskChange',
        ...common,
        oldSrcPath: null,
        newSrcPath: '/isos/new.iso',
        devAlias: 'sata0-0-1',
        reason: DomainEventDiskChangeReason.DROP_MISSING_ON_START,
      },
    );
  });

  it('decodes TRAY_CHANGE', () => {
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_TRAY_CHANGE,
      nested((w) => {
        str(w, 'ide0-1-0');
        w.writeInt(DomainEventTrayChangeReason.CLOSE);
      }),
      {
        kind: 'trayChange',
        ...common,
        devAlias: 'ide0-1-0',
        reason: DomainEventTrayChangeReason.CLOSE,
      },
    );
  });

  it('decodes PMWAKEUP, PMSUSPEND and PMSUSPEND_DISK (reason before the msg)', () => {
    check(EventProc.DOMAIN_EVENT_CALLBACK_PMWAKEUP, pm(0), {
      kind: 'pmWakeup',
      ...common,
      reason: 0,
    });
    check(EventProc.DOMAIN_EVENT_CALLBACK_PMSUSPEND, pm(3), {
      kind: 'pmSuspend',
      ...common,
      reason: 3,
    });
    check(EventProc.DOMAIN_EVENT_CALLBACK_PMSUSPEND_DISK, pm(5), {
      kind: 'pmSuspendDisk',
      ...common,
      reason: 5,
    });
  });

  it('decodes DEVICE_REMOVED, DEVICE_ADDED and DEVICE_REMOVAL_FAILED', () => {
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED,
      nested((w) => str(w, 'usb-disk0')),
      { kind: 'deviceRemoved', ...common, devAlias: 'usb-disk0' },
    );
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_DEVICE_ADDED,
      flat((w) => str(w, 'ua-net1')),
      { kind: 'deviceAdded', ...common, devAlias: 'ua-net1' },
    );
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_DEVICE_REMOVAL_FAILED,
      flat((w) => str(w, 'virtio-disk3')),
      { kind: 'deviceRemovalFailed', ...common, devAlias: 'virtio-disk3' },
    );
  });

  it('decodes AGENT_LIFECYCLE', () => {
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE,
      flat((w) => {
        w.writeInt(DomainEventAgentLifecycleState.DISCONNECTED);
        w.writeInt(DomainEventAgentLifecycleReason.DOMAIN_STARTED);
      }),
      {
        kind: 'agentLifecycle',
        ...common,
        state: DomainEventAgentLifecycleState.DISCONNECTED,
        reason: DomainEventAgentLifecycleReason.DOMAIN_STARTED,
      },
    );
  });

  it('decodes JOB_COMPLETED into a plain record of its typed parameters', () => {
    const params: TypedParam[] = [
      { field: 'operation', value: { type: TypedParamType.int, value: DomainJobOperation.SAVE } },
      { field: 'uint', value: { type: TypedParamType.uint, value: 4_000_000_000 } },
      { field: 'time_elapsed', value: { type: TypedParamType.ullong, value: 14n } },
      { field: 'llong', value: { type: TypedParamType.llong, value: -(2n ** 40n) } },
      { field: 'huge', value: { type: TypedParamType.ullong, value: 2n ** 64n - 1n } },
      { field: 'rate', value: { type: TypedParamType.double, value: 0.25 } },
      { field: 'success', value: { type: TypedParamType.boolean, value: true } },
      { field: 'errmsg', value: { type: TypedParamType.string, value: 'none' } },
      { field: '__proto__', value: { type: TypedParamType.int, value: 1 } },
    ];
    const bytes = flat((w) => {
      w.writeUint(params.length);
      for (const p of params) typedParam.encode(w, p);
    });
    const event = decodeEvent(EventProc.DOMAIN_EVENT_CALLBACK_JOB_COMPLETED, bytes);
    assert.ok(event && event.kind === 'jobCompleted');
    assert.equal(
      Object.getPrototypeOf(event.params),
      Object.prototype,
      'no field sets a prototype',
    );
    check(EventProc.DOMAIN_EVENT_CALLBACK_JOB_COMPLETED, bytes, {
      kind: 'jobCompleted',
      ...common,
      params: Object.fromEntries([
        ['operation', DomainJobOperation.SAVE],
        ['uint', 4_000_000_000],
        ['time_elapsed', 14],
        ['llong', -(2 ** 40)],
        ['huge', '18446744073709551615'],
        ['rate', 0.25],
        ['success', true],
        ['errmsg', 'none'],
        ['__proto__', 1],
      ]),
    });
  });

  it('decodes METADATA_CHANGE with and without a namespace URI', () => {
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_METADATA_CHANGE,
      flat((w) => {
        w.writeInt(DomainMetadataType.TITLE);
        optStr(w, null);
      }),
      { kind: 'metadataChange', ...common, type: DomainMetadataType.TITLE, nsuri: null },
    );
    check(
      EventProc.DOMAIN_EVENT_CALLBACK_METADATA_CHANGE,
      flat((w) => {
        w.writeInt(DomainMetadataType.ELEMENT);
        optStr(w, 'http://example.org/vg');
      }),
      {
        kind: 'metadataChange',
        ...common,
        type: DomainMetadataType.ELEMENT,
        nsuri: 'http://example.org/vg',
      },
    );
  });

  it('decodes BLOCK_THRESHOLD, 64-bit sizes as numbers where exact', () => {
    check(
      EventProc.DOMAIN_EVENT_BLOCK_THRESHOLD,
      flat((w) => {
        str(w, 'vda[2]');
        optStr(w, '/images/top.qcow2');
        w.writeUhyper(65_536n);
        w.writeUhyper(131_072n);
      }),
      {
        kind: 'blockThreshold',
        ...common,
        disk: 'vda[2]',
        path: '/images/top.qcow2',
        threshold: 65_536,
        excess: 131_072,
      },
    );
    check(
      EventProc.DOMAIN_EVENT_BLOCK_THRESHOLD,
      flat((w) => {
        str(w, 'vdb');
        optStr(w, null);
        w.writeUhyper(2n ** 60n);
        w.writeUhyper(2n ** 53n - 1n);
      }),
      {
        kind: 'blockThreshold',
        ...common,
        disk: 'vdb',
        path: null,
        threshold: (2n ** 60n).toString(),
        excess: Number.MAX_SAFE_INTEGER,
      },
    );
  });

  it('decodes MEMORY_FAILURE', () => {
    const flags = DomainMemoryFailureFlags.ACTION_REQUIRED | DomainMemoryFailureFlags.RECURSIVE;
    check(
      EventProc.DOMAIN_EVENT_MEMORY_FAILURE,
      flat((w) => {
        w.writeInt(DomainEventMemoryFailureRecipient.GUEST);
        w.writeInt(DomainEventMemoryFailureAction.INJECT);
        w.writeUint(flags);
      }),
      {
        kind: 'memoryFailure',
        ...common,
        recipient: DomainEventMemoryFailureRecipient.GUEST,
        action: DomainEventMemoryFailureAction.INJECT,
        flags,
      },
    );
  });

  it('refuses a message cut short or with bytes left over', () => {
    const d = domainEventDecoders.get(EventProc.DOMAIN_EVENT_CALLBACK_TRAY_CHANGE)!;
    const whole = nested((w) => {
      str(w, 'ide0-1-0');
      w.writeInt(0);
    });
    assert.throws(() => decodeFromBuffer(d.codec, whole.subarray(0, whole.length - 4)));
    assert.throws(() => decodeFromBuffer(d.codec, Buffer.concat([whole, Buffer.alloc(4)])));
  });

  it('has a decoder for every procedure of EventProc and none for the ones left out', () => {
    assert.deepEqual(
      [...domainEventDecoders.keys()].sort((a, b) => a - b),
      Object.values(EventProc).sort((a, b) => a - b),
    );
    // GRAPHICS, BALLOON_CHANGE, TUNABLE, MIGRATION_ITERATION, MEMORY_DEVICE_SIZE_CHANGE:
    // not decoded, so the client reports them as unknown messages.
    for (const proc of [323, 331, 346, 359, 438])
      assert.equal(domainEventDecoders.has(proc), false);
  });

  it('covered every new kind above', () => {
    const kinds: DomainEventKind[] = [
      'reboot',
      'rtcChange',
      'watchdog',
      'ioError',
      'controlError',
      'diskChange',
      'trayChange',
      'pmWakeup',
      'pmSuspend',
      'pmSuspendDisk',
      'deviceRemoved',
      'agentLifecycle',
      'deviceAdded',
      'jobCompleted',
      'deviceRemovalFailed',
      'metadataChange',
      'blockThreshold',
      'memoryFailure',
    ];
    assert.deepEqual(
      kinds.filter((k) => !covered.has(k)),
      [],
    );
  });
});
