/** Storage pool and volume XML for new pools and volumes, built with the XML toolkit. */
import { buildXml } from './xml.js';

export interface DirPoolDefinition {
  name: string;
  uuid: string;
  /** The directory that holds the pool's volumes. */
  path: string;
}

/** A `dir` pool: a directory of image files. */
export function buildDirPoolXml(def: DirPoolDefinition): string {
  return buildXml({
    name: 'pool',
    attrs: { type: 'dir' },
    children: [
      { name: 'name', text: def.name },
      { name: 'uuid', text: def.uuid },
      { name: 'target', children: [{ name: 'path', text: def.path }] },
    ],
  });
}

export interface VolumeDefinition {
  name: string;
  format: 'raw' | 'qcow2';
  /** Bytes; null with a backing image: the backing image's size. */
  capacityBytes: number | null;
  backing: { path: string; format: string } | null;
}

/** A file volume, sparse (allocation 0), optionally a qcow2 overlay of a backing image. */
export function buildVolumeXml(def: VolumeDefinition): string {
  return buildXml({
    name: 'volume',
    children: [
      { name: 'name', text: def.name },
      def.capacityBytes !== null && {
        name: 'capacity',
        attrs: { unit: 'bytes' },
        text: def.capacityBytes,
      },
      { name: 'allocation', attrs: { unit: 'bytes' }, text: 0 },
      { name: 'target', children: [{ name: 'format', attrs: { type: def.format } }] },
      def.backing !== null && {
        name: 'backingStore',
        children: [
          { name: 'path', text: def.backing.path },
          { name: 'format', attrs: { type: def.backing.format } },
        ],
      },
    ],
  });
}
