/**
 * What a host's remote transport authenticates with, and where it comes from.
 *
 * A registration may carry credentials inline (PEM certificates and keys, an
 * SSH key, known host keys) or name files on the gateway's machine. Either
 * way they are kept sealed in the host's record (AES-256-GCM under
 * VIRTGATE_SECRETS_KEY, bound to the host's name) and opened only to connect
 * or to describe them. Without registered credentials, a TLS or SSH host uses
 * what its URI names (`pkipath`, `keyfile`, `known_hosts`) or libvirt's
 * default places. Every file read here lies under HOST_CREDENTIAL_DIRS.
 *
 * Nothing secret leaves this file except as the contents handed to a
 * transport: views carry kinds, sources, subjects, expiry and fingerprints.
 */
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { posix } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import ssh2 from 'ssh2';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { SecretBox } from '#src/common/secret-box.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import {
  parseLibvirtUri,
  tlsCredentialPaths,
  type LibvirtUri,
  type SshCredentials,
  type TlsCredentials,
  type TransportCredentials,
} from '#src/libvirt/index.js';
import type { StoredHostCredentials } from './host-registry.js';
import { hasDotDot, isWithin, resolveHere } from './path-confinement.js';

/** TLS material as a registration gives it: each of the three inline (PEM) or as a file. */
export interface TlsCredentialsInput {
  caCert?: string;
  caCertFile?: string;
  clientCert?: string;
  clientCertFile?: string;
  clientKey?: string;
  clientKeyFile?: string;
  keyPassphrase?: string;
}

/** SSH material as a registration gives it. */
export interface SshCredentialsInput {
  privateKey?: string;
  privateKeyFile?: string;
  passphrase?: string;
  agentSocket?: string;
  hostKeyFingerprints?: string[];
  knownHosts?: string;
  knownHostsFile?: string;
  /** Accept the host key met at registration and pin it (admin only, at registration only). */
  trustOnFirstUse?: boolean;
}

export interface HostCredentialsInput {
  tls?: TlsCredentialsInput;
  ssh?: SshCredentialsInput;
}

/** Where one piece of material came from. */
export type CredentialSource = 'stored' | 'file' | 'uri' | 'default' | 'agent' | 'none';

export interface CertificateView {
  source: CredentialSource;
  path: string | null;
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  /** Whole days until notAfter (negative once expired). */
  daysLeft: number;
}

export interface TlsCredentialsView {
  /** false only where an admin set `no_verify=1` on the host's URI. */
  verifyServer: boolean;
  ca: CertificateView;
  clientCertificate: CertificateView;
  clientKey: { source: CredentialSource; path: string | null; encrypted: boolean };
}

export interface SshCredentialsView {
  user: string;
  privateKey: {
    source: CredentialSource;
    path: string | null;
    type: string | null;
    encrypted: boolean;
  } | null;
  agentSocket: string | null;
  hostKeys: {
    fingerprints: string[];
    knownHosts: { source: CredentialSource; path: string | null } | null;
    trustOnFirstUse: boolean;
  };
}

/** What the host view shows of a host's credentials: never a key, a passphrase or a PEM. */
export interface CredentialsView {
  kind: 'none' | 'tls' | 'ssh';
  /** Whether credentials were registered with the host (sealed in its record). */
  stored: boolean;
  tls: TlsCredentialsView | null;
  ssh: SshCredentialsView | null;
  /** Certificates within 30 days of expiry (or past it), verification turned off, … */
  warnings: string[];
  /** Why the credentials cannot be used as they are (a file gone, a key that does not open). */
  error: string | null;
}

/** A certificate within this many days of its expiry is warned about. */
export const EXPIRY_WARNING_DAYS = 30;
/** No credential file is larger than this (a CA bundle, a long known_hosts). */
const MAX_FILE_BYTES = 256 * 1024;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const DAY_MS = 86_400_000;

