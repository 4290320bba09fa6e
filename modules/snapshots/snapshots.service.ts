import { Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { requireDomain } from '#src/common/domain-ref.js';
import { compareKeys } from '#src/common/pagination.js';
import { HostConnections } from '#src/hosts/host-connections.js';
import { HostRegistry } from '#src/hosts/host-registry.js';
import { parseSnapshotXml, type SnapshotXml } from '#src/xml/snapshot-xml.js';
import type { SnapshotModel } from './models/snapshot.model.js';

/** The read side of snapshots: a domain's snapshots as libvirt's metadata has them. */
@Injectable()
export class SnapshotsService {
  constructor(
    private readonly registry: HostRegistry,
    private readonly connections: HostConnections,
  ) {}

  /** The snapshots of a domain (by name or UUID), oldest first. */
  async list(caller: Caller, hostName: string, ref: string): Promise<SnapshotModel[]> {
    const host = await this.registry.getFor(caller, hostName);
    return this.connections.withClient(host, async (c) => {
      const dom = await requireDomain(c, ref, { caller, host: host.name });
      const { snapshots } = await c.rpc.domainListAllSnapshots({ dom, needResults: 1, flags: 0 });
      const xmls = await Promise.all(
        snapshots.map((snap) => c.rpc.domainSnapshotGetXmlDesc({ snap, flags: 0 })),
      );
      return xmls
        .map(({ xml }) => snapshotView(parseSnapshotXml(xml)))
        .sort(
          (a, b) =>
            (a.createdAt ?? '').localeCompare(b.createdAt ?? '') || compareKeys(a.name, b.name),
        );
    });
  }
}

/** A snapshot as the API shows it, from libvirt's snapshot XML. */
export function snapshotView(s: SnapshotXml): SnapshotModel {
  return {
    name: s.name,
    description: s.description,
    state: s.state,
    createdAt: s.creationTime === null ? null : new Date(s.creationTime * 1000).toISOString(),
    parent: s.parent,
    memory: s.memory,
    disks: s.disks.map((d) => ({ ...d })),
  };
}
