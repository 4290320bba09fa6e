/**
 * libvirt storage pool XML (virStoragePoolGetXMLDesc) and storage volume XML
 * (virStorageVolGetXMLDesc), parsed once into typed models. Sizes are bytes.
 */
import type { Element } from '@xmldom/xmldom';
import { attr, bytesOf, child, children, intAttr, parseXml, path, text } from './xml.js';

/** One host a network pool's source names (NFS server, iSCSI portal, Ceph monitor…). */
export interface StoragePoolSourceHostXml {
  name: string;
  port: number | null;
}

/** Where a pool's storage comes from; which parts are set depends on the pool type. */
export interface StoragePoolSourceXml {
  hosts: StoragePoolSourceHostXml[];
  /** Device paths: disks of a disk pool, physical volumes of a logical pool, an iSCSI IQN. */
  devices: string[];
  /** The exported directory of a netfs pool (`<dir path=…>`). */
  dir: string | null;
  /** A named source: the volume group of a logical pool, the Ceph pool of an rbd pool. */
  name: string | null;
  /** nfs, cifs, gpt, lvm2…; null when the XML states none. */
  format: string | null;
}

export interface StoragePoolXml {
  /** dir, fs, netfs, logical, disk, iscsi, rbd… */
  type: string;
  name: string;
  uuid: string;
  /** Where the pool's volumes appear on the host (`<target><path>`); null for pools without one (rbd). */
  path: string | null;
  source: StoragePoolSourceXml;
  capacityBytes: number | null;
  allocationBytes: number | null;
  availableBytes: number | null;
}

/** The image a volume is backed by (qcow2 overlays). */
export interface BackingStoreXml {
  path: string | null;
  format: string | null;
}

export interface StorageVolumeXml {
  /** file, block, dir, network, netdir, ploop. */
  type: string;
  name: string;
  key: string | null;
  /** The volume's path on the host (`<target><path>`). */
  path: string | null;
  /** qcow2, raw, iso…; null when the XML states none. */
  format: string | null;
  capacityBytes: number | null;
  allocationBytes: number | null;
  /** The size the volume occupies on its device (the file's size); libvirt omits it for some drivers. */
  physicalBytes: number | null;
  backingStore: BackingStoreXml | null;
}

export function parseStoragePoolXml(xml: string): StoragePoolXml {
  const root = parseXml(xml);
  if (root.tagName !== 'pool') throw new Error(`expected <pool>, got <${root.tagName}>`);
  return {
    type: attr(root, 'type') ?? 'unknown',
    name: text(child(root, 'name')) ?? '',
    uuid: text(child(root, 'uuid')) ?? '',
    path: nonEmpty(text(path(root, 'target', 'path'))),
    source: poolSource(child(root, 'source')),
    capacityBytes: bytesOf(child(root, 'capacity'), 'bytes'),
    allocationBytes: bytesOf(child(root, 'allocation'), 'bytes'),
    availableBytes: bytesOf(child(root, 'available'), 'bytes'),
  };
}

export function parseStorageVolumeXml(xml: string): StorageVolumeXml {
  const root = parseXml(xml);
  if (root.tagName !== 'volume') throw new Error(`expected <volume>, got <${root.tagName}>`);
  const target = child(root, 'target');
  const backing = child(root, 'backingStore');
  return {
    type: attr(root, 'type') ?? 'file',
    name: text(child(root, 'name')) ?? '',
    key: nonEmpty(text(child(root, 'key'))),
    path: nonEmpty(text(child(target, 'path'))),
    format: attr(child(target, 'format'), 'type'),
    capacityBytes: bytesOf(child(root, 'capacity'), 'bytes'),
    allocationBytes: bytesOf(child(root, 'allocation'), 'bytes'),
    physicalBytes: bytesOf(child(root, 'physical'), 'bytes'),
    backingStore: backing
      ? {
          path: nonEmpty(text(child(backing, 'path'))),
          format: attr(child(backing, 'format'), 'type'),
        }
      : null,
  };
}

function poolSource(source: Element | null): StoragePoolSourceXml {
  return {
    hosts: (source ? children(source, 'host') : []).flatMap((h) => {
      const name = attr(h, 'name');
      return name ? [{ name, port: intAttr(h, 'port') }] : [];
    }),
    devices: (source ? children(source, 'device') : []).flatMap((d) => {
      const p = attr(d, 'path');
      return p ? [p] : [];
    }),
    dir: attr(child(source, 'dir'), 'path'),
    name: nonEmpty(text(child(source, 'name'))),
    format: attr(child(source, 'format'), 'type'),
  };
}

function nonEmpty(s: string | null): string | null {
  return s === null || s === '' ? null : s;
}
