/**
 * libvirt domain XML, parsed once into typed models: identity, sizing, disks
 * with their backing chains, network interfaces. Every part of the gateway
 * that needs something from a domain's XML reads it from here.
 */
import type { Element } from '@xmldom/xmldom';
import { attr, bytesOf, child, children, intAttr, intText, parseXml, path, text } from './xml.js';

/**
 * libvirt's closed sets of what a disk's XML holds, as its domain schema
 * (domaincommon.rng) and its enums (virStorageType…) name them: what the
 * views can show. `aio` is libvirt's old name of raw, still accepted.
 */
export const DISK_DEVICES = ['disk', 'cdrom', 'floppy', 'lun'] as const;
export const DISK_SOURCE_TYPES = [
  'file',
  'block',
  'dir',
  'network',
  'volume',
  'nvme',
  'vhostuser',
  'vhostvdpa',
] as const;
export const DISK_IMAGE_FORMATS = [
  'raw',
  'dir',
  'bochs',
  'cloop',
  'dmg',
  'iso',
  'vpc',
  'vdi',
  'fat',
  'vhd',
  'ploop',
  'luks',
  'cow',
  'qcow',
  'qcow2',
  'qed',
  'vmdk',
  'aio',
] as const;

/** Where one image of a chain lives. */
export interface ImageSource {
  /** libvirt's source type: file, block, network, volume, dir, nvme, vhostuser. */
  type: string;
  /** File or block device path (file, block, dir types). */
  path: string | null;
  /** Network sources: protocol (rbd, nbd, iscsi, gluster, http…), name, hosts. */
  network: { protocol: string; name: string | null; hosts: string[] } | null;
  /** Volume sources: pool and volume. */
  volume: { pool: string; volume: string } | null;
}

/** One image of a disk's backing chain, as the domain XML states it. */
export interface ChainImageXml {
  /** libvirt's `index` attribute, which `vda[N]` refers to; null where libvirt gives none. */
  index: number | null;
  source: ImageSource;
  /** Image format (qcow2, raw…), or null when libvirt does not say. */
  format: string | null;
}

export interface DiskXml {
  /** The guest-side name: `vda`, `sdb`, `hdc`. */
  target: string;
  bus: string | null;
  /** disk, cdrom, floppy, lun. */
  device: string;
  readOnly: boolean;
  /** From the top (the image the guest writes to) down to the base. Empty for an empty cdrom. */
  chain: ChainImageXml[];
  /**
   * True when the XML states the whole chain: libvirt ends a probed chain with an
   * empty `<backingStore/>`. False when the chain below the last image is not known
   * (inactive definitions say nothing about backing files).
   */
  chainComplete: boolean;
  /**
   * The destination of a block copy or active commit libvirt runs on the disk
   * (`<mirror>`): the image the disk switches to at the pivot. Null when none.
   */
  mirror: DiskMirrorXml | null;
}

export interface DiskMirrorXml {
  /** libvirt's job name: copy, active-commit. */
  job: string | null;
  /** libvirt's ready state: yes, no, abort, pivot. */
  ready: string | null;
  source: ImageSource;
  format: string | null;
}

export interface InterfaceXml {
  /** network, bridge, user, direct, ethernet… */
  type: string;
  mac: string | null;
  model: string | null;
  /** The network, bridge or device it attaches to. */
  source: string | null;
  /** The host-side device (`vnet0`) of a running domain. */
  target: string | null;
}

export interface DomainXml {
  type: string;
  /** The runtime id of a running domain (`<domain id='N'>`); null in an inactive one's XML. */
  id: number | null;
  name: string;
  uuid: string;
  /** Maximum memory in bytes (`<memory>`). */
  memoryBytes: number | null;
  /** Current memory in bytes (`<currentMemory>`). */
  currentMemoryBytes: number | null;
  vcpus: number | null;
  disks: DiskXml[];
  interfaces: InterfaceXml[];
}

export function parseDomainXml(xml: string): DomainXml {
  const root = parseXml(xml);
  if (root.tagName !== 'domain') throw new Error(`expected <domain>, got <${root.tagName}>`);
  const devices = child(root, 'devices');
  return {
    type: attr(root, 'type') ?? 'unknown',
    id: intAttr(root, 'id'),
    name: text(child(root, 'name')) ?? '',
    uuid: text(child(root, 'uuid')) ?? '',
    memoryBytes: bytesOf(child(root, 'memory'), 'KiB'),
    currentMemoryBytes: bytesOf(child(root, 'currentMemory'), 'KiB'),
    vcpus: intText(child(root, 'vcpu')),
    disks: devices ? children(devices, 'disk').map(parseDisk) : [],
    interfaces: devices ? children(devices, 'interface').map(parseInterface) : [],
  };
}

