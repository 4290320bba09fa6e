import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import {
  ConnectListAllDomainsFlags as ListFlags,
  DomainEventId,
  DomainEventLifecycle,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { compareKeys } from '#src/common/pagination.js';
import type { HostRecord } from '#modules/hosts/host-registry.service.js';

/** Longest a listing trusts the cached domain list, events or not. */
export const LIST_MAX_AGE_MS = 5000;
/**
 * Longest a listing reuses a domain's vCPUs, memory and autostart flag, which
 * change without a lifecycle event. State and membership follow the events.
 */
export const FACTS_MAX_AGE_MS = 2000;

export interface CachedFacts {
  state: number;
  reason: number;
  vcpus: number;
  memoryKiB: number;
  maxMemoryKiB: number;
  at: number;
}

/** What one host's listings may reuse: the domains, which are persistent, which autostart, and their facts. */
export interface InventoryView {
  /** Sorted by name. */
  domains: readonly RemoteDomain[];
  persistent: ReadonlySet<string>;
  autostart: ReadonlySet<string>;
  facts: Map<string, CachedFacts>;
  /** Cache facts only while this is still the host's generation (no event came meanwhile). */
  generation: number;
}

/** lifecycle events after which the list itself (members, ids, persistence) must be read again */
const MEMBERSHIP_EVENTS = new Set<number>([
  DomainEventLifecycle.DEFINED,
  DomainEventLifecycle.UNDEFINED,
  DomainEventLifecycle.STARTED,
  DomainEventLifecycle.STOPPED,
  DomainEventLifecycle.CRASHED,
]);

class HostInventory {
  list: { domains: RemoteDomain[]; persistent: Set<string>; at: number } | null = null;
  autostart: { set: Set<string>; at: number } | null = null;
  facts = new Map<string, CachedFacts>();
  generation = 0;
  watcher: LibvirtClient | null = null;
  watching: Promise<void> | null = null;
  closed = false;

  constructor(readonly uri: string) {}

  invalidate(): void {
    this.generation++;
    this.list = null;
    this.autostart = null;
    this.facts.clear();
  }
}

export function uuidKey(dom: RemoteDomain): string {
  return dom.uuid.toString('hex');
}

/**
 * The api role's cache of each host's domain list, kept true by libvirt's
 * lifecycle events: one read-only connection per host registers for them,
 * and any event that changes which domains exist (or their ids) drops the
 * list, any event about a domain drops its facts. So a page of a listing
 * costs no libvirt call when nothing changed, instead of a list of every
 * domain on the host. When the watching connection is lost, everything
 * cached for that host is dropped. Views of one domain, its XML and its disks
 * never come from here: they are always read anew.
 */
@Injectable()
export class DomainInventory implements OnApplicationShutdown {
  private readonly logger = new Logger(DomainInventory.name);
  private readonly hosts = new Map<string, HostInventory>();

  async view(host: HostRecord, client: LibvirtClient): Promise<InventoryView> {
    const inv = this.inventory(host);
    await this.watch(host.name, inv, client);
    const generation = inv.generation;
    const now = Date.now();
    const [list, autostart] = await Promise.all([
      inv.list && now - inv.list.at < LIST_MAX_AGE_MS ? inv.list : this.readList(client),
      inv.autostart && now - inv.autostart.at < FACTS_MAX_AGE_MS
        ? inv.autostart
        : client.rpc
            .connectListAllDomains({ needResults: 1, flags: ListFlags.AUTOSTART })
            .then(({ domains }) => ({ set: new Set(domains.map(uuidKey)), at: now })),
    ]);
    // Keep what was read only if no event arrived while reading it.
    if (inv.generation === generation) {
      inv.list = list;
      inv.autostart = autostart;
    }
    return {
      domains: list.domains,
      persistent: list.persistent,
      autostart: autostart.set,
      facts: inv.generation === generation ? inv.facts : new Map(),
      generation,
    };
  }

  /** Keeps facts read for a listing, unless an event made them suspect while they were read. */
  remember(host: HostRecord, generation: number, key: string, facts: CachedFacts): void {
    const inv = this.hosts.get(host.name);
    if (inv && inv.generation === generation) inv.facts.set(key, facts);
  }

  async onApplicationShutdown(): Promise<void> {
    for (const inv of this.hosts.values()) inv.closed = true;
    this.hosts.clear();
  }

  private inventory(host: HostRecord): HostInventory {
    let inv = this.hosts.get(host.name);
    if (!inv || inv.uri !== host.uri) {
      inv = new HostInventory(host.uri);
      this.hosts.set(host.name, inv);
    }
    return inv;
  }

  private async readList(
    client: LibvirtClient,
  ): Promise<{ domains: RemoteDomain[]; persistent: Set<string>; at: number }> {
    const at = Date.now();
    const [all, persistent] = await Promise.all([
      client.rpc.connectListAllDomains({ needResults: 1, flags: 0 }),
      client.rpc.connectListAllDomains({ needResults: 1, flags: ListFlags.PERSISTENT }),
    ]);
    return {
      domains: all.domains.sort((a, b) => compareKeys(a.name, b.name)),
      persistent: new Set(persistent.domains.map(uuidKey)),
      at,
    };
  }

  /** Registers for lifecycle events on `client` unless this host is already watched. */
  private async watch(name: string, inv: HostInventory, client: LibvirtClient): Promise<void> {
    if (inv.watcher && !inv.watcher.closed) return;
    if (inv.watching) return inv.watching;
    inv.watching = (async () => {
      const callbackId = await client.domainEventRegisterAny(DomainEventId.LIFECYCLE);
      inv.invalidate();
      inv.watcher = client;
      client.on('domainEvent', (e) => {
        if (e.kind !== 'lifecycle' || e.callbackId !== callbackId || inv.closed) return;
        inv.facts.delete(uuidKey(e.dom));
        if (MEMBERSHIP_EVENTS.has(e.event)) {
          inv.generation++;
          inv.list = null;
        } else {
          inv.generation++;
        }
      });
      client.once('close', () => {
        if (inv.watcher !== client) return;
        inv.watcher = null;
        inv.invalidate();
        if (!inv.closed)
          this.logger.warn(`host '${name}': lost the connection watching domain events`);
      });
    })().finally(() => {
      inv.watching = null;
    });
    return inv.watching;
  }
}
