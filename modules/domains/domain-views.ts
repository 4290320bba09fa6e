/**
 * The one mapping from libvirt's shapes (RPC results, parsed XML, typed
 * statistics) to the domain views both transports return.
 */
import {
  DomainBlockJobType,
  TypedParamType,
  uuidString,
  type RemoteDomain,
  type TypedParam,
} from '#src/libvirt/index.js';
import type { ChainImageXml, DiskXml, DomainXml } from '#src/xml/domain-xml.js';
import { reasonName, stateName } from './domain-state.js';
import type {
  ChainImageModel,
  DiskBlockJobModel,
  DiskModel,
  DomainSummaryModel,
  InterfaceModel,
} from './models/domain.model.js';

/** Typed parameters (virConnectGetAllDomainStats) as a map of numbers and strings. */
export function statsMap(params: readonly TypedParam[]): Map<string, number | string | boolean> {
  const out = new Map<string, number | string | boolean>();
  for (const p of params) {
    const v = p.value;
    out.set(
      p.field,
      v.type === TypedParamType.llong || v.type === TypedParamType.ullong
        ? Number(v.value)
        : v.value,
    );
  }
  return out;
}

export interface DomainFacts {
  dom: RemoteDomain;
  state: number;
  reason: number;
  vcpus: number | null;
  memoryKiB: number | null;
  maxMemoryKiB: number | null;
  autostart: boolean;
  persistent: boolean;
}

export function summaryView(f: DomainFacts): DomainSummaryModel {
  const state = stateName(f.state);
  return {
    uuid: uuidString(f.dom.uuid),
    name: f.dom.name,
    id: f.dom.id >= 0 ? f.dom.id : null,
    state,
    stateReason: reasonName(state, f.reason),
    vcpus: f.vcpus,
    memoryBytes: f.memoryKiB === null ? null : f.memoryKiB * 1024,
    maxMemoryBytes: f.maxMemoryKiB === null ? null : f.maxMemoryKiB * 1024,
    autostart: f.autostart,
    persistent: f.persistent,
  };
}

/** Sizes of chain images from block statistics, keyed by `target` then by index (or path). */
export interface ImageSizes {
  capacity: number | null;
  allocation: number | null;
  physical: number | null;
}

export type BlockSizes = Map<string, ImageSizes>;

function sizesKey(target: string, index: number | null, path: string | null): string {
  return index !== null ? `${target}[${index}]` : `${target}:${path ?? ''}`;
}

/**
 * Reads `block.N.*` statistics (with VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING,
 * one entry per chain image of a running domain; the top image only otherwise).
 */
export function blockSizes(stats: Map<string, number | string | boolean>): BlockSizes {
  const out: BlockSizes = new Map();
  const count = Number(stats.get('block.count') ?? 0);
  const num = (k: string): number | null => {
    const v = stats.get(k);
    return typeof v === 'number' ? v : null;
  };
  for (let i = 0; i < count; i++) {
    const name = stats.get(`block.${i}.name`);
    if (typeof name !== 'string') continue;
    const index = num(`block.${i}.backingIndex`);
    const path = stats.get(`block.${i}.path`);
    const sizes = {
      capacity: num(`block.${i}.capacity`),
      allocation: num(`block.${i}.allocation`),
      physical: num(`block.${i}.physical`),
    };
    out.set(sizesKey(name, index, typeof path === 'string' ? path : null), sizes);
    // The top image is also findable by path (inactive domains have no backingIndex).
    if (typeof path === 'string') out.set(sizesKey(name, null, path), sizes);
  }
  return out;
}

function chainView(
  target: string,
  chain: readonly ChainImageXml[],
  sizes: BlockSizes | null,
): ChainImageModel[] {
  return chain.map((image, depth) => {
    const s =
      sizes?.get(sizesKey(target, image.index, image.source.path)) ??
      sizes?.get(sizesKey(target, null, image.source.path)) ??
      null;
    return {
      depth,
      index: image.index,
      ref: image.index !== null ? `${target}[${image.index}]` : null,
      type: image.source.type,
      path: image.source.path,
      network: image.source.network,
      format: image.format,
      capacityBytes: s?.capacity ?? null,
      allocationBytes: s?.allocation ?? null,
      physicalBytes: s?.physical ?? null,
    };
  });
}

