/**
 * `qemu+ssh://`: libvirt's RPC through an SSH exec channel, as libvirt's own
 * client does it, but with ssh2 in-process instead of spawning `ssh`: the host
 * key is checked against pins or known_hosts before any credential is sent,
 * then the key or agent logs in, then the server runs netcat or
 * virt-ssh-helper (ssh-command.ts) and the channel carries the RPC bytes.
 */
import { readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { AuthMethod, ClientChannel, ParsedKey } from 'ssh2';
import { ConnectError, ConnectionClosedError, UriError } from '../errors.js';
import type { SshCredentials } from './credentials.js';
import { decideHostKey, hostKeyFingerprint } from './host-keys.js';
import { parseProxyMode, remoteProxyCommand } from './ssh-command.js';
import type { Transport } from './transport.js';

/**
 * What the transport needs of a parsed `qemu+ssh://` URI (a LibvirtUri fits;
 * not imported from uri.ts, which imports this file).
 */
export interface SshTarget {
  readonly host: string | null;
  readonly port: number | null;
  /** null: the local user name, as libvirt's ssh does. */
  readonly user: string | null;
  /** The daemon's socket on the server. */
  readonly socketPath: string | null;
  /** The name sent in CONNECT_OPEN, which virt-ssh-helper opens on the server. */
  readonly name: string;
  readonly params: Readonly<Record<string, string>>;
}

/** The end of the remote command's stderr kept for errors: enough for a shell's complaint. */
const STDERR_KEPT = 2048;

export interface SshTransportOptions {
  /** SSH-level keepalive: a request every `intervalMs` (0 disables)… */
  readonly keepaliveIntervalMs?: number;
  /** …and the link dropped after this many unanswered ones. */
  readonly keepaliveCountMax?: number;
  /** virt-ssh-helper's `-r`. */
  readonly readOnly?: boolean;
}

/** Where a connection attempt is, for the timeout message. */
type Stage =
  | 'connecting over TCP'
  | 'waiting for the SSH handshake'
  | 'authenticating'
  | 'opening the channel';

export class SshTransport implements Transport {
  readonly description: string;
  private readonly user: string;
  private readonly host: string;
  private readonly port: number;
  private readonly command: string;

  constructor(
    uri: SshTarget,
    private readonly credentials: SshCredentials,
    private readonly options: SshTransportOptions = {},
  ) {
    this.host = uri.host!;
    this.port = uri.port!;
    this.user = uri.user ?? os.userInfo().username;
    const hostPart = this.host.includes(':') ? `[${this.host}]` : this.host;
    this.description = `ssh:${this.user}@${hostPart}:${this.port}`;
    this.command = remoteProxyCommand({
      proxy: parseProxyMode(uri.params.proxy),
      ...(uri.params.netcat !== undefined ? { netcat: uri.params.netcat } : {}),
      socketPath: uri.socketPath!,
      name: uri.name,
      readOnly: options.readOnly ?? false,
    });
  }

  /**
   * Logs in, then opens the exec channel; one deadline covers TCP, the SSH
   * handshake, authentication and the channel, so a peer that accepts TCP and
   * says nothing fails within `timeoutMs`.
   */
  async connect(timeoutMs: number): Promise<Duplex> {
    const deadline = Date.now() + timeoutMs;
    const key = this.parsePrivateKey();
    const client = await this.logIn(key, this.authMethods(key), timeoutMs);
    const channel = await this.openChannel(client, deadline, timeoutMs);
    return new SshChannelStream(client, channel, this.description);
  }

  /** An authenticated SSH connection, the host key checked before any credential went out. */
  private logIn(
    key: ParsedKey | undefined,
    methods: AuthMethod[],
    timeoutMs: number,
  ): Promise<ssh2.Client> {
    return new Promise((resolve, reject) => {
      const client = new ssh2.Client();
      let stage: Stage = 'connecting over TCP';
      let refusal: string | undefined;
      const settle = watchAttempt(
        client,
        timeoutMs,
        reject,
        () => new ConnectError(`timed out after ${timeoutMs} ms ${stage} to ${this.description}`),
      );
      client.on('connect', () => (stage = 'waiting for the SSH handshake'));
      client.on('handshake', () => (stage = 'authenticating'));
      client.on('error', (err) => settle.fail(this.connectError(err, refusal, key)));
      client.on('close', () =>
        settle.fail(new ConnectError(`${this.description} closed the connection while ${stage}`)),
      );
      client.on('ready', () => settle.succeed(() => resolve(client)));
      client.connect({
        host: this.host,
        port: this.port,
        username: this.user,
        // Ours fires first with the stage in its message; ssh2's is a backstop.
        readyTimeout: timeoutMs + 1000,
        keepaliveInterval: this.options.keepaliveIntervalMs ?? 10_000,
        keepaliveCountMax: this.options.keepaliveCountMax ?? 3,
        hostVerifier: (blob: Buffer): boolean => {
          refusal = this.verifyHostKey(blob);
          return refusal === undefined;
        },
        authHandler: methods,
      });
    });
  }

  /** Why the offered host key is refused, or undefined when it is accepted (and reported). */
  private verifyHostKey(blob: Buffer): string | undefined {
    const decision = decideHostKey(this.credentials, this.host, this.port, blob);
    if (!decision.accepted) return decision.reason;
    try {
      this.credentials.onHostKey?.(decision.fingerprint, decision.keyType);
    } catch {
      return `host key ${decision.fingerprint} accepted, but recording it failed`;
    }
    return undefined;
  }

  /** The exec channel running the libvirt proxy, within what is left of the deadline. */
  private openChannel(
    client: ssh2.Client,
    deadline: number,
    timeoutMs: number,
  ): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      const settle = watchAttempt(
        client,
        Math.max(0, deadline - Date.now()),
        reject,
        () =>
          new ConnectError(
            `timed out after ${timeoutMs} ms opening the channel to ${this.description}`,
          ),
      );
      const lost = (err?: Error): void =>
        settle.fail(
          new ConnectError(
            `${this.description} closed the connection while opening the channel` +
              (err ? `: ${err.message}` : ''),
            { cause: err },
          ),
        );
      client.on('error', lost);
      client.on('close', lost);
      client.exec(this.command, (err, channel) => {
        if (err) {
          settle.fail(
            new ConnectError(
              `${this.description} refused to run the libvirt proxy: ${err.message}`,
              {
                cause: err,
              },
            ),
          );
          return;
        }
        settle.succeed(
          () => resolve(channel),
          () => channel.close(),
        );
      });
    });
  }

  /** The private key, decrypted now: a wrong passphrase is said before any network traffic. */
  private parsePrivateKey(): ParsedKey | undefined {
    const { privateKey, passphrase } = this.credentials;
    if (privateKey === undefined) return undefined;
    const parsed = ssh2.utils.parseKey(privateKey, passphrase);
    if (parsed instanceof Error) {
      const encrypted = /encrypted|passphrase|decrypt/i.test(parsed.message);
      throw new ConnectError(
        encrypted
          ? passphrase === undefined
            ? `the SSH private key for ${this.description} is encrypted and no passphrase was given`
            : `the SSH private key for ${this.description} cannot be decrypted: wrong passphrase`
          : `the SSH private key for ${this.description} cannot be read (not an OpenSSH or PEM private key)`,
      );
    }
    const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
    if (key === undefined || !key.isPrivateKey()) {
      throw new ConnectError(`the SSH private key for ${this.description} holds no private key`);
    }
    return key;
  }

  /** The key first, then the agent: each one the credentials hold, tried in that order. */
  private authMethods(key: ParsedKey | undefined): AuthMethod[] {
    const methods: AuthMethod[] = [];
    const username = this.user;
    if (key !== undefined) methods.push({ type: 'publickey', username, key } as AuthMethod);
    if (this.credentials.agentSocket !== undefined) {
      methods.push({ type: 'agent', username, agent: this.credentials.agentSocket } as AuthMethod);
    }
    if (methods.length === 0) {
      throw new ConnectError(
        `no SSH key and no agent to log in to ${this.description} with (give a key, or keyfile= / SSH_AUTH_SOCK)`,
      );
    }
    return methods;
  }

  /** An ssh2 error as a ConnectError that says what to check, never with key material. */
  private connectError(
    err: Error & { level?: string },
    refusal: string | undefined,
    key: ParsedKey | undefined,
  ): ConnectError {
    if (refusal !== undefined) return new ConnectError(`${this.description}: ${refusal}`);
    if (err.level === 'client-authentication') {
      const which = key
        ? `${key.type} ${hostKeyFingerprint(key.getPublicSSH())}`
        : this.credentials.agentSocket !== undefined
          ? 'from the agent'
          : '';
      return new ConnectError(
        `authentication failed: the server refused key ${which} for user ${this.user} at ` +
          `${this.description}: check the user and authorized_keys`,
      );
    }
    const code = (err as NodeJS.ErrnoException).code;
    return new ConnectError(`cannot connect to ${this.description}: ${code ?? err.message}`, {
      cause: err,
    });
  }
}

