import { UriError } from './errors.js';
import type { TransportCredentials } from './transport/credentials.js';
import { TlsTransport, tlsCredentialsFromUri } from './transport/tls.js';
import { SshTransport, sshCredentialsFromUri } from './transport/ssh.js';
import { TcpTransport, UnixTransport, type Transport } from './transport/transport.js';

export type TransportKind = 'unix' | 'tcp' | 'tls' | 'ssh';

/** A libvirt connection URI as libvirt users write it, and what the client does with it. */
export interface LibvirtUri {
  /** The URI as given. */
  readonly uri: string;
  /** The hypervisor driver: `qemu`, `test`, … */
  readonly driver: string;
  readonly transport: TransportKind;
  readonly host: string | null;
  readonly port: number | null;
  /** The user of `ssh://user@host` (null: the gateway's own user name). */
  readonly user: string | null;
  /** `/system`, `/session`, `/default`, … */
  readonly path: string;
  /**
   * The daemon's UNIX socket: local for the unix transport, on the remote
   * machine for ssh (what `nc -U` connects to there).
   */
  readonly socketPath: string | null;
  /**
   * The transport parameters of the query as given (`pkipath`, `no_verify`,
   * `keyfile`, `known_hosts`, `socket`, `proxy`, …), not passed on to the daemon.
   */
  readonly params: Readonly<Record<string, string>>;
  /** The name sent in CONNECT_OPEN: the URI without transport and host (remoteConnectFormatURI). */
  readonly name: string;
}

export const DEFAULT_TCP_PORT = 16509;
export const DEFAULT_TLS_PORT = 16514;
export const DEFAULT_SSH_PORT = 22;
const RUN_DIR = '/var/run/libvirt';

/** Query parameters the remote driver consumes itself; they are not passed on to the daemon. */
const TRANSPORT_PARAMS = new Set([
  'name',
  'command',
  'socket',
  'auth',
  'netcat',
  'keyfile',
  'sshauth',
  'known_hosts',
  'known_hosts_verify',
  'no_verify',
  'no_tty',
  'pkipath',
  'tls_priority',
  'mode',
  'proxy',
]);

const SCHEME = /^([a-z][a-z0-9-]*)(?:\+([a-z0-9]+))?$/;

/**
 * Parses `driver[+transport]://[user@][host][:port]/path[?params]`.
 * Without `+transport`, a URI with a host means TLS and one without means the
 * local UNIX socket, as in libvirt. `?socket=PATH` picks the UNIX socket,
 * `?name=URI` overrides the name sent to the daemon.
 */
export function parseLibvirtUri(uri: string, options: { readOnly?: boolean } = {}): LibvirtUri {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new UriError(
      `not a libvirt URI: '${redactUri(uri)}' (expected e.g. qemu:///system or qemu+tcp://host/system)`,
    );
  }
  const scheme = SCHEME.exec(url.protocol.slice(0, -1));
  if (!scheme) throw new UriError(`invalid URI scheme '${url.protocol}' in '${redactUri(uri)}'`);
  const driver = scheme[1]!;
  const host = url.hostname === '' ? null : url.hostname.replace(/^\[(.*)\]$/, '$1');
  const explicit = scheme[2];
  let transport: TransportKind;
  if (explicit === undefined) {
    transport = host ? 'tls' : 'unix';
  } else if (
    explicit === 'unix' ||
    explicit === 'tcp' ||
    explicit === 'tls' ||
    explicit === 'ssh'
  ) {
    transport = explicit;
  } else {
    throw new UriError(
      `transport '${explicit}' is not supported (use unix, tcp, tls or ssh) in '${redactUri(uri)}'`,
    );
  }
  if (transport === 'unix' && host) {
    throw new UriError(`the unix transport takes no host: '${redactUri(uri)}'`);
  }
  if (transport !== 'unix' && !host) {
    throw new UriError(`the ${transport} transport needs a host: '${redactUri(uri)}'`);
  }
  let port: number | null = null;
  if (url.port !== '') {
    port = Number(url.port);
    if (transport === 'unix')
      throw new UriError(`the unix transport takes no port: '${redactUri(uri)}'`);
  } else if (transport === 'tcp') {
    port = DEFAULT_TCP_PORT;
  } else if (transport === 'tls') {
    port = DEFAULT_TLS_PORT;
  } else if (transport === 'ssh') {
    port = DEFAULT_SSH_PORT;
  }
  const user = url.username === '' ? null : decodeURIComponent(url.username);
  const path = url.pathname === '' ? '/' : decodeURIComponent(url.pathname);

  const passOn = new URLSearchParams();
  const params: Record<string, string> = {};
  for (const [k, v] of url.searchParams) {
    if (TRANSPORT_PARAMS.has(k)) params[k] = v;
    else passOn.append(k, v);
  }
  const query = passOn.toString();
  const name = url.searchParams.get('name') ?? `${driver}://${path}${query ? `?${query}` : ''}`;

  let socketPath: string | null = null;
  if (transport === 'unix') {
    socketPath = url.searchParams.get('socket') ?? defaultSocket(path, options.readOnly ?? false);
  } else if (transport === 'ssh') {
    // The remote machine's socket: its session socket cannot be known from here.
    socketPath =
      url.searchParams.get('socket') ?? `${RUN_DIR}/libvirt-sock${options.readOnly ? '-ro' : ''}`;
  }
  return { uri, driver, transport, host, port, user, path, socketPath, params, name };
}

