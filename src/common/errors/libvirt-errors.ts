import {
  CallTimeoutError,
  ConnectError,
  ConnectionClosedError,
  ErrorNumber,
  KeepaliveTimeoutError,
  LibvirtError,
  ProtocolError,
  UnsupportedAuthError,
  UriError,
  type ErrorNumberName,
} from '#src/libvirt/index.js';
import { AppError, ErrorCode } from './app-error.js';

/** Seconds a client should wait before retrying a host that could not be reached. */
export const HOST_RETRY_AFTER_SECONDS = 5;

/**
 * libvirt's virErrorNumber names (VIR_ERR_*) that mean something other than
 * INTERNAL. Anything not listed is INTERNAL, with libvirt's message as detail.
 * Names, so that the table reads like libvirt's docs; checked against the
 * protocol's list at compile time, looked up by number.
 */
const LIBVIRT_CODE_NAMES = {
  VIR_ERR_NO_DOMAIN: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_NETWORK: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_STORAGE_POOL: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_STORAGE_VOL: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_NODE_DEVICE: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_INTERFACE: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_NWFILTER: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_NWFILTER_BINDING: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_SECRET: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_DOMAIN_SNAPSHOT: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_DOMAIN_CHECKPOINT: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_DOMAIN_BACKUP: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_DOMAIN_METADATA: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_NETWORK_PORT: ErrorCode.NOT_FOUND,
  VIR_ERR_NO_NETWORK_METADATA: ErrorCode.NOT_FOUND,
  VIR_ERR_DEVICE_MISSING: ErrorCode.NOT_FOUND,

  VIR_ERR_DOM_EXIST: ErrorCode.ALREADY_EXISTS,
  VIR_ERR_NETWORK_EXIST: ErrorCode.ALREADY_EXISTS,
  VIR_ERR_STORAGE_VOL_EXIST: ErrorCode.ALREADY_EXISTS,
  VIR_ERR_NETWORK_PORT_EXIST: ErrorCode.ALREADY_EXISTS,
  VIR_ERR_STORAGE_POOL_BUILT: ErrorCode.ALREADY_EXISTS,

  VIR_ERR_INVALID_ARG: ErrorCode.INVALID_ARGUMENT,
  VIR_ERR_XML_ERROR: ErrorCode.INVALID_ARGUMENT,
  VIR_ERR_XML_DETAIL: ErrorCode.INVALID_ARGUMENT,
  VIR_ERR_XML_INVALID_SCHEMA: ErrorCode.INVALID_ARGUMENT,
  VIR_ERR_INVALID_MAC: ErrorCode.INVALID_ARGUMENT,
  VIR_ERR_MULTIPLE_DOMAINS: ErrorCode.INVALID_ARGUMENT,

  VIR_ERR_OPERATION_INVALID: ErrorCode.INVALID_STATE,
  VIR_ERR_MIGRATE_UNSAFE: ErrorCode.INVALID_STATE,
  VIR_ERR_SNAPSHOT_REVERT_RISKY: ErrorCode.INVALID_STATE,
  VIR_ERR_CHECKPOINT_INCONSISTENT: ErrorCode.INVALID_STATE,
  VIR_ERR_AGENT_UNSYNCED: ErrorCode.INVALID_STATE,

  VIR_ERR_BLOCK_COPY_ACTIVE: ErrorCode.CONFLICT,
  VIR_ERR_RESOURCE_BUSY: ErrorCode.CONFLICT,
  VIR_ERR_OPERATION_ABORTED: ErrorCode.CONFLICT,

  VIR_ERR_NO_SUPPORT: ErrorCode.UNSUPPORTED,
  VIR_ERR_CONFIG_UNSUPPORTED: ErrorCode.UNSUPPORTED,
  VIR_ERR_ARGUMENT_UNSUPPORTED: ErrorCode.UNSUPPORTED,
  VIR_ERR_OPERATION_UNSUPPORTED: ErrorCode.UNSUPPORTED,
  VIR_ERR_CPU_INCOMPATIBLE: ErrorCode.UNSUPPORTED,

  VIR_ERR_OPERATION_TIMEOUT: ErrorCode.TIMEOUT,
  VIR_ERR_AGENT_UNRESPONSIVE: ErrorCode.TIMEOUT,
  VIR_ERR_AGENT_COMMAND_TIMEOUT: ErrorCode.TIMEOUT,

  VIR_ERR_OPERATION_DENIED: ErrorCode.FORBIDDEN,
  VIR_ERR_ACCESS_DENIED: ErrorCode.FORBIDDEN,

  // The gateway's own link to the host failed: nothing the caller can fix.
  VIR_ERR_NO_CONNECT: ErrorCode.HOST_UNREACHABLE,
  VIR_ERR_INVALID_CONN: ErrorCode.HOST_UNREACHABLE,
  VIR_ERR_UNKNOWN_HOST: ErrorCode.HOST_UNREACHABLE,
  VIR_ERR_AUTH_FAILED: ErrorCode.HOST_UNREACHABLE,
  VIR_ERR_AUTH_CANCELLED: ErrorCode.HOST_UNREACHABLE,
  VIR_ERR_AUTH_UNAVAILABLE: ErrorCode.HOST_UNREACHABLE,
} as const satisfies Partial<Record<ErrorNumberName, ErrorCode>>;

const LIBVIRT_CODES: ReadonlyMap<number, ErrorCode> = new Map(
  Object.entries(LIBVIRT_CODE_NAMES).map(([name, code]) => [
    ErrorNumber[name as ErrorNumberName],
    code,
  ]),
);

/**
 * Translates an error of the libvirt client (#src/libvirt) into an AppError,
 * or returns null when `err` did not come from it.
 */
export function fromLibvirtError(err: unknown): AppError | null {
  if (err instanceof LibvirtError) {
    const code = LIBVIRT_CODES.get(err.code) ?? ErrorCode.INTERNAL;
    return new AppError(code, `libvirt: ${err.message} (${err.codeName})`, {
      cause: err,
      retryAfterSeconds: code === ErrorCode.HOST_UNREACHABLE ? HOST_RETRY_AFTER_SECONDS : undefined,
    });
  }
  if (
    err instanceof ConnectError ||
    err instanceof ConnectionClosedError ||
    err instanceof CallTimeoutError ||
    err instanceof KeepaliveTimeoutError ||
    err instanceof ProtocolError ||
    err instanceof UnsupportedAuthError
  ) {
    return new AppError(ErrorCode.HOST_UNREACHABLE, `libvirt host unreachable: ${err.message}`, {
      cause: err,
      retryAfterSeconds: HOST_RETRY_AFTER_SECONDS,
    });
  }
  if (err instanceof UriError) {
    return new AppError(ErrorCode.INVALID_ARGUMENT, err.message, { cause: err });
  }
  return null;
}
