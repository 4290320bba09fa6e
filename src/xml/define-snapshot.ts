/** Snapshot XML for an external disk-only snapshot, built with the XML toolkit. */
import { buildXml } from './xml.js';

export interface DiskSnapshotDefinition {
  name: string;
  description: string | null;
  /** Every disk of the domain: the ones with an overlay get one; the others are left out (`snapshot='no'`). */
  disks: { target: string; overlay: string | null }[];
}

/**
 * `<domainsnapshot>` asking for a new qcow2 overlay file on each disk that has
 * one in `def.disks`, and for no snapshot of the others.
 */
export function buildDiskSnapshotXml(def: DiskSnapshotDefinition): string {
  return buildXml({
    name: 'domainsnapshot',
    children: [
      { name: 'name', text: def.name },
      def.description !== null && { name: 'description', text: def.description },
      { name: 'memory', attrs: { snapshot: 'no' } },
      {
        name: 'disks',
        children: def.disks.map((d) =>
          d.overlay === null
            ? { name: 'disk', attrs: { name: d.target, snapshot: 'no' } }
            : {
                name: 'disk',
                attrs: { name: d.target, snapshot: 'external', type: 'file' },
                children: [
                  { name: 'driver', attrs: { type: 'qcow2' } },
                  { name: 'source', attrs: { file: d.overlay } },
                ],
              },
        ),
      },
    ],
  });
}
