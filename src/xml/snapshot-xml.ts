/** libvirt domain snapshot XML (`<domainsnapshot>`), parsed into what a snapshot view shows. */
import { attr, child, children, intText, parseXml, text } from './xml.js';

export interface SnapshotDiskXml {
  /** The disk's target (`vda`). */
  target: string;
  /** external, internal, manual or no. */
  snapshot: string;
  /** For external snapshots: the overlay file created for it. */
  path: string | null;
  format: string | null;
}

export interface SnapshotXml {
  name: string;
  description: string | null;
  /** The domain's state when the snapshot was taken (running, shutoff, disk-snapshot…). */
  state: string | null;
  /** Seconds since the epoch. */
  creationTime: number | null;
  parent: string | null;
  /** internal, external or no. */
  memory: string | null;
  disks: SnapshotDiskXml[];
}

export function parseSnapshotXml(xml: string): SnapshotXml {
  const root = parseXml(xml);
  const disks = child(root, 'disks');
  return {
    name: text(child(root, 'name')) ?? '',
    description: text(child(root, 'description')),
    state: text(child(root, 'state')),
    creationTime: intText(child(root, 'creationTime')),
    parent: text(child(child(root, 'parent'), 'name')),
    memory: attr(child(root, 'memory'), 'snapshot'),
    disks: disks
      ? children(disks, 'disk').map((d) => {
          const source = child(d, 'source');
          return {
            target: attr(d, 'name') ?? '',
            snapshot: attr(d, 'snapshot') ?? 'no',
            path: attr(source, 'file') ?? attr(source, 'dev') ?? null,
            format: attr(child(d, 'driver'), 'type'),
          };
        })
      : [],
  };
}
