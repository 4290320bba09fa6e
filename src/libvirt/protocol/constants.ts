/**
 * libvirt's public enums and flags (include/libvirt/libvirt-*.h) used by this
 * client, under libvirt's names without the VIR_ prefix.
 */

export const ConnectFlags = { RO: 1 } as const;

/** VIR_DRV_FEATURE_* (src/libvirt_internal.h) asked with CONNECT_SUPPORTS_FEATURE. */
export const DrvFeature = {
  TYPED_PARAM_STRING: 9,
  PROGRAM_KEEPALIVE: 10,
  REMOTE_EVENT_CALLBACK: 14,
  REMOTE_CLOSE_CALLBACK: 15,
} as const;

export const AuthType = { NONE: 0, SASL: 1, POLKIT: 2 } as const;

export const DomainState = {
  NOSTATE: 0,
  RUNNING: 1,
  BLOCKED: 2,
  PAUSED: 3,
  SHUTDOWN: 4,
  SHUTOFF: 5,
  CRASHED: 6,
  PMSUSPENDED: 7,
} as const;

export const ConnectListAllDomainsFlags = {
  ACTIVE: 1,
  INACTIVE: 2,
  PERSISTENT: 4,
  TRANSIENT: 8,
  RUNNING: 16,
  PAUSED: 32,
  SHUTOFF: 64,
  OTHER: 128,
  MANAGEDSAVE: 256,
  NO_MANAGEDSAVE: 512,
  AUTOSTART: 1024,
  NO_AUTOSTART: 2048,
  HAS_SNAPSHOT: 4096,
  NO_SNAPSHOT: 8192,
} as const;

export const DomainXmlFlags = { SECURE: 1, INACTIVE: 2, UPDATE_CPU: 4, MIGRATABLE: 8 } as const;
export const DomainDefineFlags = { VALIDATE: 1 } as const;
export const DomainUndefineFlags = {
  MANAGED_SAVE: 1,
  SNAPSHOTS_METADATA: 2,
  NVRAM: 4,
  KEEP_NVRAM: 8,
  CHECKPOINTS_METADATA: 16,
} as const;
export const DomainCreateFlags = {
  NONE: 0,
  START_PAUSED: 1,
  START_AUTODESTROY: 2,
  START_BYPASS_CACHE: 4,
  START_FORCE_BOOT: 8,
  START_VALIDATE: 16,
} as const;
export const DomainShutdownFlags = {
  DEFAULT: 0,
  ACPI_POWER_BTN: 1,
  GUEST_AGENT: 2,
  INITCTL: 4,
  SIGNAL: 8,
  PARAVIRT: 16,
} as const;
export const DomainDestroyFlags = { DEFAULT: 0, GRACEFUL: 1 } as const;

export const DomainSnapshotCreateFlags = {
  REDEFINE: 1,
  CURRENT: 2,
  NO_METADATA: 4,
  HALT: 8,
  DISK_ONLY: 16,
  REUSE_EXT: 32,
  QUIESCE: 64,
  ATOMIC: 128,
  LIVE: 256,
  VALIDATE: 512,
} as const;

export const DomainBlockCommitFlags = {
  SHALLOW: 1,
  DELETE: 2,
  ACTIVE: 4,
  RELATIVE: 8,
  BANDWIDTH_BYTES: 16,
} as const;
export const DomainBlockJobAbortFlags = { ASYNC: 1, PIVOT: 2 } as const;
export const DomainBlockCopyFlags = {
  SHALLOW: 1,
  REUSE_EXT: 2,
  TRANSIENT_JOB: 4,
  SYNCHRONOUS_WRITES: 8,
} as const;
export const DomainBlockRebaseFlags = {
  SHALLOW: 1,
  REUSE_EXT: 2,
  COPY_RAW: 4,
  COPY: 8,
  RELATIVE: 16,
  COPY_DEV: 32,
  BANDWIDTH_BYTES: 64,
} as const;
export const DomainBlockPullFlags = { BANDWIDTH_BYTES: 64 } as const;
export const DomainBlockJobInfoFlags = { BANDWIDTH_BYTES: 1 } as const;
export const DomainBlockJobSetSpeedFlags = { BANDWIDTH_BYTES: 1 } as const;

