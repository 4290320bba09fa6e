import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { compareKeys } from '#src/common/pagination.js';
import { HostEvents, type HostEvent, type HostEventSubscription } from '#src/hosts/host-events.js';
import type { HostRecord } from '#src/hosts/host-registry.js';
import {
  ConnectListAllDomainsFlags as ListFlags,
  DomainEventLifecycle,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';

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
  events: HostEventSubscription | null = null;

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
 * lifecycle events, heard from the host's event source (HostEvents): any
 * event that changes which domains exist (or their ids) drops the list, any
 * event about a domain drops its facts. So a page of a listing costs no
 * libvirt call when nothing changed, instead of a list of every domain on
 * the host. Nothing is cached while the host's events are not heard (its
 * event connection is not up, or was lost: then everything cached for that
 * host is dropped). Views of one domain, its XML and its disks never come
 * from here: they are always read anew.
 */
@Injectable()
export class DomainInventory implements OnApplicationShutdown {
  private readonly hosts = new Map<string, HostInventory>();

  constructor(private readonly events: HostEvents) {}

  async view(host: HostRecord, client: LibvirtClient): Promise<InventoryView> {
    const inv = this.inventory(host);
    // Listen first: an event while the list is read makes what was read suspect.
    const watched = await this.events.ready(host).then(
      () => inv.events?.connected === true,
      () => false,
    );
    const generation = inv.generation;
    const now = Date.now();
    const [list, autostart] = await Promise.all([
      watched && inv.list && now - inv.list.at < LIST_MAX_AGE_MS ? inv.list : this.readList(client),
      watched && inv.autostart && now - inv.autostart.at < FACTS_MAX_AGE_MS
        ? inv.autostart
        : client.rpc
            .connectListAllDomains({ needResults: 1, flags: ListFlags.AUTOSTART })
            .then(({ domains }) => ({ set: new Set(domains.map(uuidKey)), at: now })),
    ]);
    // Keep what was read only if the host is watched and no event arrived while reading it.
    const keep = watched && inv.events?.connected === true && inv.generation === generation;
    if (keep) {
      inv.list = list;
      inv.autostart = autostart;
    }
    return {
      domains: list.domains,
      persistent: list.persistent,
      autostart: autostart.set,
      facts: keep ? inv.facts : new Map(),
      generation: keep ? generation : -1,
    };
  }

  /** Keeps facts read for a listing, unless an event made them suspect while they were read. */
  remember(host: HostRecord, generation: number, key: string, facts: CachedFacts): void {
    const inv = this.hosts.get(host.name);
    if (inv && inv.generation === generation) inv.facts.set(key, facts);
  }

  onApplicationShutdown(): void {
    for (const inv of this.hosts.values()) inv.events?.close();
    this.hosts.clear();
  }

  private inventory(host: HostRecord): HostInventory {
    let inv = this.hosts.get(host.name);
    // A host unregistered (and maybe registered again) has a new event source.
    if (!inv || inv.uri !== host.uri || inv.events?.ended !== false) {
      inv?.events?.close();
      const fresh = new HostInventory(host.uri);
      fresh.events = this.events.subscribe(host, (e) => this.onEvent(fresh, e));
      this.hosts.set(host.name, fresh);
      inv = fresh;
    }
    return inv;
  }

  private onEvent(inv: HostInventory, e: HostEvent): void {
    if (e.kind !== 'domain') {
      // The stream (re)started or stopped: what was cached may have missed events.
      inv.invalidate();
      return;
    }
    if (e.event.kind !== 'lifecycle') return;
    inv.facts.delete(uuidKey(e.event.dom));
    inv.generation++;
    if (MEMBERSHIP_EVENTS.has(e.event.event)) inv.list = null;
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
}