function parseDisk(disk: Element): DiskXml {
  const chain: ChainImageXml[] = [];
  const type = attr(disk, 'type') ?? 'file';
  const top = child(disk, 'source');
  let chainComplete = false;
  if (top && hasSource(type, top)) {
    chain.push({
      index: intAttr(top, 'index'),
      source: parseSource(type, top),
      format: attr(child(disk, 'driver'), 'type'),
    });
    // Each <backingStore type=…> holds the next image; an empty <backingStore/> ends the chain.
    for (let bs = child(disk, 'backingStore'); ; bs = child(bs, 'backingStore')) {
      if (!bs) break;
      const bsType = attr(bs, 'type');
      if (bsType === null) {
        chainComplete = true;
        break;
      }
      const source = child(bs, 'source');
      chain.push({
        index: intAttr(bs, 'index'),
        source: source ? parseSource(bsType, source) : emptySource(bsType),
        format: attr(child(bs, 'format'), 'type'),
      });
    }
  } else {
    chainComplete = true;
  }
  return {
    target: attr(child(disk, 'target'), 'dev') ?? '',
    bus: attr(child(disk, 'target'), 'bus'),
    device: attr(disk, 'device') ?? 'disk',
    readOnly: child(disk, 'readonly') !== null,
    chain,
    chainComplete,
    mirror: parseMirror(child(disk, 'mirror')),
  };
}

function parseMirror(mirror: Element | null): DiskMirrorXml | null {
  if (!mirror) return null;
  const type = attr(mirror, 'type') ?? 'file';
  const source = child(mirror, 'source');
  return {
    job: attr(mirror, 'job'),
    ready: attr(mirror, 'ready'),
    // libvirt writes <source>; old XML had only file= and format= attributes on <mirror>.
    source: source
      ? parseSource(type, source)
      : { ...emptySource(type), path: attr(mirror, 'file') },
    format: attr(child(mirror, 'format'), 'type') ?? attr(mirror, 'format'),
  };
}

/** A `<source>` element that names an image (an empty cdrom has a bare or no `<source>`). */
function hasSource(type: string, source: Element): boolean {
  const s = parseSource(type, source);
  return s.path !== null || s.network !== null || s.volume !== null;
}

function emptySource(type: string): ImageSource {
  return { type, path: null, network: null, volume: null };
}

function parseSource(type: string, source: Element): ImageSource {
  switch (type) {
    case 'file':
      return { ...emptySource(type), path: attr(source, 'file') };
    case 'block':
      return { ...emptySource(type), path: attr(source, 'dev') };
    case 'dir':
      return { ...emptySource(type), path: attr(source, 'dir') };
    case 'network': {
      const protocol = attr(source, 'protocol');
      if (protocol === null) return emptySource(type);
      const hosts = children(source, 'host').map((h) => {
        const name = attr(h, 'name') ?? attr(h, 'socket') ?? '';
        const port = attr(h, 'port');
        return port ? `${name}:${port}` : name;
      });
      return { ...emptySource(type), network: { protocol, name: attr(source, 'name'), hosts } };
    }
    case 'volume': {
      const pool = attr(source, 'pool');
      const volume = attr(source, 'volume');
      return pool && volume
        ? { ...emptySource(type), volume: { pool, volume } }
        : emptySource(type);
    }
    default:
      return {
        ...emptySource(type),
        path: attr(source, 'file') ?? attr(source, 'dev') ?? attr(source, 'path'),
      };
  }
}

function parseInterface(iface: Element): InterfaceXml {
  const type = attr(iface, 'type') ?? 'unknown';
  const source = child(iface, 'source');
  return {
    type,
    mac: attr(child(iface, 'mac'), 'address'),
    model: attr(child(iface, 'model'), 'type'),
    source: attr(source, 'network') ?? attr(source, 'bridge') ?? attr(source, 'dev') ?? null,
    target: attr(path(iface, 'target'), 'dev'),
  };
}