export const DomainBlockJobType = {
  UNKNOWN: 0,
  PULL: 1,
  COPY: 2,
  COMMIT: 3,
  ACTIVE_COMMIT: 4,
  BACKUP: 5,
} as const;

export const BlockJobStatus = { COMPLETED: 0, FAILED: 1, CANCELED: 2, READY: 3 } as const;

/** Block copy typed-parameter names (VIR_DOMAIN_BLOCK_COPY_*). */
export const BlockCopyParam = {
  BANDWIDTH: 'bandwidth',
  GRANULARITY: 'granularity',
  BUF_SIZE: 'buf-size',
} as const;

export const DomainEventId = {
  LIFECYCLE: 0,
  REBOOT: 1,
  RTC_CHANGE: 2,
  WATCHDOG: 3,
  IO_ERROR: 4,
  GRAPHICS: 5,
  IO_ERROR_REASON: 6,
  CONTROL_ERROR: 7,
  BLOCK_JOB: 8,
  DISK_CHANGE: 9,
  TRAY_CHANGE: 10,
  PMWAKEUP: 11,
  PMSUSPEND: 12,
  BALLOON_CHANGE: 13,
  PMSUSPEND_DISK: 14,
  DEVICE_REMOVED: 15,
  BLOCK_JOB_2: 16,
  TUNABLE: 17,
  AGENT_LIFECYCLE: 18,
  DEVICE_ADDED: 19,
  MIGRATION_ITERATION: 20,
  JOB_COMPLETED: 21,
  DEVICE_REMOVAL_FAILED: 22,
  METADATA_CHANGE: 23,
  BLOCK_THRESHOLD: 24,
  MEMORY_FAILURE: 25,
  MEMORY_DEVICE_SIZE_CHANGE: 26,
  LEASE_CHANGE: 27,
} as const;

/** virDomainEventWatchdogAction: what the hypervisor did when the watchdog fired. */
export const DomainEventWatchdogAction = {
  NONE: 0,
  PAUSE: 1,
  RESET: 2,
  POWEROFF: 3,
  SHUTDOWN: 4,
  DEBUG: 5,
  INJECTNMI: 6,
} as const;

/** virDomainEventIOErrorAction: what the hypervisor did after a disk I/O error. */
export const DomainEventIoErrorAction = { NONE: 0, PAUSE: 1, REPORT: 2 } as const;

/** virConnectDomainEventDiskChangeReason. */
export const DomainEventDiskChangeReason = {
  /** The medium's source was missing at start and was dropped (startupPolicy). */
  MISSING_ON_START: 0,
  /** The whole disk was missing at start and was dropped (startupPolicy). */
  DROP_MISSING_ON_START: 1,
} as const;

/** virDomainEventTrayChangeReason. */
export const DomainEventTrayChangeReason = { OPEN: 0, CLOSE: 1 } as const;

/** virConnectDomainEventAgentLifecycleState. */
export const DomainEventAgentLifecycleState = { CONNECTED: 1, DISCONNECTED: 2 } as const;

/** virConnectDomainEventAgentLifecycleReason. */
export const DomainEventAgentLifecycleReason = {
  UNKNOWN: 0,
  DOMAIN_STARTED: 1,
  CHANNEL: 2,
} as const;

/** virDomainMetadataType: which part of the domain's metadata DOMAIN_SET_METADATA sets. */
export const DomainMetadataType = { DESCRIPTION: 0, TITLE: 1, ELEMENT: 2 } as const;

