import { Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { domainMatcher, isUnscoped } from '#src/common/auth/scope.js';
import { domainNotFound, requireDomain } from '#src/common/domain-ref.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { compareKeys, paginate, type Page, type Scoped } from '#src/common/pagination.js';
import { HostConnections } from '#src/hosts/host-connections.js';
import { HostRegistry, type HostRecord } from '#src/hosts/host-registry.js';
import {
  ConnectListAllDomainsFlags as ListFlags,
  DomainBlockJobInfoFlags,
  DomainStatsTypes,
  DomainXmlFlags,
  ErrorNumber,
  GetAllDomainStatsFlags,
  isLibvirtError,
  isNoDomain,
  uuidString,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { parseDomainXml, type DomainXml } from '#src/xml/domain-xml.js';
import { BlockJobLedger } from '#jobs/block-job-ledger.js';
import { JobStore } from '#jobs/job-store.js';
import { TERMINAL_STATES } from '#jobs/job-types.js';
import { DomainInventory, FACTS_MAX_AGE_MS, uuidKey } from './domain-inventory.service.js';
import type { DomainStateName } from './domain-state.js';
import {
  blockJobView,
  blockSizes,
  disksView,
  interfacesView,
  statsMap,
  summaryView,
  type BlockSizes,
  type DomainFacts,
} from './domain-views.js';
import type {
  DiskBlockJobModel,
  DiskModel,
  DomainModel,
  DomainSummaryModel,
  InterfaceModel,
} from './models/domain.model.js';

export interface DomainFilter {
  state?: DomainStateName;
  namePrefix?: string;
  persistent?: boolean;
}

export interface DomainPage extends Page<DomainSummaryModel> {
  /** How many domains match the filter, over all pages. */
  totalCount: number;
}

const STATE_FLAGS: Partial<Record<DomainStateName, number>> = {
  running: ListFlags.RUNNING,
  paused: ListFlags.PAUSED,
  shutoff: ListFlags.SHUTOFF,
};

/**
 * The read side of domains: listings, a domain's view, its XML, disks with
 * their backing chains as libvirt reports them at the time of the request,
 * and snapshots. Every read goes to the host's pooled read-only connections;
 * listings use libvirt's bulk calls so a page costs a fixed number of round
 * trips whatever its size.
 */
@Injectable()
export class DomainsService {
  /** Connections whose driver has no block jobs (the test driver): not asked again. */
  private readonly withoutBlockJobs = new WeakSet<LibvirtClient>();

  constructor(
    private readonly registry: HostRegistry,
    private readonly connections: HostConnections,
    private readonly inventory: DomainInventory,
    private readonly ledger: BlockJobLedger,
    private readonly store: JobStore,
  ) {}

  async list(
    caller: Caller,
    hostName: string,
    filter: DomainFilter,
    limit: number,
    cursor: string | undefined,
  ): Promise<Scoped<DomainPage>> {
    const host = await this.registry.getFor(caller, hostName);
    const visible = domainMatcher(caller, host.name);
    const page = await this.connections.withClient(host, (c) =>
      filter.state
        ? this.listByState(c, filter, visible, limit, cursor)
        : this.listFromInventory(host, c, filter, visible, limit, cursor),
    );
    return { ...page, scopeFiltered: !isUnscoped(caller) };
  }

  /**
   * Listings without a state filter: the domain list comes from the inventory
   * (kept true by lifecycle events), and only the facts of the page's domains
   * that changed or aged are read, with one bulk call.
   */
  private async listFromInventory(
    host: HostRecord,
    c: LibvirtClient,
    filter: DomainFilter,
    visible: (name: string) => boolean,
    limit: number,
    cursor: string | undefined,
  ): Promise<DomainPage> {
    const view = await this.inventory.view(host, c);
    const prefix = filter.namePrefix ?? '';
    const matching = view.domains.filter(
      (d) =>
        d.name.startsWith(prefix) &&
        visible(d.name) &&
        (filter.persistent === undefined || view.persistent.has(uuidKey(d)) === filter.persistent),
    );
    const page = paginate(matching, (d) => d.name, limit, cursor);
    const flagsOf = (d: RemoteDomain): { autostart: boolean; persistent: boolean } => ({
      autostart: view.autostart.has(uuidKey(d)),
      persistent: view.persistent.has(uuidKey(d)),
    });
    const now = Date.now();
    const fresh = new Map<string, DomainFacts>();
    const stale: RemoteDomain[] = [];
    for (const dom of page.items) {
      const cached = view.facts.get(uuidKey(dom));
      if (cached && now - cached.at < FACTS_MAX_AGE_MS) {
        fresh.set(uuidKey(dom), { dom, ...cached, ...flagsOf(dom) });
      } else {
        stale.push(dom);
      }
    }
    for (const f of await this.facts(c, stale, flagsOf)) {
      fresh.set(uuidKey(f.dom), f);
      if (f.vcpus !== null && f.memoryKiB !== null && f.maxMemoryKiB !== null) {
        this.inventory.remember(host, view.generation, uuidKey(f.dom), {
          state: f.state,
          reason: f.reason,
          vcpus: f.vcpus,
          memoryKiB: f.memoryKiB,
          maxMemoryKiB: f.maxMemoryKiB,
          at: now,
        });
      }
    }
    const items = page.items.flatMap((d) => {
      const f = fresh.get(uuidKey(d));
      return f ? [summaryView(f)] : [];
    });
    return { items, nextCursor: page.nextCursor, totalCount: matching.length };
  }

  /** Listings by state read everything anew, with libvirt's list flags where it has them. */
  private async listByState(
    c: LibvirtClient,
    filter: DomainFilter,
    visible: (name: string) => boolean,
    limit: number,
    cursor: string | undefined,
  ): Promise<DomainPage> {
    let flags = 0;
    if (filter.persistent !== undefined)
      flags |= filter.persistent ? ListFlags.PERSISTENT : ListFlags.TRANSIENT;
    const stateFlag = filter.state ? STATE_FLAGS[filter.state] : undefined;
    // The rarer states share libvirt's OTHER flag; the exact state is checked per domain below.
    flags |= stateFlag ?? ListFlags.OTHER;
    const [all, autostart, persistent] = await Promise.all([
      c.rpc.connectListAllDomains({ needResults: 1, flags }),
      c.rpc.connectListAllDomains({ needResults: 1, flags: flags | ListFlags.AUTOSTART }),
      c.rpc.connectListAllDomains({ needResults: 1, flags: flags | ListFlags.PERSISTENT }),
    ]);
    const prefix = filter.namePrefix ?? '';
    const matching = all.domains
      .filter((d) => d.name.startsWith(prefix) && visible(d.name))
      .sort((a, b) => compareKeys(a.name, b.name));
    const page = paginate(matching, (d) => d.name, limit, cursor);
    const autostartSet = uuidSet(autostart.domains);
    const persistentSet = uuidSet(persistent.domains);
    let facts = await this.facts(c, page.items, (d) => ({
      autostart: autostartSet.has(uuidKey(d)),
      persistent: persistentSet.has(uuidKey(d)),
    }));
    // libvirt has no list flag of their own for the rarer states: a page may then come out
    // shorter than `limit` (totalCount counts all domains in those states).
    if (stateFlag === undefined) facts = facts.filter((f) => summaryView(f).state === filter.state);
    return {
      items: facts.map(summaryView),
      nextCursor: page.nextCursor,
      totalCount: matching.length,
    };
  }

  /** A domain by name or UUID, with its disks and interfaces. */
  async get(caller: Caller, hostName: string, ref: string): Promise<DomainModel> {
    const host = await this.registry.getFor(caller, hostName);
    return this.connections.withClient(host, async (c) => {
      const dom = await requireDomain(c, ref, { caller, host: host.name });
      const [[facts], details] = await Promise.all([
        this.factsOne(c, dom),
        this.details(c, host.name, [dom]),
      ]);
      const d = details[0]!;
      if (!facts) throw domainNotFound(ref);
      return { ...summaryView(facts), disks: d.disks, interfaces: d.interfaces };
    });
  }

  /** The live XML, or the persistent definition with `inactive`. */
  async xml(caller: Caller, hostName: string, ref: string, inactive: boolean): Promise<string> {
    const host = await this.registry.getFor(caller, hostName);
    return this.connections.withClient(host, async (c) => {
      const dom = await requireDomain(c, ref, { caller, host: host.name });
      if (inactive && (await c.rpc.domainIsPersistent({ dom })).persistent !== 1) {
        throw new AppError(
          ErrorCode.NOT_FOUND,
          `domain '${dom.name}' is transient: it has no persistent definition`,
        );
      }
      return (await c.rpc.domainGetXmlDesc({ dom, flags: inactive ? DomainXmlFlags.INACTIVE : 0 }))
        .xml;
    });
  }

  async disks(caller: Caller, hostName: string, ref: string): Promise<DiskModel[]> {
    const host = await this.registry.getFor(caller, hostName);
    return this.connections.withClient(
      host,
      async (c) =>
        (
          await this.details(c, host.name, [
            await requireDomain(c, ref, { caller, host: host.name }),
          ])
        )[0]!.disks,
    );
  }

  async disk(caller: Caller, hostName: string, ref: string, target: string): Promise<DiskModel> {
    const disk = (await this.disks(caller, hostName, ref)).find((d) => d.target === target);
    if (!disk) throw new AppError(ErrorCode.NOT_FOUND, `domain '${ref}' has no disk '${target}'`);
    return disk;
  }

  /**
   * Disks and interfaces of many domains of one host at once, for batched
   * readers (GraphQL): each domain's XML is read once, and the block sizes of
   * all of them come from a single bulk call.
   */
  async detailsOf(
    host: HostRecord,
    doms: readonly RemoteDomain[],
  ): Promise<{ disks: DiskModel[]; interfaces: InterfaceModel[] }[]> {
    return this.connections.withClient(host, (c) => this.details(c, host.name, doms));
  }

  private async factsOne(c: LibvirtClient, dom: RemoteDomain): Promise<DomainFacts[]> {
    const [autostart, persistent] = await Promise.all([
      c.rpc.domainGetAutostart({ dom }),
      c.rpc.domainIsPersistent({ dom }),
    ]);
    return this.facts(c, [dom], () => ({
      autostart: autostart.autostart === 1,
      persistent: persistent.persistent === 1,
    }));
  }

  /**
   * State, vCPUs and memory of `doms` from one bulk statistics call. Drivers
   * that leave out balloon or vCPU statistics (the test driver) are asked per
   * domain, in parallel. Domains that vanished meanwhile are left out.
   */
  private async facts(
    c: LibvirtClient,
    doms: readonly RemoteDomain[],
    flagsOf: (d: RemoteDomain) => { autostart: boolean; persistent: boolean },
  ): Promise<DomainFacts[]> {
    if (doms.length === 0) return [];
    let records: { dom: RemoteDomain; stats: Map<string, number | string | boolean> }[];
    try {
      const { retStats } = await c.rpc.connectGetAllDomainStats({
        doms: [...doms],
        stats: DomainStatsTypes.STATE | DomainStatsTypes.BALLOON | DomainStatsTypes.VCPU,
        flags: 0,
      });
      records = retStats.map((r) => ({ dom: r.dom, stats: statsMap(r.params) }));
    } catch (err) {
      if (!isNoDomain(err)) throw err;
      records = doms.map((dom) => ({ dom, stats: new Map() }));
    }
    const out = await Promise.all(
      records.map(async ({ dom, stats }): Promise<DomainFacts | null> => {
        const num = (k: string): number | null => {
          const v = stats.get(k);
          return typeof v === 'number' ? v : null;
        };
        let state = num('state.state');
        let reason = num('state.reason') ?? 0;
        let vcpus = num('vcpu.current');
        let memory = num('balloon.current');
        let maxMemory = num('balloon.maximum');
        if (state === null || vcpus === null || memory === null || maxMemory === null) {
          try {
            const [info, st] = await Promise.all([
              c.rpc.domainGetInfo({ dom }),
              state === null ? c.rpc.domainGetState({ dom, flags: 0 }) : null,
            ]);
            if (st) [state, reason] = [st.state, st.reason];
            vcpus ??= info.nrVirtCpu;
            memory ??= Number(info.memory);
            maxMemory ??= Number(info.maxMem);
          } catch (err) {
            if (isNoDomain(err)) return null;
            throw err;
          }
        }
        return {
          dom,
          state: state ?? 0,
          reason,
          vcpus,
          memoryKiB: memory,
          maxMemoryKiB: maxMemory,
          ...flagsOf(dom),
        };
      }),
    );
    return out.filter((f): f is DomainFacts => f !== null);
  }

  /** The gateway's job holding a disk, while its record says it runs; null for none. */
  private async gatewayJobOn(
    host: string,
    dom: RemoteDomain,
    disk: string,
  ): Promise<string | null> {
    const id = await this.ledger.holder({ host, domainUuid: uuidString(dom.uuid), disk });
    const record = id === null ? null : await this.store.get(id);
    return record && !TERMINAL_STATES.has(record.state) ? record.id : null;
  }

  private async details(
    c: LibvirtClient,
    host: string,
    doms: readonly RemoteDomain[],
  ): Promise<{ disks: DiskModel[]; interfaces: InterfaceModel[] }[]> {
    const sizesPromise = c.rpc
      .connectGetAllDomainStats({
        doms: [...doms],
        stats: DomainStatsTypes.BLOCK,
        flags: GetAllDomainStatsFlags.BACKING,
      })
      .then(
        ({ retStats }) =>
          new Map(
            retStats.map((r) => [r.dom.uuid.toString('hex'), blockSizes(statsMap(r.params))]),
          ),
        // Sizes are an extra: a driver without block statistics still gets its chains.
        (): Map<string, BlockSizes> => new Map(),
      );
    const xmls = await Promise.all(
      doms.map(async (dom) => {
        const [liveXml, isPersistent] = await Promise.all([
          c.rpc.domainGetXmlDesc({ dom, flags: 0 }),
          c.rpc.domainIsPersistent({ dom }),
        ]);
        const live = parseDomainXml(liveXml.xml);
        // A domain that is not running shows its persistent definition as its XML: no second read.
        if (live.id === null) return { live, persistent: live, blockJobs: null };
        const [persistent, blockJobs] = await Promise.all([
          isPersistent.persistent === 1
            ? c.rpc
                .domainGetXmlDesc({ dom, flags: DomainXmlFlags.INACTIVE })
                .then((r) => parseDomainXml(r.xml))
            : null,
          this.blockJobs(c, host, dom, live),
        ]);
        return { live, persistent, blockJobs };
      }),
    );
    const sizes = await sizesPromise;
    return doms.map((dom, i) => {
      const { live, persistent, blockJobs } = xmls[i]! as {
        live: DomainXml;
        persistent: DomainXml | null;
        blockJobs: Map<string, DiskBlockJobModel> | null;
      };
      return {
        disks: disksView(live, persistent, sizes.get(dom.uuid.toString('hex')) ?? null, blockJobs),
        interfaces: interfacesView(live),
      };
    });
  }

  /**
   * The block jobs libvirt runs on a running domain's disks, asked for each
   * disk that has an image (one call per disk: libvirt has no bulk call for
   * it), with the gateway's job on each: the one holding the disk, while its
   * record is not final. A disk whose read fails (the domain stopped
   * meanwhile) shows none; a driver without block jobs is not asked again.
   */
  private async blockJobs(
    c: LibvirtClient,
    host: string,
    dom: RemoteDomain,
    live: DomainXml,
  ): Promise<Map<string, DiskBlockJobModel> | null> {
    if (this.withoutBlockJobs.has(c)) return null;
    const out = new Map<string, DiskBlockJobModel>();
    await Promise.all(
      live.disks
        .filter((d) => d.chain.length > 0)
        .map(async (disk) => {
          let info;
          try {
            info = await c.rpc.domainGetBlockJobInfo({
              dom,
              path: disk.target,
              flags: DomainBlockJobInfoFlags.BANDWIDTH_BYTES,
            });
          } catch (err) {
            if (isLibvirtError(err, ErrorNumber.VIR_ERR_NO_SUPPORT)) this.withoutBlockJobs.add(c);
            return;
          }
          if (info.found !== 1) return;
          out.set(
            disk.target,
            blockJobView(
              { type: info.type, cur: Number(info.cur), end: Number(info.end) },
              disk.mirror?.ready === 'yes',
              await this.gatewayJobOn(host, dom, disk.target),
            ),
          );
        }),
    );
    return out;
  }
}

function uuidSet(doms: readonly RemoteDomain[]): Set<string> {
  return new Set(doms.map((d) => d.uuid.toString('hex')));
}