/** Settles one step of a connection attempt exactly once. */
interface AttemptSettler {
  /** Gives up: the connection is dropped and the step rejects with `err`. */
  fail(err: Error): void;
  /** Succeeds (unless already settled: then `undo` cleans up what came too late). */
  succeed(done: () => void, undo?: () => void): void;
}

/**
 * The bookkeeping of one step of a connection attempt on `client`: a timer
 * that fails it after `ms` with `onTimeout()`'s error, failure dropping the
 * connection, and the step's listeners removed when it settles (the next
 * step, or the stream, adds its own).
 */
function watchAttempt(
  client: ssh2.Client,
  ms: number,
  reject: (err: Error) => void,
  onTimeout: () => Error,
): AttemptSettler {
  let settled = false;
  const before = new Set(['error', 'close'].flatMap((e) => client.listeners(e)));
  const finish = (): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    for (const event of ['error', 'close', 'connect', 'handshake', 'ready'] as const) {
      for (const listener of client.listeners(event)) {
        if (!before.has(listener)) client.removeListener(event, listener as () => void);
      }
    }
    return true;
  };
  const settler: AttemptSettler = {
    fail(err) {
      if (!finish()) return;
      client.on('error', () => undefined); // late errors of a connection given up on
      client.end();
      client.destroy();
      reject(err);
    },
    succeed(done, undo) {
      if (finish()) done();
      else undo?.();
    },
  };
  const timer = setTimeout(() => settler.fail(onTimeout()), ms);
  return settler;
}