/** virDomainMemoryFailureRecipientType. */
export const DomainEventMemoryFailureRecipient = { HYPERVISOR: 0, GUEST: 1 } as const;

/** virDomainMemoryFailureActionType. */
export const DomainEventMemoryFailureAction = { IGNORE: 0, INJECT: 1, FATAL: 2, RESET: 3 } as const;

/** virDomainMemoryFailureFlags, the `flags` of a MEMORY_FAILURE event. */
export const DomainMemoryFailureFlags = { ACTION_REQUIRED: 1, RECURSIVE: 2 } as const;

/** virDomainJobOperation: the `operation` typed parameter of a JOB_COMPLETED event. */
export const DomainJobOperation = {
  UNKNOWN: 0,
  START: 1,
  SAVE: 2,
  RESTORE: 3,
  MIGRATION_IN: 4,
  MIGRATION_OUT: 5,
  SNAPSHOT: 6,
  SNAPSHOT_REVERT: 7,
  DUMP: 8,
  BACKUP: 9,
  SNAPSHOT_DELETE: 10,
} as const;

/** virDomainModificationImpact (VIR_DOMAIN_AFFECT_*): the live domain, its config, or both. */
export const DomainAffect = { CURRENT: 0, LIVE: 1, CONFIG: 2 } as const;

/** virDomainDeviceModifyFlags: DomainAffect plus FORCE (e.g. force-eject a locked tray). */
export const DomainDeviceModifyFlags = { CURRENT: 0, LIVE: 1, CONFIG: 2, FORCE: 4 } as const;

export const DomainEventLifecycle = {
  DEFINED: 0,
  UNDEFINED: 1,
  STARTED: 2,
  SUSPENDED: 3,
  RESUMED: 4,
  STOPPED: 5,
  SHUTDOWN: 6,
  PMSUSPENDED: 7,
  CRASHED: 8,
} as const;

export const StoragePoolState = {
  INACTIVE: 0,
  BUILDING: 1,
  RUNNING: 2,
  DEGRADED: 3,
  INACCESSIBLE: 4,
} as const;

export const StorageVolType = {
  FILE: 0,
  BLOCK: 1,
  DIR: 2,
  NETWORK: 3,
  NETDIR: 4,
  PLOOP: 5,
} as const;

export const StorageVolDeleteFlags = { NORMAL: 0, ZEROED: 1, WITH_SNAPSHOTS: 2 } as const;
export const StorageVolCreateFlags = { PREALLOC_METADATA: 1, REFLINK: 2, VALIDATE: 4 } as const;
/** VIR_STORAGE_POOL_DEFINE_VALIDATE (virStoragePoolDefineFlags). */
export const StoragePoolDefineFlags = { VALIDATE: 1 } as const;
/** VIR_STORAGE_POOL_CREATE_WITH_BUILD… (virStoragePoolCreateFlags). */
export const StoragePoolCreateFlags = {
  NORMAL: 0,
  WITH_BUILD: 1,
  WITH_BUILD_OVERWRITE: 2,
  WITH_BUILD_NO_OVERWRITE: 4,
} as const;

/** virDomainStatsTypes: the groups of statistics virConnectGetAllDomainStats returns. */
export const DomainStatsTypes = {
  STATE: 1,
  CPU_TOTAL: 2,
  BALLOON: 4,
  VCPU: 8,
  INTERFACE: 16,
  BLOCK: 32,
} as const;

/** virConnectGetAllDomainStatsFlags beyond the list filters. */
export const GetAllDomainStatsFlags = {
  /** One `block.N` entry per image of each backing chain, not just the top. */
  BACKING: 0x40000000,
} as const;

/** Decodes a libvirt version number (major * 1,000,000 + minor * 1,000 + micro). */
export function formatVersion(v: bigint | number): string {
  const n = Number(v);
  return `${Math.floor(n / 1_000_000)}.${Math.floor((n % 1_000_000) / 1000)}.${n % 1000}`;
}