/** A credential that cannot be used: the field it came in, and why (never its contents). */
export class CredentialError extends Error {
  override readonly name = 'CredentialError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** The record fields this needs: a HostRecord satisfies it. */
export type { StoredHostCredentials };

export interface CredentialedHost {
  name: string;
  uri: string;
  credentials?: StoredHostCredentials;
}

interface Loaded {
  credentials: TransportCredentials;
  view: CredentialsView;
}

@Injectable()
export class HostCredentialStore {
  private readonly box: SecretBox | null;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.box = config.secretsKey ? new SecretBox(config.secretsKey) : null;
  }

  /** Whether credentials can be sealed here (VIRTGATE_SECRETS_KEY is set). */
  get canSeal(): boolean {
    return this.box !== null;
  }

  /**
   * Checks `input` for a host with `uri` (the transport it fits, each piece
   * parsing, files confined and readable, key matching certificate) and seals
   * it. CredentialError (field and reason) when something does not hold;
   * INVALID_STATE when the gateway has no key to seal with.
   */
  async seal(
    name: string,
    uri: string,
    input: HostCredentialsInput,
  ): Promise<StoredHostCredentials> {
    if (!this.box) {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        'host credentials need VIRTGATE_SECRETS_KEY set on the gateway (the base64 of 32 random bytes): they are kept encrypted with it, and this gateway has none',
      );
    }
    const parsed = parseLibvirtUri(uri);
    const kinds: ('tls' | 'ssh')[] = [];
    if (input.tls) {
      if (parsed.transport !== 'tls')
        throw new CredentialError(
          'credentials.tls',
          `TLS credentials need a qemu+tls:// URI, not ${parsed.transport}`,
        );
      kinds.push('tls');
    }
    if (input.ssh) {
      if (parsed.transport !== 'ssh')
        throw new CredentialError(
          'credentials.ssh',
          `SSH credentials need a qemu+ssh:// URI, not ${parsed.transport}`,
        );
      kinds.push('ssh');
    }
    if (kinds.length === 0) throw new CredentialError('credentials', 'give tls or ssh credentials');
    const stored: StoredHostCredentials = {
      sealed: this.box.seal(JSON.stringify(input), context(name)),
      version: randomBytes(9).toString('base64url'),
      kinds,
    };
    // A dry run: everything the connection will need is readable and fits together.
    await this.loadOrThrow({ name, uri, credentials: stored });
    return stored;
  }

  /** The registered credentials of a host, opened: for rotation and trust on first use. */
  open(host: CredentialedHost): HostCredentialsInput | null {
    if (!host.credentials) return null;
    if (!this.box) {
      throw new CredentialError(
        'credentials',
        'the host has sealed credentials, and VIRTGATE_SECRETS_KEY is not set here',
      );
    }
    try {
      return JSON.parse(
        this.box.open(host.credentials.sealed, context(host.name)),
      ) as HostCredentialsInput;
    } catch (err) {
      throw new CredentialError('credentials', (err as Error).message);
    }
  }

  /**
   * What a new connection to `host` authenticates with: the registered
   * credentials, else what the URI names, else libvirt's default places.
   * Read afresh each time, so a rotated file or record counts at once.
   * CredentialError when something cannot be read or used.
   */
  async credentialsFor(host: CredentialedHost): Promise<TransportCredentials> {
    return (await this.loadOrThrow(host)).credentials;
  }

  /** The view of `host`'s credentials; problems are in its `error`, never thrown. */
  async describe(host: CredentialedHost): Promise<CredentialsView> {
    try {
      return (await this.loadOrThrow(host)).view;
    } catch (err) {
      const kind = safeTransport(host.uri);
      return {
        kind: kind === 'tls' || kind === 'ssh' ? kind : 'none',
        stored: host.credentials !== undefined,
        tls: null,
        ssh: null,
        warnings: [],
        error: err instanceof CredentialError ? err.message : 'the credentials cannot be read',
      };
    }
  }

  private async loadOrThrow(host: CredentialedHost): Promise<Loaded> {
    const uri = parseLibvirtUri(host.uri);
    const input = this.open(host);
    if (uri.transport === 'tls') return this.loadTls(uri, input?.tls ?? null);
    if (uri.transport === 'ssh') return this.loadSsh(uri, input?.ssh ?? null);
    return {
      credentials: {},
      view: { kind: 'none', stored: false, tls: null, ssh: null, warnings: [], error: null },
    };
  }

  private async loadTls(uri: LibvirtUri, input: TlsCredentialsInput | null): Promise<Loaded> {
    const dir = uri.params.pkipath ?? null;
    const defaults = tlsCredentialPaths(uri);
    const fallback: CredentialSource = dir ? 'uri' : 'default';
    const ca = await this.piece(
      'credentials.tls.caCert',
      input?.caCert,
      input?.caCertFile,
      defaults.ca,
      fallback,
    );
    const cert = await this.piece(
      'credentials.tls.clientCert',
      input?.clientCert,
      input?.clientCertFile,
      defaults.cert,
      fallback,
    );
    const key = await this.piece(
      'credentials.tls.clientKey',
      input?.clientKey,
      input?.clientKeyFile,
      defaults.key,
      fallback,
    );
    const caCert = parseCertificate('credentials.tls.caCert', ca.text);
    const clientCert = parseCertificate('credentials.tls.clientCert', cert.text);
    const passphrase = input?.keyPassphrase;
    let keyObject;
    try {
      keyObject = createPrivateKey({ key: key.text, format: 'pem', passphrase });
    } catch {
      throw new CredentialError(
        'credentials.tls.clientKey',
        passphrase === undefined
          ? 'the client key is not a PEM private key (or it is encrypted: give keyPassphrase)'
          : 'the client key does not open: not a PEM private key, or the passphrase is wrong',
      );
    }
    if (!clientCert.checkPrivateKey(keyObject)) {
      throw new CredentialError(
        'credentials.tls.clientKey',
        'the client key does not belong to the client certificate',
      );
    }
    const noVerify = uri.params.no_verify === '1';
    const view: TlsCredentialsView = {
      verifyServer: !noVerify,
      ca: certificateView(caCert, ca),
      clientCertificate: certificateView(clientCert, cert),
      clientKey: { source: key.source, path: key.path, encrypted: /ENCRYPTED/.test(key.text) },
    };
    const warnings: string[] = [];
    if (noVerify) {
      warnings.push(
        "the server's certificate and name are not verified (no_verify=1 on the host's URI)",
      );
    }
    for (const [what, c] of [
      ['client certificate', view.clientCertificate],
      ['CA certificate', view.ca],
    ] as const) {
      const warning = expiryWarning(what, c);
      if (warning) warnings.push(warning);
    }
    const tls: TlsCredentials = {
      ca: ca.text,
      cert: cert.text,
      key: key.text,
      ...(passphrase === undefined ? {} : { passphrase }),
      ...(noVerify ? { noVerify: true } : {}),
    };
    return {
      credentials: { tls },
      view: { kind: 'tls', stored: input !== null, tls: view, ssh: null, warnings, error: null },
    };
  }

  private async loadSsh(uri: LibvirtUri, input: SshCredentialsInput | null): Promise<Loaded> {
    const home = homedir();
    let privateKey: { text: string; source: CredentialSource; path: string | null } | null = null;
    if (input?.privateKey !== undefined) {
      privateKey = { text: input.privateKey, source: 'stored', path: null };
    } else if (input?.privateKeyFile !== undefined) {
      const path = input.privateKeyFile;
      privateKey = {
        text: await this.read('credentials.ssh.privateKeyFile', path),
        source: 'file',
        path,
      };
    } else if (uri.params.keyfile !== undefined) {
      const path = uri.params.keyfile;
      privateKey = { text: await this.read('uri', path), source: 'uri', path };
    } else if (input?.agentSocket === undefined) {
      for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
        const path = posix.join(home, '.ssh', name);
        const text = await this.readIfAllowed(path);
        if (text !== null) {
          privateKey = { text, source: 'default', path };
          break;
        }
      }
    }
    const passphrase = input?.passphrase;
    let keyType: string | null = null;
    if (privateKey) {
      const parsed = ssh2.utils.parseKey(privateKey.text, passphrase);
      if (parsed instanceof Error) {
        throw new CredentialError(
          privateKey.source === 'stored'
            ? 'credentials.ssh.privateKey'
            : 'credentials.ssh.privateKeyFile',
          /encrypted|passphrase/i.test(parsed.message)
            ? passphrase === undefined
              ? 'the SSH private key is encrypted: give its passphrase'
              : 'the SSH private key does not open with this passphrase'
            : 'not an SSH private key (OpenSSH, PEM or PPK)',
        );
      }
      keyType = (Array.isArray(parsed) ? parsed[0] : parsed)?.type ?? null;
    }
    const agentSocket = input?.agentSocket ?? null;
    if (agentSocket !== null) await this.confine('credentials.ssh.agentSocket', agentSocket);
    if (!privateKey && agentSocket === null) {
      throw new CredentialError(
        'credentials.ssh',
        `no SSH key for this host: give privateKey, privateKeyFile or agentSocket, or ?keyfile= on the URI (looked in ${posix.join(home, '.ssh')})`,
      );
    }
    const fingerprints = input?.hostKeyFingerprints ?? [];
    for (const fp of fingerprints) {
      if (!FINGERPRINT.test(fp)) {
        throw new CredentialError(
          'credentials.ssh.hostKeyFingerprints',
          `'${fp.slice(0, 60)}' is not a host key fingerprint as OpenSSH prints it (SHA256:<43 base64 characters>)`,
        );
      }
    }
    let knownHosts: { text: string; source: CredentialSource; path: string | null } | null = null;
    if (input?.knownHosts !== undefined) {
      knownHosts = { text: input.knownHosts, source: 'stored', path: null };
    } else if (input?.knownHostsFile !== undefined) {
      const path = input.knownHostsFile;
      knownHosts = {
        text: await this.read('credentials.ssh.knownHostsFile', path),
        source: 'file',
        path,
      };
    } else if (uri.params.known_hosts !== undefined) {
      const path = uri.params.known_hosts;
      knownHosts = { text: await this.read('uri', path), source: 'uri', path };
    } else if (fingerprints.length === 0) {
      const path = posix.join(home, '.ssh', 'known_hosts');
      const text = await this.readIfAllowed(path);
      if (text !== null) knownHosts = { text, source: 'default', path };
    }
    const verify = uri.params.known_hosts_verify;
    if (verify !== undefined && verify !== 'normal') {
      throw new CredentialError(
        'uri',
        `known_hosts_verify=${verify} is not accepted: an unknown host key is refused; pin it (hostKeyFingerprints) or ask for trustOnFirstUse at registration`,
      );
    }
    const trustOnFirstUse = input?.trustOnFirstUse === true;
    if (fingerprints.length === 0 && !knownHosts && !trustOnFirstUse) {
      throw new CredentialError(
        'credentials.ssh',
        "no way to verify the host's key: give hostKeyFingerprints, knownHosts or knownHostsFile (or ask for trustOnFirstUse)",
      );
    }
    const user = uri.user ?? (process.env.USER || 'root');
    const view: SshCredentialsView = {
      user,
      privateKey: privateKey && {
        source: privateKey.source,
        path: privateKey.path,
        type: keyType,
        encrypted: passphrase !== undefined,
      },
      agentSocket,
      hostKeys: {
        fingerprints: [...fingerprints],
        knownHosts: knownHosts && { source: knownHosts.source, path: knownHosts.path },
        trustOnFirstUse,
      },
    };
    const warnings = trustOnFirstUse
      ? ["the host's key is not pinned yet: the first key met will be trusted"]
      : [];
    const ssh: SshCredentials = {
      ...(privateKey ? { privateKey: privateKey.text } : {}),
      ...(passphrase === undefined ? {} : { passphrase }),
      ...(agentSocket === null ? {} : { agentSocket }),
      ...(fingerprints.length > 0 ? { hostKeyFingerprints: fingerprints } : {}),
      ...(knownHosts ? { knownHosts: knownHosts.text } : {}),
      ...(trustOnFirstUse ? { trustOnFirstUse } : {}),
    };
    return {
      credentials: { ssh },
      view: { kind: 'ssh', stored: input !== null, tls: null, ssh: view, warnings, error: null },
    };
  }

  /** One piece of TLS material: inline, a named file, or the URI's / libvirt's default file. */
  private async piece(
    field: string,
    inline: string | undefined,
    file: string | undefined,
    fallbackPath: string,
    fallbackSource: CredentialSource,
  ): Promise<{ text: string; source: CredentialSource; path: string | null }> {
    if (inline !== undefined && file !== undefined) {
      throw new CredentialError(
        field,
        `give either ${field.split('.').pop()} or its File, not both`,
      );
    }
    if (inline !== undefined) return { text: inline, source: 'stored', path: null };
    if (file !== undefined)
      return { text: await this.read(`${field}File`, file), source: 'file', path: file };
    return {
      text: await this.read(fallbackSource === 'uri' ? 'uri' : field, fallbackPath),
      source: fallbackSource,
      path: fallbackPath,
    };
  }

  /** The realpath of `path` when it lies under one of HOST_CREDENTIAL_DIRS; CredentialError otherwise. */
  private async confine(field: string, path: string): Promise<string> {
    if (!posix.isAbsolute(path) || hasDotDot(path)) {
      throw new CredentialError(field, `${path} must be an absolute path without '..'`);
    }
    let real: string;
    try {
      real = await resolveHere(path);
    } catch (err) {
      throw new CredentialError(field, (err as Error).message);
    }
    const roots = this.config.hostCredentialDirs;
    if (!roots.some((root) => isWithin(real, root))) {
      throw new CredentialError(
        field,
        `${path} is outside the directories host credentials may be read from (HOST_CREDENTIAL_DIRS: ${roots.join(', ')})`,
      );
    }
    return real;
  }

  private async read(field: string, path: string): Promise<string> {
    const real = await this.confine(field, path);
    try {
      const info = await stat(real);
      if (!info.isFile()) throw new CredentialError(field, `${path} is not a file`);
      if (info.size > MAX_FILE_BYTES) {
        throw new CredentialError(field, `${path} is larger than ${MAX_FILE_BYTES} bytes`);
      }
      return await readFile(real, 'utf8');
    } catch (err) {
      if (err instanceof CredentialError) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new CredentialError(field, `${path} cannot be read (${code})`);
    }
  }

  /** A default file, when it exists and may be read; null otherwise. */
  private async readIfAllowed(path: string): Promise<string | null> {
    try {
      return await this.read('default', path);
    } catch {
      return null;
    }
  }
}

