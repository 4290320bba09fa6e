/**
 * What callers of the client repeat: UUIDs in their text form, predicates on
 * libvirt's errors by numeric code, and lookups that answer null where
 * libvirt answers "no such object". Pure: nothing of NestJS, no policy (what
 * a missing object means to a caller is the caller's to say).
 */
import type { LibvirtClient } from './client.js';
import { LibvirtError } from './errors.js';
import { DomainState } from './protocol/constants.js';
import { ErrorNumber } from './protocol/error-codes.js';
import type { RemoteDomain, RemoteStoragePool, RemoteStorageVol } from './protocol/types.js';

// ---- UUIDs -------------------------------------------------------------------------------

/** A UUID in its canonical 8-4-4-4-12 text form (either case). */
export const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** 16 raw bytes (as libvirt sends a UUID) in the canonical text form, lower case. */
export function uuidString(uuid: Buffer): string {
  const h = uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A UUID's text (with or without dashes) as the 16 raw bytes libvirt takes. */
export function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

// ---- errors ------------------------------------------------------------------------------

/** Whether `err` is libvirt refusing with one of `codes` (virErrorNumber, e.g. ErrorNumber.VIR_ERR_NO_DOMAIN). */
export function isLibvirtError(err: unknown, ...codes: number[]): err is LibvirtError {
  return err instanceof LibvirtError && (codes.length === 0 || codes.includes(err.code));
}

/** No such domain (VIR_ERR_NO_DOMAIN). */
export const isNoDomain = (err: unknown): err is LibvirtError =>
  isLibvirtError(err, ErrorNumber.VIR_ERR_NO_DOMAIN);
/** No such storage pool (VIR_ERR_NO_STORAGE_POOL). */
export const isNoStoragePool = (err: unknown): err is LibvirtError =>
  isLibvirtError(err, ErrorNumber.VIR_ERR_NO_STORAGE_POOL);
/** No such storage volume (VIR_ERR_NO_STORAGE_VOL). */
export const isNoStorageVol = (err: unknown): err is LibvirtError =>
  isLibvirtError(err, ErrorNumber.VIR_ERR_NO_STORAGE_VOL);
/** No such snapshot (VIR_ERR_NO_DOMAIN_SNAPSHOT). */
export const isNoDomainSnapshot = (err: unknown): err is LibvirtError =>
  isLibvirtError(err, ErrorNumber.VIR_ERR_NO_DOMAIN_SNAPSHOT);
/** The object is not in a state for this (VIR_ERR_OPERATION_INVALID): a domain not running, a pool not active. */
export const isOperationInvalid = (err: unknown): err is LibvirtError =>
  isLibvirtError(err, ErrorNumber.VIR_ERR_OPERATION_INVALID);
/** An argument libvirt refused (VIR_ERR_INVALID_ARG): e.g. a disk with no block job to abort. */
export const isInvalidArg = (err: unknown): err is LibvirtError =>
  isLibvirtError(err, ErrorNumber.VIR_ERR_INVALID_ARG);
/** A block copy or active commit not ready to pivot yet (VIR_ERR_BLOCK_COPY_ACTIVE). */
export const isBlockCopyActive = (err: unknown): err is LibvirtError =>
  isLibvirtError(err, ErrorNumber.VIR_ERR_BLOCK_COPY_ACTIVE);
/** A configuration libvirt does not support (VIR_ERR_CONFIG_UNSUPPORTED). */
export const isConfigUnsupported = (err: unknown): err is LibvirtError =>
  isLibvirtError(err, ErrorNumber.VIR_ERR_CONFIG_UNSUPPORTED);

/** `p`'s result, or null when it fails with an error `absent` accepts (a "no such object"). */
export async function orNull<T>(
  p: Promise<T>,
  absent: (err: unknown) => boolean,
): Promise<T | null> {
  try {
    return await p;
  } catch (err) {
    if (absent(err)) return null;
    throw err;
  }
}

// ---- lookups -----------------------------------------------------------------------------

/** The domain with this UUID (text or bytes), or null. */
export function findDomainByUuid(
  c: LibvirtClient,
  uuid: string | Buffer,
): Promise<RemoteDomain | null> {
  const bytes = typeof uuid === 'string' ? uuidBytes(uuid) : uuid;
  return orNull(
    c.rpc.domainLookupByUuid({ uuid: bytes }).then((r) => r.dom),
    isNoDomain,
  );
}

/** The domain named `name`, or null. */
export function findDomainByName(c: LibvirtClient, name: string): Promise<RemoteDomain | null> {
  return orNull(
    c.rpc.domainLookupByName({ name }).then((r) => r.dom),
    isNoDomain,
  );
}

/** The domain `ref` names, by canonical UUID or else by name, or null. */
export function findDomain(c: LibvirtClient, ref: string): Promise<RemoteDomain | null> {
  return CANONICAL_UUID.test(ref) ? findDomainByUuid(c, ref) : findDomainByName(c, ref);
}

/** The storage pool named `name`, or null. */
export function findStoragePool(c: LibvirtClient, name: string): Promise<RemoteStoragePool | null> {
  return orNull(
    c.rpc.storagePoolLookupByName({ name }).then((r) => r.pool),
    isNoStoragePool,
  );
}

/** The storage pool with this UUID (text), or null. */
export function findStoragePoolByUuid(
  c: LibvirtClient,
  uuid: string,
): Promise<RemoteStoragePool | null> {
  return orNull(
    c.rpc.storagePoolLookupByUuid({ uuid: uuidBytes(uuid) }).then((r) => r.pool),
    isNoStoragePool,
  );
}

/** The volume named `name` of `pool`, or null. */
export function findStorageVol(
  c: LibvirtClient,
  pool: RemoteStoragePool,
  name: string,
): Promise<RemoteStorageVol | null> {
  return orNull(
    c.rpc.storageVolLookupByName({ pool, name }).then((r) => r.vol),
    isNoStorageVol,
  );
}

/** The storage volume whose file is `path` (in any pool libvirt knows), or null. */
export function findStorageVolByPath(
  c: LibvirtClient,
  path: string,
): Promise<RemoteStorageVol | null> {
  return orNull(
    c.rpc.storageVolLookupByPath({ path }).then((r) => r.vol),
    isNoStorageVol,
  );
}

// ---- domain state ------------------------------------------------------------------------

/** Shut off (or no state at all): nothing runs. */
export function isShutOff(state: number): boolean {
  return state === DomainState.SHUTOFF || state === DomainState.NOSTATE;
}

/** libvirt's virDomainState of `dom` now. */
export async function domainState(c: LibvirtClient, dom: RemoteDomain): Promise<number> {
  return (await c.rpc.domainGetState({ dom, flags: 0 })).state;
}
