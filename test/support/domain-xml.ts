/**
 * Test-side XML: builds the small TCG domains the tests run (with an XML
 * library, never by concatenation) and reads a disk's live backing chain.
 */
import { DOMImplementation, DOMParser, XMLSerializer, type Element } from '@xmldom/xmldom';

type Attrs = Record<string, string>;

function el(
  doc: ReturnType<DOMImplementation['createDocument']>,
  name: string,
  attrs: Attrs = {},
  text?: string,
): Element {
  const e = doc.createElement(name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.appendChild(doc.createTextNode(text));
  return e;
}

function tcgDomain(name: string, diskPath: string, uuid?: string) {
  const doc = new DOMImplementation().createDocument(null, 'domain', null);
  const root = doc.documentElement!;
  root.setAttribute('type', 'qemu');
  root.appendChild(el(doc, 'name', {}, name));
  if (uuid) root.appendChild(el(doc, 'uuid', {}, uuid));
  root.appendChild(el(doc, 'memory', { unit: 'MiB' }, '64'));
  root.appendChild(el(doc, 'vcpu', {}, '1'));
  const os = el(doc, 'os');
  os.appendChild(el(doc, 'type', { arch: 'x86_64', machine: 'pc' }, 'hvm'));
  root.appendChild(os);
  const devices = el(doc, 'devices');
  devices.appendChild(el(doc, 'emulator', {}, '/usr/bin/qemu-system-x86_64'));
  const disk = el(doc, 'disk', { type: 'file', device: 'disk' });
  disk.appendChild(el(doc, 'driver', { name: 'qemu', type: 'qcow2' }));
  disk.appendChild(el(doc, 'source', { file: diskPath }));
  disk.appendChild(el(doc, 'target', { dev: 'vda', bus: 'virtio' }));
  devices.appendChild(disk);
  root.appendChild(devices);
  return { doc, devices };
}

/** A 64 MiB TCG guest with no OS and one virtio qcow2 disk `vda` (give `uuid` to redefine one). */
export function tcgDomainXml(name: string, diskPath: string, uuid?: string): string {
  return new XMLSerializer().serializeToString(tcgDomain(name, diskPath, uuid).doc);
}

/** Makes `disk` the IDE cdrom `hdc` (alias `ide0-1-0`) with `source` as its medium. */
function cdrom(
  doc: ReturnType<DOMImplementation['createDocument']>,
  disk: Element,
  source: string,
  startupPolicy?: 'optional',
): Element {
  disk.setAttribute('type', 'file');
  disk.setAttribute('device', 'cdrom');
  disk.appendChild(el(doc, 'driver', { name: 'qemu', type: 'raw' }));
  disk.appendChild(
    el(doc, 'source', { file: source, ...(startupPolicy ? { startupPolicy } : {}) }),
  );
  disk.appendChild(el(doc, 'target', { dev: 'hdc', bus: 'ide' }));
  disk.appendChild(el(doc, 'readonly'));
  return disk;
}

/**
 * `tcgDomainXml` plus what the event tests need: an IDE cdrom `hdc` whose medium
 * `missingIso` is optional (libvirt drops it at start if absent), and a guest
 * agent channel (no agent ever answers on it: the guest has no OS).
 */
export function tcgEventsDomainXml(name: string, diskPath: string, missingIso: string): string {
  const { doc, devices } = tcgDomain(name, diskPath);
  devices.appendChild(cdrom(doc, el(doc, 'disk'), missingIso, 'optional'));
  const channel = el(doc, 'channel', { type: 'unix' });
  channel.appendChild(el(doc, 'target', { type: 'virtio', name: 'org.qemu.guest_agent.0' }));
  devices.appendChild(channel);
  return new XMLSerializer().serializeToString(doc);
}

/** The cdrom `hdc` of `tcgEventsDomainXml` with `iso` as its medium, for a media change. */
export function cdromMediaXml(iso: string): string {
  const doc = new DOMImplementation().createDocument(null, 'disk', null);
  cdrom(doc, doc.documentElement!, iso);
  return new XMLSerializer().serializeToString(doc);
}

/** A qcow2 USB disk `sda` with a user alias (QEMU unplugs USB devices without the guest). */
export function usbDiskXml(file: string, alias: string): string {
  const doc = new DOMImplementation().createDocument(null, 'disk', null);
  const root = doc.documentElement!;
  root.setAttribute('type', 'file');
  root.setAttribute('device', 'disk');
  root.appendChild(el(doc, 'driver', { name: 'qemu', type: 'qcow2' }));
  root.appendChild(el(doc, 'source', { file }));
  root.appendChild(el(doc, 'target', { dev: 'sda', bus: 'usb' }));
  root.appendChild(el(doc, 'alias', { name: alias }));
  return new XMLSerializer().serializeToString(doc);
}

/** A minimal domain for the test driver. */
export function testDriverDomainXml(name: string, memoryMiB: number): string {
  const doc = new DOMImplementation().createDocument(null, 'domain', null);
  const root = doc.documentElement!;
  root.setAttribute('type', 'test');
  root.appendChild(el(doc, 'name', {}, name));
  root.appendChild(el(doc, 'memory', { unit: 'MiB' }, String(memoryMiB)));
  const os = el(doc, 'os');
  os.appendChild(el(doc, 'type', {}, 'hvm'));
  root.appendChild(os);
  return new XMLSerializer().serializeToString(doc);
}

/** A storage volume of `capacityMiB`, in the pool's default format. */
export function volumeXml(name: string, capacityMiB: number): string {
  const doc = new DOMImplementation().createDocument(null, 'volume', null);
  const root = doc.documentElement!;
  root.appendChild(el(doc, 'name', {}, name));
  root.appendChild(el(doc, 'capacity', { unit: 'MiB' }, String(capacityMiB)));
  return new XMLSerializer().serializeToString(doc);
}

/** The destination of a block copy: a qcow2 file. */
export function copyDestinationXml(file: string): string {
  const doc = new DOMImplementation().createDocument(null, 'disk', null);
  const root = doc.documentElement!;
  root.setAttribute('type', 'file');
  root.appendChild(el(doc, 'driver', { type: 'qcow2' }));
  root.appendChild(el(doc, 'source', { file }));
  return new XMLSerializer().serializeToString(doc);
}

/** An external disk-only snapshot of `vda` into `overlay`. */
export function diskSnapshotXml(name: string, overlay: string): string {
  const doc = new DOMImplementation().createDocument(null, 'domainsnapshot', null);
  const root = doc.documentElement!;
  root.appendChild(el(doc, 'name', {}, name));
  const disks = el(doc, 'disks');
  const disk = el(doc, 'disk', { name: 'vda', snapshot: 'external' });
  disk.appendChild(el(doc, 'source', { file: overlay }));
  disks.appendChild(disk);
  root.appendChild(disks);
  return new XMLSerializer().serializeToString(doc);
}

export interface ChainMember {
  index: number | null;
  path: string;
  format: string | null;
}

function child(e: Element, name: string): Element | null {
  for (let n = e.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).tagName === name) return n as Element;
  }
  return null;
}

/** The backing chain of disk `target` in live domain XML, top first, as libvirt indexes it. */
export function liveChain(domainXml: string, target: string): ChainMember[] {
  const doc = new DOMParser().parseFromString(domainXml, 'text/xml');
  const disks = Array.from(doc.getElementsByTagName('disk'));
  const disk = disks.find((d) => child(d, 'target')?.getAttribute('dev') === target);
  if (!disk) throw new Error(`no disk ${target} in domain XML`);
  const out: ChainMember[] = [];
  const source = child(disk, 'source')!;
  out.push({
    index: source.hasAttribute('index') ? Number(source.getAttribute('index')) : null,
    path: source.getAttribute('file')!,
    format: child(disk, 'driver')?.getAttribute('type') ?? null,
  });
  for (
    let bs = child(disk, 'backingStore');
    bs && bs.hasAttribute('type');
    bs = child(bs, 'backingStore')
  ) {
    out.push({
      index: bs.hasAttribute('index') ? Number(bs.getAttribute('index')) : null,
      path: child(bs, 'source')!.getAttribute('file')!,
      format: child(bs, 'format')?.getAttribute('type') ?? null,
    });
  }
  return out;
}