function sameImage(a: ChainImageXml, b: ChainImageXml): boolean {
  return (
    a.source.type === b.source.type &&
    a.source.path === b.source.path &&
    JSON.stringify(a.source.network) === JSON.stringify(b.source.network) &&
    JSON.stringify(a.source.volume) === JSON.stringify(b.source.volume)
  );
}

/**
 * Does the persistent definition name other images than the live chain? The
 * definition normally states only the top image (libvirt rewrites it after a
 * pivot); any backing image it does state must match the live one at that depth.
 */
export function chainDiffers(live: DiskXml, persistent: DiskXml | undefined): boolean {
  if (!persistent) return true;
  if (persistent.chain.length === 0 || live.chain.length === 0)
    return persistent.chain.length !== live.chain.length;
  return persistent.chain.some((image, depth) => {
    const other = live.chain[depth];
    return other === undefined ? live.chainComplete : !sameImage(image, other);
  });
}

/** libvirt's block job types (virDomainBlockJobType) by the names the views and events give them. */
const BLOCK_JOB_KINDS: Record<number, string> = {
  [DomainBlockJobType.PULL]: 'pull',
  [DomainBlockJobType.COPY]: 'copy',
  [DomainBlockJobType.COMMIT]: 'commit',
  [DomainBlockJobType.ACTIVE_COMMIT]: 'active-commit',
  [DomainBlockJobType.BACKUP]: 'backup',
};

/** A disk's block job as virDomainGetBlockJobInfo reports it (bytes), with the gateway's job on it. */
export function blockJobView(
  info: { type: number; cur: number; end: number },
  mirrorReady: boolean,
  jobId: string | null,
): DiskBlockJobModel {
  const twoPhase =
    info.type === DomainBlockJobType.COPY || info.type === DomainBlockJobType.ACTIVE_COMMIT;
  // libvirt keeps cur < end until QEMU reports a mirror ready: either tells.
  const ready = twoPhase && (mirrorReady || (info.end > 0 && info.cur === info.end));
  return {
    type: BLOCK_JOB_KINDS[info.type] ?? 'unknown',
    progress: {
      cur: info.cur,
      end: info.end,
      percent: info.end > 0 ? Math.floor((info.cur * 100) / info.end) : 0,
    },
    ready,
    jobId,
  };
}

/**
 * Disks of a domain from its live XML, the persistent definition (null for a
 * transient domain), block statistics (null when not available) and the
 * block jobs libvirt runs, by disk target (null when they were not read:
 * every disk then shows none).
 */
export function disksView(
  live: DomainXml,
  persistent: DomainXml | null,
  sizes: BlockSizes | null,
  blockJobs: ReadonlyMap<string, DiskBlockJobModel> | null = null,
): DiskModel[] {
  return live.disks.map((disk) => {
    const def = persistent?.disks.find((d) => d.target === disk.target);
    const differs = persistent !== null && chainDiffers(disk, def);
    return {
      target: disk.target,
      bus: disk.bus,
      device: disk.device,
      readOnly: disk.readOnly,
      chain: chainView(disk.target, disk.chain, sizes),
      chainComplete: disk.chainComplete,
      persistentChainDiffers: differs,
      persistentChain: differs ? chainView(disk.target, def?.chain ?? [], null) : null,
      mirror: disk.mirror && {
        path: disk.mirror.source.path,
        format: disk.mirror.format,
        job: disk.mirror.job,
        ready: disk.mirror.ready === 'yes',
      },
      blockJob: blockJobs?.get(disk.target) ?? null,
    };
  });
}

export function interfacesView(live: DomainXml): InterfaceModel[] {
  return live.interfaces.map((i) => ({ ...i }));
}