/** What a sealed value is bound to: another host's record does not open it. */
function context(name: string): string {
  return `host:${name}`;
}

function safeTransport(uri: string): string | null {
  try {
    return parseLibvirtUri(uri).transport;
  } catch {
    return null;
  }
}

function parseCertificate(field: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new CredentialError(field, 'not a PEM certificate');
  }
}

function certificateView(
  cert: X509Certificate,
  from: { source: CredentialSource; path: string | null },
): CertificateView {
  const notAfter = new Date(cert.validTo);
  return {
    source: from.source,
    path: from.path,
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.floor((notAfter.getTime() - Date.now()) / DAY_MS),
  };
}

/** Node prints a DN one attribute per line: `CN=a\nO=b` becomes `CN=a, O=b`. */
function oneLine(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

/** The warning for a certificate expired or within EXPIRY_WARNING_DAYS of it; null otherwise. */
export function expiryWarning(what: string, cert: CertificateView): string | null {
  if (cert.daysLeft < 0) return `the ${what} (${cert.subject}) expired on ${cert.notAfter}`;
  if (cert.daysLeft <= EXPIRY_WARNING_DAYS) {
    return `the ${what} (${cert.subject}) expires in ${cert.daysLeft} days, on ${cert.notAfter}`;
  }
  return null;
}