function defaultSocket(path: string, readOnly: boolean): string {
  if (path === '/session') {
    const runtime = process.env.XDG_RUNTIME_DIR ?? `/run/user/${process.getuid?.() ?? 0}`;
    return `${runtime}/libvirt/libvirt-sock`;
  }
  return `${RUN_DIR}/libvirt-sock${readOnly ? '-ro' : ''}`;
}

/**
 * The transport a URI names, authenticating with `credentials` where it needs
 * any; `readOnly` reaches the far end where a transport runs something there
 * (virt-ssh-helper's `-r`).
 */
export function transportFor(
  u: LibvirtUri,
  credentials: TransportCredentials = {},
  options: { readOnly?: boolean } = {},
): Transport {
  switch (u.transport) {
    case 'unix':
      return new UnixTransport(u.socketPath!);
    case 'tcp':
      return new TcpTransport(u.host!, u.port!);
    case 'tls':
      return new TlsTransport(u.host!, u.port!, credentials.tls ?? tlsCredentialsFromUri(u));
    case 'ssh':
      return new SshTransport(u, credentials.ssh ?? sshCredentialsFromUri(u), {
        readOnly: options.readOnly ?? false,
      });
  }
}

/**
 * Query parameters whose values are credentials, removed by `redactUri`: a
 * name in this set, or one containing `pass`, `secret` or `token` (`keyfile`
 * and the other transport parameters name files, not secrets).
 */
const CREDENTIAL_PARAMS = new Set(['password', 'passwd', 'pass', 'pwd', 'key', 'secret', 'token']);
const CREDENTIAL_PARAM_PARTS = /pass|secret|token|credential|api_?key|private_?key/i;

/** Whether a URI query parameter named `name` carries a credential. */
export function isCredentialParam(name: string): boolean {
  const lower = name.toLowerCase();
  return CREDENTIAL_PARAMS.has(lower) || CREDENTIAL_PARAM_PARTS.test(lower);
}

/**
 * The URI with its credentials replaced by `***`, safe for logs, errors and
 * API responses: the password of its userinfo (`user:***@`) and the values of
 * credential query parameters (`?password=***`). The rest is kept as written.
 * Works on text, so a URI that does not parse is redacted too.
 */
export function redactUri(uri: string, marker = '***'): string {
  // scheme://user:password@host… : from the first ':' of the userinfo to its last '@'
  // (an unencoded '?' or '#' in the password errs towards removing too much).
  const withoutPassword = uri.replace(
    /^([a-z][a-z0-9+.-]*:\/\/[^/:@?#]*):[^/]*@/i,
    `$1:${marker}@`,
  );
  const q = withoutPassword.search(/[?#]/);
  const head = q < 0 ? withoutPassword : withoutPassword.slice(0, q);
  const tail = q < 0 ? '' : withoutPassword.slice(q);
  if (tail === '') return head;
  const hash = tail.indexOf('#');
  const query = hash < 0 ? tail : tail.slice(0, hash);
  const fragment = hash < 0 ? '' : tail.slice(hash);
  const params = query
    .slice(1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      const name = pair.slice(0, eq);
      if (isCredentialParam(safeDecode(name))) return `${name}=${marker}`;
      // A URI given as a parameter (`?name=qemu+tcp://user:password@host/system`).
      const value = safeDecode(pair.slice(eq + 1));
      const inner = value.includes('://') ? redactUri(value, marker) : value;
      return inner === value ? pair : `${name}=${encodeURIComponent(inner)}`;
    });
  return `${head}${query.startsWith('?') ? `?${params.join('&')}` : query}${fragment}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}
