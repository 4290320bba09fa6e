/**
 * Domain events produced for real on a running TCG domain (no guest OS) and
 * read back through the RPC client's decoders: each action below is an RPC
 * call of this client, each event what libvirtd sent for it.
 *
 * Produced here: DISK_CHANGE (an optional cdrom medium missing at start),
 * AGENT_LIFECYCLE (the agent channel at start), REBOOT (virDomainReset),
 * METADATA_CHANGE (title and an element), TRAY_CHANGE (a cdrom media change),
 * DEVICE_ADDED and DEVICE_REMOVED (a USB disk, which QEMU unplugs without the
 * guest), BLOCK_THRESHOLD (a block pull writing past the threshold) and
 * JOB_COMPLETED (a managed save); MIGRATION_ITERATION, which this client does
 * not decode, arrives as an unknown message.
 *
 * The firmware probing the cdrom just after a (re)start races a media change
 * (QEMU then refuses to remove the medium: the tray is not open), so the cdrom
 * is changed with the vCPU paused, and the reset, after which the firmware
 * starts over (and may reboot once more by itself: a second REBOOT), comes late.
 *
 * Not produced (they need a guest OS, a guest agent or failing hardware):
 * RTC_CHANGE, WATCHDOG, IO_ERROR_REASON, CONTROL_ERROR, PMWAKEUP, PMSUSPEND,
 * PMSUSPEND_DISK, DEVICE_REMOVAL_FAILED, MEMORY_FAILURE; the unit tests decode them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  BlockJobStatus,
  DomainAffect,
  DomainEventAgentLifecycleReason,
  DomainEventAgentLifecycleState,
  DomainEventDiskChangeReason,
  DomainEventId,
  DomainEventTrayChangeReason,
  DomainJobOperation,
  DomainMetadataType,
  DomainUndefineFlags,
  EventProc,
  LibvirtClient,
  type DomainEvent,
  type DomainEventKind,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import type { PacketHeader } from '#src/libvirt/rpc/header.js';
import { cdromMediaXml, tcgEventsDomainXml, usbDiskXml } from '../support/domain-xml.js';
import { createChain, makeImageDir, qemuImg, writePattern } from '../support/qemu-images.js';
import { waitFor } from '../support/wait.js';

const DEADLINE_MS = 30_000;
/** REMOTE_PROC_DOMAIN_EVENT_CALLBACK_MIGRATION_ITERATION: not decoded by this client. */
const MIGRATION_ITERATION_PROC = 359;

type Of<K extends DomainEventKind> = Extract<DomainEvent, { kind: K }>;

/** Every event of one domain on one client, in arrival order; waits for one with a deadline. */
class EventLog {
  readonly seen: DomainEvent[] = [];
  readonly unknown: PacketHeader[] = [];
  readonly warnings: string[] = [];

  constructor(client: LibvirtClient, uuid: Buffer) {
    client.on('domainEvent', (e) => {
      if (e.dom.uuid.equals(uuid)) this.seen.push(e);
    });
    client.on('unknownMessage', (h) => this.unknown.push(h));
    client.on('warning', (m) => this.warnings.push(m));
  }

  /** The position the next event will take: wait from here for what an action causes. */
  mark(): number {
    return this.seen.length;
  }

  /** The first event of `kind` at or after `from` that `match` accepts. */
  async next<K extends DomainEventKind>(
    kind: K,
    from: number,
    match: (e: Of<K>) => boolean = () => true,
  ): Promise<Of<K>> {
    const accepts = (e: DomainEvent): e is Of<K> => e.kind === kind && match(e as Of<K>);
    return waitFor(() => this.seen.slice(from).find(accepts), `a ${kind} event`, DEADLINE_MS).catch(
      (err: Error) => {
        throw new Error(
          `${err.message}; saw ${JSON.stringify(this.seen.slice(from).map((e) => e.kind))}`,
        );
      },
    );
  }

  async nextUnknown(proc: number): Promise<void> {
    await waitFor(
      () => this.unknown.some((h) => h.proc === proc),
      `unknown message ${proc}`,
      DEADLINE_MS,
    );
  }
}

