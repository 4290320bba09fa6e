/**
 * The REMOTE program's procedures this client speaks, as data: number, argument
 * struct and return struct, from src/remote/remote_protocol.x. Procedure numbers
 * never change. Keys follow libvirt's public API names (virDomainLookupByName ->
 * domainLookupByName), so a reader who knows libvirt recognises every call.
 * LibvirtClient turns each entry into a typed method of `client.rpc`.
 */
import {
  array,
  empty,
  fixedCharString,
  int,
  struct,
  uchar,
  uhyper,
  uint,
  ushort,
  char,
  optional,
  type Codec,
  type Infer,
} from '../xdr/codec.js';
import {
  REMOTE_AUTH_TYPE_LIST_MAX,
  REMOTE_CONNECT_GET_ALL_DOMAIN_STATS_MAX,
  REMOTE_DOMAIN_BLOCK_COPY_PARAMETERS_MAX,
  REMOTE_DOMAIN_LIST_MAX,
  REMOTE_DOMAIN_SNAPSHOT_LIST_MAX,
  REMOTE_DOMAIN_STATS_PARAMS_MAX,
  REMOTE_INTERFACE_LIST_MAX,
  REMOTE_NETWORK_LIST_MAX,
  REMOTE_STORAGE_POOL_LIST_MAX,
  REMOTE_STORAGE_VOL_LIST_MAX,
  domain,
  domainSnapshot,
  iface,
  network,
  nonnullString,
  optString,
  storagePool,
  storageVol,
  typedParams,
  uuid,
} from './types.js';

export interface Procedure<A, R> {
  readonly proc: number;
  readonly args: Codec<A>;
  readonly ret: Codec<R>;
}

export type ArgsOf<P> = P extends Procedure<infer A, unknown> ? A : never;
export type RetOf<P> = P extends Procedure<unknown, infer R> ? R : never;

function procedure<A, R>(proc: number, args: Codec<A>, ret: Codec<R>): Procedure<A, R> {
  return { proc, args, ret };
}

const dom = struct({ dom: domain });
const domFlags = struct({ dom: domain, flags: uint });
const domXml = struct({ xml: nonnullString });
const domXmlFlags = struct({ dom: domain, xml: nonnullString, flags: uint });
const pool = struct({ pool: storagePool });
const poolFlags = struct({ pool: storagePool, flags: uint });
const vol = struct({ vol: storageVol });
const snap = struct({ snap: domainSnapshot });
const listArgs = struct({ needResults: int, flags: uint });
const domPathFlags = struct({ dom: domain, path: nonnullString, flags: uint });
const domPathBandwidthFlags = struct({
  dom: domain,
  path: nonnullString,
  bandwidth: uhyper,
  flags: uint,
});