/**
 * The exec channel as a plain Duplex (ssh2's Channel does not follow
 * stream.destroy's contract): bytes both ways with backpressure; destroying
 * or ending it closes the channel and the SSH connection; the remote
 * command's stderr is kept and named when the channel ends before the daemon
 * said anything (nc missing, socket absent, daemon down).
 */
class SshChannelStream extends Duplex {
  private stderr = '';
  private received = false;
  private exit: string | undefined;

  constructor(
    private readonly client: ssh2.Client,
    private readonly channel: ClientChannel,
    private readonly description: string,
  ) {
    super({ allowHalfOpen: false });
    channel.on('data', (chunk: Buffer) => {
      this.received = true;
      if (!this.push(chunk)) channel.pause();
    });
    channel.stderr.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-STDERR_KEPT);
    });
    channel.on('exit', (code: number | null, signal?: string) => {
      this.exit = code !== null ? `exited with status ${code}` : `was killed by ${signal}`;
    });
    // Before any byte from the daemon, the end waits for 'close': its error carries the stderr.
    channel.on('end', () => {
      if (this.received) this.push(null);
    });
    channel.on('close', () => this.destroy(this.closeReason()));
    client.on('error', (err) =>
      this.destroy(new ConnectionClosedError(`${description}: ${err.message}`, { cause: err })),
    );
    client.on('close', () => this.destroy());
  }

  /** Why the channel closed, when the remote side gave one. */
  private closeReason(): Error | undefined {
    const stderr = this.stderr.trim();
    if (this.received && stderr === '') return undefined;
    const what = `the libvirt proxy on ${this.description} ${this.exit ?? 'closed its channel'}`;
    const detail = stderr === '' ? '' : `: ${stderr}`;
    return this.received
      ? new ConnectionClosedError(`${what}${detail}`)
      : new ConnectError(`${what} before the daemon answered${detail}`);
  }

  override _read(): void {
    this.channel.resume();
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    if (this.channel.write(chunk)) callback();
    else this.channel.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.channel.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.channel.close();
    this.client.end();
    callback(error);
  }
}

