import { errorDomainName, errorNumberName } from './protocol/error-codes.js';

/** The fields of libvirt's `remote_error` that carry meaning (the `dom`/`net` members are unused by libvirt). */
export interface RemoteErrorFields {
  code: number;
  domain: number;
  message: string | null;
  level: number;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
}

/**
 * An error reported by libvirt itself: the call reached the daemon and it said no.
 * `code` is libvirt's virErrorNumber (`codeName` its C name, e.g. VIR_ERR_NO_DOMAIN),
 * `domain` the virErrorDomain it came from.
 */
export class LibvirtError extends Error {
  override readonly name = 'LibvirtError';
  readonly code: number;
  readonly codeName: string;
  readonly domain: number;
  readonly domainName: string;
  readonly level: number;
  readonly str1: string | null;
  readonly str2: string | null;
  readonly str3: string | null;
  readonly int1: number;
  readonly int2: number;
  /** The procedure whose call failed, when known. */
  readonly procedure: string | undefined;

  constructor(fields: RemoteErrorFields, procedure?: string) {
    super(fields.message ?? `libvirt error ${errorNumberName(fields.code)} (no message)`);
    this.code = fields.code;
    this.codeName = errorNumberName(fields.code);
    this.domain = fields.domain;
    this.domainName = errorDomainName(fields.domain);
    this.level = fields.level;
    this.str1 = fields.str1;
    this.str2 = fields.str2;
    this.str3 = fields.str3;
    this.int1 = fields.int1;
    this.int2 = fields.int2;
    this.procedure = procedure;
  }
}

/** Base of the errors raised by the client itself (transport, framing, timeouts), not by libvirt. */
export class LibvirtClientError extends Error {
  override readonly name: string = 'LibvirtClientError';
}

/** The connection is closed, or closed while the call was pending; the call's outcome is unknown. */
export class ConnectionClosedError extends LibvirtClientError {
  override readonly name = 'ConnectionClosedError';
}

/** Could not reach the daemon (refused, no such socket, DNS, connect timeout). */
export class ConnectError extends LibvirtClientError {
  override readonly name = 'ConnectError';
}

/** The peer sent bytes that are not libvirt RPC: the connection is dropped. */
export class ProtocolError extends LibvirtClientError {
  override readonly name = 'ProtocolError';
}

/** A call got no reply within its deadline. */
export class CallTimeoutError extends LibvirtClientError {
  override readonly name = 'CallTimeoutError';
}

/** The peer stopped answering keepalive pings: the connection is dropped. */
export class KeepaliveTimeoutError extends LibvirtClientError {
  override readonly name = 'KeepaliveTimeoutError';
}

/** The daemon requires an authentication method this client does not speak. */
export class UnsupportedAuthError extends LibvirtClientError {
  override readonly name = 'UnsupportedAuthError';
}

/** A connection URI this client cannot use. */
export class UriError extends LibvirtClientError {
  override readonly name = 'UriError';
}