export const procedures = {
  // Connection and host
  connectOpen: procedure(1, struct({ name: optString, flags: uint }), empty),
  connectClose: procedure(2, empty, empty),
  connectGetType: procedure(3, empty, struct({ type: nonnullString })),
  connectGetVersion: procedure(4, empty, struct({ hvVer: uhyper })),
  nodeGetInfo: procedure(
    6,
    empty,
    struct({
      model: fixedCharString(32),
      memory: uhyper,
      cpus: int,
      mhz: int,
      nodes: int,
      sockets: int,
      cores: int,
      threads: int,
    }),
  ),
  connectGetCapabilities: procedure(7, empty, struct({ capabilities: nonnullString })),
  connectGetHostname: procedure(59, empty, struct({ hostname: nonnullString })),
  connectSupportsFeature: procedure(60, struct({ feature: int }), struct({ supported: int })),
  authList: procedure(66, empty, struct({ types: array(int, REMOTE_AUTH_TYPE_LIST_MAX) })),
  authPolkit: procedure(70, empty, struct({ complete: int })),
  connectGetUri: procedure(110, empty, struct({ uri: nonnullString })),
  connectGetLibVersion: procedure(157, empty, struct({ libVer: uhyper })),

  // Domains
  connectListAllDomains: procedure(
    273,
    listArgs,
    struct({ domains: array(domain, REMOTE_DOMAIN_LIST_MAX), ret: uint }),
  ),
  connectGetAllDomainStats: procedure(
    344,
    struct({ doms: array(domain, REMOTE_DOMAIN_LIST_MAX), stats: uint, flags: uint }),
    struct({
      retStats: array(
        struct({ dom: domain, params: typedParams(REMOTE_DOMAIN_STATS_PARAMS_MAX) }),
        REMOTE_CONNECT_GET_ALL_DOMAIN_STATS_MAX,
      ),
    }),
  ),
  domainLookupById: procedure(22, struct({ id: int }), dom),
  domainLookupByName: procedure(23, struct({ name: nonnullString }), dom),
  domainLookupByUuid: procedure(24, struct({ uuid }), dom),
  domainDefineXml: procedure(11, domXml, dom),
  domainDefineXmlFlags: procedure(350, struct({ xml: nonnullString, flags: uint }), dom),
  domainUndefine: procedure(35, dom, empty),
  domainUndefineFlags: procedure(231, domFlags, empty),
  domainCreate: procedure(9, dom, empty),
  domainCreateWithFlags: procedure(196, domFlags, dom),
  domainCreateXml: procedure(10, struct({ xmlDesc: nonnullString, flags: uint }), dom),
  domainShutdown: procedure(33, dom, empty),
  domainShutdownFlags: procedure(258, domFlags, empty),
  domainDestroy: procedure(12, dom, empty),
  domainDestroyFlags: procedure(234, domFlags, empty),
  domainReboot: procedure(27, domFlags, empty),
  domainSuspend: procedure(34, dom, empty),
  domainResume: procedure(28, dom, empty),
  domainGetXmlDesc: procedure(14, domFlags, domXml),
  domainGetState: procedure(212, domFlags, struct({ state: int, reason: int })),
  domainGetInfo: procedure(
    16,
    dom,
    struct({ state: uchar, maxMem: uhyper, memory: uhyper, nrVirtCpu: ushort, cpuTime: uhyper }),
  ),
  domainGetBlockInfo: procedure(
    194,
    domPathFlags,
    struct({ allocation: uhyper, capacity: uhyper, physical: uhyper }),
  ),
  domainGetAutostart: procedure(15, dom, struct({ autostart: int })),
  domainSetAutostart: procedure(29, struct({ dom: domain, autostart: int }), empty),
  domainIsActive: procedure(150, dom, struct({ active: int })),
  domainIsPersistent: procedure(151, dom, struct({ persistent: int })),
  domainReset: procedure(245, domFlags, empty),
  domainManagedSave: procedure(182, domFlags, empty),
  domainManagedSaveRemove: procedure(184, domFlags, empty),
  domainHasManagedSaveImage: procedure(183, domFlags, struct({ result: int })),
  /** `type` is a DomainMetadataType; `key` and `uri` name an ELEMENT's namespace. */
  domainSetMetadata: procedure(
    264,
    struct({
      dom: domain,
      type: int,
      metadata: optString,
      key: optString,
      uri: optString,
      flags: uint,
    }),
    empty,
  ),
  domainGetMetadata: procedure(
    265,
    struct({ dom: domain, type: int, uri: optString, flags: uint }),
    struct({ metadata: nonnullString }),
  ),

  // Devices (flags: DomainAffect / DomainDeviceModifyFlags)
  domainAttachDeviceFlags: procedure(160, domXmlFlags, empty),
  domainDetachDeviceFlags: procedure(161, domXmlFlags, empty),
  domainUpdateDeviceFlags: procedure(174, domXmlFlags, empty),

  // Snapshots
  domainSnapshotCreateXml: procedure(
    185,
    struct({ dom: domain, xmlDesc: nonnullString, flags: uint }),
    snap,
  ),
  domainListAllSnapshots: procedure(
    274,
    struct({ dom: domain, needResults: int, flags: uint }),
    struct({ snapshots: array(domainSnapshot, REMOTE_DOMAIN_SNAPSHOT_LIST_MAX), ret: int }),
  ),
  domainSnapshotLookupByName: procedure(
    189,
    struct({ dom: domain, name: nonnullString, flags: uint }),
    snap,
  ),
  domainSnapshotGetXmlDesc: procedure(186, struct({ snap: domainSnapshot, flags: uint }), domXml),
  domainSnapshotDelete: procedure(193, struct({ snap: domainSnapshot, flags: uint }), empty),

  // Block jobs
  domainBlockPull: procedure(240, domPathBandwidthFlags, empty),
  domainBlockRebase: procedure(
    266,
    struct({ dom: domain, path: nonnullString, base: optString, bandwidth: uhyper, flags: uint }),
    empty,
  ),
  domainBlockCopy: procedure(
    345,
    struct({
      dom: domain,
      path: nonnullString,
      destxml: nonnullString,
      params: typedParams(REMOTE_DOMAIN_BLOCK_COPY_PARAMETERS_MAX),
      flags: uint,
    }),
    empty,
  ),
  domainBlockCommit: procedure(
    290,
    struct({
      dom: domain,
      disk: nonnullString,
      base: optString,
      top: optString,
      bandwidth: uhyper,
      flags: uint,
    }),
    empty,
  ),
  domainBlockJobAbort: procedure(237, domPathFlags, empty),
  domainGetBlockJobInfo: procedure(
    238,
    domPathFlags,
    struct({ found: int, type: int, bandwidth: uhyper, cur: uhyper, end: uhyper }),
  ),
  domainBlockJobSetSpeed: procedure(239, domPathBandwidthFlags, empty),
  /** `dev` is a disk target (`vda`) or an image of its chain (`vda[1]`); 0 clears the threshold. */
  domainSetBlockThreshold: procedure(
    386,
    struct({ dom: domain, dev: nonnullString, threshold: uhyper, flags: uint }),
    empty,
  ),

  // Storage pools
  connectListAllStoragePools: procedure(
    281,
    listArgs,
    struct({ pools: array(storagePool, REMOTE_STORAGE_POOL_LIST_MAX), ret: uint }),
  ),
  storagePoolLookupByName: procedure(84, struct({ name: nonnullString }), pool),
  storagePoolLookupByUuid: procedure(85, struct({ uuid }), pool),
  storagePoolLookupByVolume: procedure(86, vol, pool),
  storagePoolDefineXml: procedure(77, struct({ xml: nonnullString, flags: uint }), pool),
  storagePoolBuild: procedure(79, poolFlags, empty),
  storagePoolCreate: procedure(78, poolFlags, empty),
  storagePoolDestroy: procedure(80, pool, empty),
  storagePoolUndefine: procedure(82, pool, empty),
  storagePoolRefresh: procedure(83, poolFlags, empty),
  storagePoolGetInfo: procedure(
    87,
    pool,
    struct({ state: uchar, capacity: uhyper, allocation: uhyper, available: uhyper }),
  ),
  storagePoolGetXmlDesc: procedure(88, poolFlags, domXml),
  storagePoolGetAutostart: procedure(89, pool, struct({ autostart: int })),
  storagePoolSetAutostart: procedure(90, struct({ pool: storagePool, autostart: int }), empty),
  storagePoolIsActive: procedure(154, pool, struct({ active: int })),
  storagePoolIsPersistent: procedure(155, pool, struct({ persistent: int })),
  storagePoolListAllVolumes: procedure(
    282,
    struct({ pool: storagePool, needResults: int, flags: uint }),
    struct({ vols: array(storageVol, REMOTE_STORAGE_VOL_LIST_MAX), ret: uint }),
  ),

  // Storage volumes
  storageVolLookupByName: procedure(95, struct({ pool: storagePool, name: nonnullString }), vol),
  storageVolLookupByKey: procedure(96, struct({ key: nonnullString }), vol),
  storageVolLookupByPath: procedure(97, struct({ path: nonnullString }), vol),
  storageVolCreateXml: procedure(
    93,
    struct({ pool: storagePool, xml: nonnullString, flags: uint }),
    vol,
  ),
  storageVolCreateXmlFrom: procedure(
    125,
    struct({ pool: storagePool, xml: nonnullString, clonevol: storageVol, flags: uint }),
    vol,
  ),
  storageVolDelete: procedure(94, struct({ vol: storageVol, flags: uint }), empty),
  storageVolGetInfo: procedure(
    98,
    vol,
    struct({ type: char, capacity: uhyper, allocation: uhyper }),
  ),
  storageVolGetXmlDesc: procedure(99, struct({ vol: storageVol, flags: uint }), domXml),
  storageVolGetPath: procedure(100, vol, struct({ name: nonnullString })),

  // Networks and host interfaces
  connectListAllNetworks: procedure(
    283,
    listArgs,
    struct({ nets: array(network, REMOTE_NETWORK_LIST_MAX), ret: uint }),
  ),
  connectListAllInterfaces: procedure(
    284,
    listArgs,
    struct({ ifaces: array(iface, REMOTE_INTERFACE_LIST_MAX), ret: uint }),
  ),

  // Events
  connectDomainEventCallbackRegisterAny: procedure(
    316,
    struct({ eventID: int, dom: optional(domain) }),
    struct({ callbackID: int }),
  ),
  connectDomainEventCallbackDeregisterAny: procedure(317, struct({ callbackID: int }), empty),
} as const;

export type Procedures = typeof procedures;
export type ProcedureName = keyof Procedures;

/** The typed calls `client.rpc` offers: one method per procedure. */
export type RpcCalls = {
  [K in ProcedureName]: ArgsOf<Procedures[K]> extends void
    ? () => Promise<RetOf<Procedures[K]>>
    : (args: ArgsOf<Procedures[K]>) => Promise<RetOf<Procedures[K]>>;
};

export type ProcArgs<K extends ProcedureName> = ArgsOf<Procedures[K]>;
export type ProcRet<K extends ProcedureName> = RetOf<Procedures[K]>;
export type DomainInfo = ProcRet<'domainGetInfo'>;
export type NodeInfo = ProcRet<'nodeGetInfo'>;
export type BlockJobInfo = ProcRet<'domainGetBlockJobInfo'>;
export type { Infer };

/** procedure number -> name, for error messages and logs. */
export const procedureNames: ReadonlyMap<number, ProcedureName> = new Map(
  (Object.entries(procedures) as [ProcedureName, Procedure<unknown, unknown>][]).map(
    ([name, p]) => [p.proc, name],
  ),
);
