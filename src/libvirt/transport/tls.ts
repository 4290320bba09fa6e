import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { posix } from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { ConnectError } from '../errors.js';
import type { TlsCredentials } from './credentials.js';
import type { Transport } from './transport.js';

/**
 * `qemu+tls://`: TLS over TCP as libvirt's own client does it
 * (virNetClientSetTLSSession). The handshake proves the server to us: its
 * certificate must chain to our CA, be within its dates and name the host
 * of the URI. The daemon checks our certificate only after the handshake
 * (its CA, its dates, `tls_allowed_dn_list`) and then either sends one byte,
 * `\1`, or hangs up. So a connection counts as open only once that byte came;
 * an end before it means the daemon refused our certificate.
 */
export class TlsTransport implements Transport {
  readonly description: string;
  /** A write is a TLS record; libvirtd reads one packet of a record (see RpcConnectionOptions). */
  readonly packetPerWrite = true;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly credentials: TlsCredentials,
  ) {
    this.description = `tls:${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  async connect(timeoutMs: number): Promise<Duplex> {
    checkOwnCertificate(this.credentials.cert);
    const deadline = new Deadline(this.description, timeoutMs);
    let socket: tls.TLSSocket | undefined;
    try {
      socket = await deadline.race(() => this.handshake((s) => (socket = s)));
      this.verifyServer(socket);
      await deadline.race(() => readConfirmation(socket!, this.description));
      socket.off('error', untilHandedOver);
      socket.setKeepAlive(true, 30_000);
      socket.setNoDelay(true);
      return socket;
    } catch (err) {
      socket?.destroy();
      throw err;
    } finally {
      deadline.clear();
    }
  }

  /** TCP, then the TLS handshake; the server's certificate is judged afterwards, by us. */
  private handshake(opened: (socket: tls.TLSSocket) => void): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      let socket: tls.TLSSocket;
      try {
        socket = tls.connect({
          host: this.host,
          port: this.port,
          // SNI takes names only, never an address.
          ...(isIP(this.host) === 0 ? { servername: this.host } : {}),
          ca: this.credentials.ca,
          cert: this.credentials.cert,
          key: this.credentials.key,
          ...(this.credentials.passphrase !== undefined
            ? { passphrase: this.credentials.passphrase }
            : {}),
          minVersion: 'TLSv1.2',
          // Checked in verifyServer, so each refusal says what was wrong.
          rejectUnauthorized: false,
        });
      } catch (err) {
        reject(credentialError(err as NodeJS.ErrnoException));
        return;
      }
      opened(socket);
      const onError = (err: NodeJS.ErrnoException): void => {
        socket.destroy();
        reject(
          new ConnectError(
            `TLS handshake with ${this.description} failed: ${err.code ?? err.message}`,
            { cause: err },
          ),
        );
      };
      socket.once('error', onError);
      socket.once('secureConnect', () => {
        socket.off('error', onError);
        // Until the connection is handed over, a late error ends in 'close', which
        // readConfirmation reports; this listener only keeps it from being unhandled.
        socket.on('error', untilHandedOver);
        resolve(socket);
      });
    });
  }

  /** The server's certificate: our CA signed it, it is within its dates, it names the host. */
  private verifyServer(socket: tls.TLSSocket): void {
    if (this.credentials.noVerify) return;
    const peer = socket.getPeerCertificate();
    // Node reports a name mismatch as an authorization error too; it gets the same words.
    const reason = socket.authorized ? null : String(socket.authorizationError ?? 'unknown');
    if (reason !== null && reason !== 'ERR_TLS_CERT_ALTNAME_INVALID') {
      throw new ConnectError(
        `server certificate not trusted: ${this.description} presented one ${describeVerifyError(reason)}`,
      );
    }
    const mismatch = tls.checkServerIdentity(this.host, peer);
    if (mismatch) {
      throw new ConnectError(
        `server certificate does not match the host: ${this.description} presented one naming ` +
          `${peer.subjectaltname || `CN=${peer.subject?.CN ?? '?'}`}, not '${this.host}'; connect by a name it holds`,
        { cause: mismatch },
      );
    }
  }
}

const untilHandedOver = (): void => undefined;

/** Waits for the daemon's verdict on our certificate: the byte `\1`, or an end. */
function readConfirmation(socket: tls.TLSSocket, description: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const refused = (detail: string): void => {
      cleanup();
      reject(
        new ConnectError(
          `client certificate refused by ${description} (${detail}): the daemon checks it against ` +
            'its CA, its dates and its tls_allowed_dn_list',
        ),
      );
    };
    const onReadable = (): void => {
      const byte = socket.read(1) as Buffer | null;
      if (byte === null) return;
      if (byte[0] !== 1) {
        refused(`it answered ${byte[0]} instead of the confirmation byte`);
        return;
      }
      cleanup();
      resolve();
    };
    const onEnd = (): void => refused('it closed the connection after the handshake');
    const onError = (err: NodeJS.ErrnoException): void =>
      refused(`the connection failed after the handshake: ${err.code ?? err.message}`);
    const cleanup = (): void => {
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
  });
}

/** libvirt's client refuses its own certificate out of its dates before connecting; so do we. */
function checkOwnCertificate(pem: string): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new ConnectError('the client certificate is not a PEM X.509 certificate', {
      cause: err,
    });
  }
  const now = Date.now();
  if (Date.parse(cert.validTo) < now) {
    throw new ConnectError(`client certificate expired on ${isoDate(cert.validTo)}`);
  }
  if (Date.parse(cert.validFrom) > now) {
    throw new ConnectError(`client certificate not valid before ${isoDate(cert.validFrom)}`);
  }
}

const isoDate = (date: string): string => new Date(Date.parse(date)).toISOString();

/** OpenSSL's verify codes, in words a person fixing the CA or the host can act on. */
function describeVerifyError(code: string): string {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return 'that has expired';
    case 'CERT_NOT_YET_VALID':
      return 'that is not valid yet';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return `not signed by the CA given (${code})`;
    default:
      return code;
  }
}

/** Key material Node could not use: a wrong passphrase, a key that is not the certificate's. */
function credentialError(err: NodeJS.ErrnoException): ConnectError {
  const text = `${err.code ?? ''} ${err.message}`;
  if (/bad decrypt|BAD_DECRYPT|bad password|PASSPHRASE/i.test(text)) {
    return new ConnectError('the client key does not open with the passphrase given', {
      cause: err,
    });
  }
  if (/KEY_VALUES_MISMATCH|key values mismatch/i.test(text)) {
    return new ConnectError('the client key is not the key of the client certificate', {
      cause: err,
    });
  }
  return new ConnectError(`the TLS credentials cannot be used: ${err.code ?? 'invalid'}`, {
    cause: err,
  });
}

/** One deadline over several steps; whatever is pending when it passes fails with it. */
class Deadline {
  private readonly timer: NodeJS.Timeout;
  private readonly expired: Promise<never>;
  private failNow: (err: Error) => void = () => undefined;

  constructor(description: string, timeoutMs: number) {
    this.expired = new Promise<never>((_, reject) => (this.failNow = reject));
    this.expired.catch(() => undefined);
    this.timer = setTimeout(
      () =>
        this.failNow(
          new ConnectError(
            `timed out after ${timeoutMs} ms connecting to ${description} (TCP, TLS handshake and the daemon's confirmation)`,
          ),
        ),
      timeoutMs,
    );
  }

  race<T>(step: () => Promise<T>): Promise<T> {
    return Promise.race([step(), this.expired]);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

/** What of a parsed URI (LibvirtUri) names the x509 files: its host and transport parameters. */
export interface TlsUriParts {
  readonly host: string | null;
  readonly params: Readonly<Record<string, string>>;
}

/** Where libvirt's client looks for its x509 files: `pkipath`, else per-user, else system-wide. */
export function tlsCredentialPaths(u: TlsUriParts): { ca: string; cert: string; key: string } {
  const dir = u.params.pkipath;
  if (dir) {
    return {
      ca: posix.join(dir, 'cacert.pem'),
      cert: posix.join(dir, 'clientcert.pem'),
      key: posix.join(dir, 'clientkey.pem'),
    };
  }
  if (process.getuid?.() !== 0) {
    const own = posix.join(homedir(), '.pki/libvirt');
    return {
      ca: posix.join(own, 'cacert.pem'),
      cert: posix.join(own, 'clientcert.pem'),
      key: posix.join(own, 'clientkey.pem'),
    };
  }
  return {
    ca: '/etc/pki/CA/cacert.pem',
    cert: '/etc/pki/libvirt/clientcert.pem',
    key: '/etc/pki/libvirt/private/clientkey.pem',
  };
}

/**
 * The credentials a URI names, read from its files, for standalone use of the
 * client (benches, scripts): the gateway's hosts get theirs from the host
 * layer, which confines the paths it reads.
 */
export function tlsCredentialsFromUri(u: TlsUriParts): TlsCredentials {
  const paths = tlsCredentialPaths(u);
  const read = (what: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConnectError(
        `cannot read the ${what} for ${u.host ?? ''}: ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        { cause: err },
      );
    }
  };
  return {
    ca: read('CA certificate', paths.ca),
    cert: read('client certificate', paths.cert),
    key: read('client key', paths.key),
    ...(u.params.no_verify === '1' ? { noVerify: true } : {}),
  };
}