/** The key files libvirt's ssh transports try when no `keyfile=` is given, in order. */
const DEFAULT_KEY_FILES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** Where sshCredentialsFromUri looks: the process's environment and home unless told otherwise. */
export interface SshDefaultsContext {
  readonly env?: NodeJS.ProcessEnv;
  readonly home?: string;
}

/**
 * Credentials for a URI used on its own (bench, CLI, tests) with no host layer
 * to supply them, read as libvirt reads them: `keyfile=` or the first of
 * ~/.ssh/id_ed25519, id_ecdsa, id_rsa; `known_hosts=` or ~/.ssh/known_hosts;
 * $SSH_AUTH_SOCK for the agent; `sshauth=` narrows these to the methods it
 * lists (`privkey`, `agent`); `known_hosts_verify=auto` trusts a new host on
 * first use (`ignore` is refused: this client never skips the check).
 */
export function sshCredentialsFromUri(
  u: SshTarget,
  context: SshDefaultsContext = {},
): SshCredentials {
  const env = context.env ?? process.env;
  const home = context.home ?? os.homedir();
  const allowed = allowedAuthMethods(u.params.sshauth);
  const keyFile = allowed.has('privkey') ? keyFileFor(u, home) : undefined;
  const agentSocket = allowed.has('agent') ? env.SSH_AUTH_SOCK || undefined : undefined;
  const knownHosts = knownHostsFor(u, home);
  return {
    ...(keyFile !== undefined ? { privateKey: readText(keyFile, 'keyfile') } : {}),
    ...(agentSocket !== undefined ? { agentSocket } : {}),
    ...(knownHosts !== undefined ? { knownHosts } : {}),
    trustOnFirstUse: trustsOnFirstUse(u.params.known_hosts_verify),
  };
}

/** The methods of `sshauth=` this client has; all of them when it is absent. */
function allowedAuthMethods(sshauth: string | undefined): Set<string> {
  if (sshauth === undefined) return new Set(['privkey', 'agent']);
  const listed = new Set(sshauth.split(',').map((m) => m.trim()));
  const usable = new Set([...listed].filter((m) => m === 'privkey' || m === 'agent'));
  if (usable.size === 0) {
    throw new UriError(`sshauth=${sshauth} names no method this client has (privkey, agent)`);
  }
  return usable;
}

/** `keyfile=`, else the first of libvirt's default key files that exists. */
function keyFileFor(u: SshTarget, home: string): string | undefined {
  if (u.params.keyfile !== undefined) return u.params.keyfile;
  return DEFAULT_KEY_FILES.map((f) => path.join(home, '.ssh', f)).find((f) => existsSync(f));
}

/** The text of `known_hosts=` (which must be readable), else of ~/.ssh/known_hosts if any. */
function knownHostsFor(u: SshTarget, home: string): string | undefined {
  if (u.params.known_hosts !== undefined) return readText(u.params.known_hosts, 'known_hosts');
  const fallback = path.join(home, '.ssh', 'known_hosts');
  return existsSync(fallback) ? readText(fallback, 'known_hosts') : undefined;
}

/** libvirt's `known_hosts_verify`: `normal` (the default) or `auto`; `ignore` is refused. */
function trustsOnFirstUse(verify: string | undefined): boolean {
  if (verify === undefined || verify === 'normal') return false;
  if (verify === 'auto') return true;
  throw new UriError(
    `known_hosts_verify=${verify} is not supported (use normal, or auto to trust a new host once)`,
  );
}

/** A file named by the URI, its error naming the parameter and path (never the contents). */
function readText(file: string, param: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UriError(`cannot read the ${param} file ${file}: ${code}`);
  }
}