describe('domain events from a running TCG domain over qemu:///system', () => {
  let client: LibvirtClient;
  let images: Awaited<ReturnType<typeof makeImageDir>>;
  let dom: RemoteDomain;
  let log: EventLog;
  let top: string, usbImage: string, iso: string, missingIso: string;
  const callbacks = new Map<number, number>();
  const name = `vg-ev-${randomUUID().slice(0, 8)}`;
  const usbAlias = 'ua-events-usb';

  const cb = (eventId: number): number => callbacks.get(eventId)!;
  const liveXml = async (): Promise<string> =>
    (await client.rpc.domainGetXmlDesc({ dom, flags: 0 })).xml;

  before(async () => {
    images = await makeImageDir(name);
    // A base with data under an empty top: pulling it writes into the top image.
    const [base, topImage] = await createChain(images.dir, ['base', 'top']);
    await writePattern(base!, 0x5a, 0);
    top = topImage!;
    [usbImage] = (await createChain(images.dir, ['usb'])) as [string];
    iso = path.join(images.dir, 'media.iso');
    await qemuImg('create', '-q', '-f', 'raw', iso, '1M');
    missingIso = path.join(images.dir, 'missing.iso');

    client = await LibvirtClient.connect('qemu:///system');
    dom = (
      await client.rpc.domainDefineXmlFlags({
        xml: tcgEventsDomainXml(name, top, missingIso),
        flags: 0,
      })
    ).dom;
    log = new EventLog(client, dom.uuid);
    for (const id of [
      DomainEventId.LIFECYCLE,
      DomainEventId.REBOOT,
      DomainEventId.DISK_CHANGE,
      DomainEventId.TRAY_CHANGE,
      DomainEventId.DEVICE_ADDED,
      DomainEventId.DEVICE_REMOVED,
      DomainEventId.AGENT_LIFECYCLE,
      DomainEventId.METADATA_CHANGE,
      DomainEventId.BLOCK_THRESHOLD,
      DomainEventId.BLOCK_JOB_2,
      DomainEventId.JOB_COMPLETED,
      DomainEventId.MIGRATION_ITERATION,
    ]) {
      callbacks.set(id, await client.domainEventRegisterAny(id, dom));
    }
    dom = (await client.rpc.domainCreateWithFlags({ dom, flags: 0 })).dom;
  });

  after(async () => {
    try {
      await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await client.rpc.domainUndefineFlags({ dom, flags: DomainUndefineFlags.MANAGED_SAVE });
    } finally {
      await client.close();
      await images.remove();
    }
  });

  it('reports the optional cdrom medium dropped at start as DISK_CHANGE', async () => {
    const e = await log.next('diskChange', 0);
    assert.deepEqual(
      { ...e, dom: e.dom.name },
      {
        kind: 'diskChange',
        callbackId: cb(DomainEventId.DISK_CHANGE),
        dom: name,
        oldSrcPath: missingIso,
        newSrcPath: null,
        devAlias: 'ide0-1-0',
        reason: DomainEventDiskChangeReason.MISSING_ON_START,
      },
    );
  });

  it('reports the guest agent channel at start as AGENT_LIFECYCLE', async () => {
    const e = await log.next('agentLifecycle', 0);
    assert.equal(e.callbackId, cb(DomainEventId.AGENT_LIFECYCLE));
    assert.equal(e.state, DomainEventAgentLifecycleState.DISCONNECTED, 'no agent runs');
    assert.equal(e.reason, DomainEventAgentLifecycleReason.DOMAIN_STARTED);
  });

  it('reports a live title and a live metadata element as METADATA_CHANGE', async () => {
    let from = log.mark();
    await client.rpc.domainSetMetadata({
      dom,
      type: DomainMetadataType.TITLE,
      metadata: 'events under test',
      key: null,
      uri: null,
      flags: DomainAffect.LIVE,
    });
    const title = await log.next('metadataChange', from);
    assert.equal(title.callbackId, cb(DomainEventId.METADATA_CHANGE));
    assert.equal(title.type, DomainMetadataType.TITLE);
    assert.equal(title.nsuri, null);
    const read = await client.rpc.domainGetMetadata({
      dom,
      type: DomainMetadataType.TITLE,
      uri: null,
      flags: DomainAffect.LIVE,
    });
    assert.equal(read.metadata, 'events under test');

    from = log.mark();
    const uri = 'http://virtgate.example/events';
    await client.rpc.domainSetMetadata({
      dom,
      type: DomainMetadataType.ELEMENT,
      metadata: '<probe n="1"/>',
      key: 'vg',
      uri,
      flags: DomainAffect.LIVE,
    });
    const element = await log.next('metadataChange', from);
    assert.equal(element.type, DomainMetadataType.ELEMENT);
    assert.equal(element.nsuri, uri);
  });

  it('reports a cdrom media change as the tray opening, then closing', async () => {
    // With the vCPU paused: the firmware still probing the drive would race the change.
    await client.rpc.domainSuspend({ dom });
    const from = log.mark();
    try {
      await client.rpc.domainUpdateDeviceFlags({
        dom,
        xml: cdromMediaXml(iso),
        flags: DomainAffect.LIVE,
      });
    } finally {
      await client.rpc.domainResume({ dom });
    }
    const opened = await log.next(
      'trayChange',
      from,
      (e) => e.reason === DomainEventTrayChangeReason.OPEN,
    );
    const closed = await log.next(
      'trayChange',
      from,
      (e) => e.reason === DomainEventTrayChangeReason.CLOSE,
    );
    for (const e of [opened, closed]) {
      assert.equal(e.callbackId, cb(DomainEventId.TRAY_CHANGE));
      assert.equal(e.devAlias, 'ide0-1-0');
    }
    assert.ok(log.seen.indexOf(opened) < log.seen.indexOf(closed), 'opened before closed');
    assert.ok((await liveXml()).includes(`<source file='${iso}'`), 'the new medium is in');
  });

  it('reports a USB disk attached and detached as DEVICE_ADDED and DEVICE_REMOVED', async () => {
    const xml = usbDiskXml(usbImage, usbAlias);
    let from = log.mark();
    await client.rpc.domainAttachDeviceFlags({ dom, xml, flags: DomainAffect.LIVE });
    const added = await log.next('deviceAdded', from);
    assert.equal(added.callbackId, cb(DomainEventId.DEVICE_ADDED));
    assert.equal(added.devAlias, usbAlias);
    assert.ok((await liveXml()).includes(usbAlias));

    from = log.mark();
    await client.rpc.domainDetachDeviceFlags({ dom, xml, flags: DomainAffect.LIVE });
    const removed = await log.next('deviceRemoved', from);
    assert.equal(removed.callbackId, cb(DomainEventId.DEVICE_REMOVED));
    assert.equal(removed.devAlias, usbAlias);
    assert.ok(!(await liveXml()).includes(usbAlias), 'the disk is gone from the live XML');
  });

  it('reports a block pull writing past a threshold as BLOCK_THRESHOLD', async () => {
    const threshold = 65_536;
    await client.rpc.domainSetBlockThreshold({
      dom,
      dev: 'vda',
      threshold: BigInt(threshold),
      flags: 0,
    });
    const from = log.mark();
    await client.rpc.domainBlockPull({ dom, path: 'vda', bandwidth: 0n, flags: 0 });
    const e = await log.next('blockThreshold', from, (t) => t.disk === 'vda');
    assert.equal(e.callbackId, cb(DomainEventId.BLOCK_THRESHOLD));
    assert.equal(e.path, top);
    assert.equal(e.threshold, threshold);
    assert.equal(typeof e.excess, 'number');
    assert.ok((e.excess as number) > 0, `excess ${e.excess}`);
    await log.next(
      'blockJob',
      from,
      (j) => j.disk === 'vda' && j.status === BlockJobStatus.COMPLETED,
    );
  });

  it('reports virDomainReset as REBOOT', async () => {
    const from = log.mark();
    await client.rpc.domainReset({ dom, flags: 0 });
    const e = await log.next('reboot', from);
    assert.deepEqual(
      { ...e, dom: e.dom.name },
      { kind: 'reboot', callbackId: cb(DomainEventId.REBOOT), dom: name },
    );
    assert.ok(e.dom.uuid.equals(dom.uuid));
  });

  it('reports a managed save as JOB_COMPLETED, and MIGRATION_ITERATION as unknown', async () => {
    const from = log.mark();
    await client.rpc.domainManagedSave({ dom, flags: 0 });
    const e = await log.next('jobCompleted', from);
    assert.equal(e.callbackId, cb(DomainEventId.JOB_COMPLETED));
    assert.equal(e.params.operation, DomainJobOperation.SAVE);
    assert.equal(typeof e.params.time_elapsed, 'number');
    assert.ok((e.params.memory_total as number) > 0, JSON.stringify(e.params));
    assert.doesNotThrow(() => JSON.stringify(e));
    await log.nextUnknown(MIGRATION_ITERATION_PROC);
    assert.equal((await client.rpc.domainHasManagedSaveImage({ dom, flags: 0 })).result, 1);
  });

  it('reported nothing it decodes as unknown, and failed to decode nothing', () => {
    const decoded = new Set<number>(Object.values(EventProc));
    assert.deepEqual(
      log.unknown.filter((h) => decoded.has(h.proc)),
      [],
    );
    assert.ok(log.unknown.every((h) => h.proc === MIGRATION_ITERATION_PROC));
    assert.deepEqual(
      log.warnings.filter((w) => w.includes('cannot decode')),
      [],
    );
  });
});
