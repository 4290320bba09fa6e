/**
 * qemu+ssh:// against the real sshd of scripts/services.sh (127.0.0.1:2222,
 * keys and known_hosts in SSH_DIR) and, through it, the real system libvirtd:
 * what works (keys, passphrases, pins, known_hosts plain and hashed, TOFU,
 * both proxy modes, standalone URIs) and what is refused, with which message.
 * Only the silent peer is fake: a real sshd always speaks.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  ConnectError,
  LibvirtClient,
  SshTransport,
  parseLibvirtUri,
  type SshCredentials,
} from '#src/libvirt/index.js';
import { SSH_DIR, SSH_PORT } from '../support/services.js';
import { tcgDomainXml } from '../support/domain-xml.js';
import { Forwarder } from '../support/forwarder.js';
import { waitFor } from '../support/wait.js';
import { holdExclusive } from '../support/exclusive.js';

const URI = `qemu+ssh://root@127.0.0.1:${SSH_PORT}/system`;
const LOCAL_URI = 'qemu:///system';

const file = (name: string): string => readFileSync(path.join(SSH_DIR, name), 'utf8');
const CLIENT_KEY = file('client_ed25519');
const RSA_KEY = file('client_rsa_pass');
const RSA_PASSPHRASE = file('client_rsa_pass.passphrase').trim();
const STRANGER_KEY = file('stranger_ed25519');
const KNOWN_HOSTS = file('known_hosts');

/** The server's fingerprint as OpenSSH prints it, from its public host key. */
function sshKeygenFingerprint(pubFile: string): string {
  const out = execFileSync('ssh-keygen', ['-lf', pubFile]).toString();
  return out.split(' ')[1]!;
}
const HOST_FINGERPRINT = sshKeygenFingerprint(path.join(SSH_DIR, 'ssh_host_ed25519_key.pub'));

async function withSsh<T>(
  uri: string,
  credentials: SshCredentials | undefined,
  body: (c: LibvirtClient) => Promise<T>,
): Promise<T> {
  const c = await LibvirtClient.connect(
    uri,
    credentials ? { credentials: { ssh: credentials } } : {},
  );
  try {
    return await body(c);
  } finally {
    await c.close();
  }
}

/** Connecting must fail with a ConnectError; returns it for the message checks. */
async function refused(
  uri: string,
  credentials: SshCredentials,
  connectTimeoutMs = 10_000,
): Promise<ConnectError> {
  const err = await LibvirtClient.connect(uri, {
    credentials: { ssh: credentials },
    connectTimeoutMs,
  }).then(
    async (c) => {
      await c.close();
      return null;
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConnectError, `expected a ConnectError, got ${String(err)}`);
  assertNoSecret(err.message);
  return err;
}

/** No error says a private key or a passphrase. */
function assertNoSecret(message: string): void {
  for (const secret of [RSA_PASSPHRASE, CLIENT_KEY, RSA_KEY, STRANGER_KEY]) {
    assert.ok(!message.includes(secret.trim()), 'an error carries a secret');
  }
  assert.ok(!/PRIVATE KEY/.test(message), 'an error carries a private key');
}

/** Processes on this machine (the server side) whose command line matches. */
function pgrep(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern]).toString().trim().split('\n').map(Number);
  } catch {
    return [];
  }
}

const SSHD_LOG = path.join(SSH_DIR, 'sshd.log');
/** What sshd logged after byte `offset` of its log. */
function sshdLogSince(offset: number): string {
  return readFileSync(SSHD_LOG).subarray(offset).toString('utf8');
}

const NC_PATTERN = '^nc .*-U /var/run/libvirt/libvirt-sock';
const HELPER_PATTERN = '^virt-ssh-helper ';
const SSHD_SESSION_PATTERN = '^sshd: root@notty';

// The sshd's process list is read whole here (nc, virt-ssh-helper, sessions): files
// that open sessions on it take turns (test/e2e/remote-hosts.test.ts is the other).
let releaseSshd: (() => void) | undefined;
before(async () => {
  releaseSshd = await holdExclusive('sshd');
});
after(() => releaseSshd?.());

describe(`qemu+ssh:// to the local sshd (${URI})`, () => {
  const keyed: SshCredentials = { privateKey: CLIENT_KEY, knownHosts: KNOWN_HOSTS };

  it('lists what qemu:///system lists: same daemon, same hostname, version and domains', async () => {
    const name = `ssh-${randomUUID().slice(0, 8)}`;
    const local = await LibvirtClient.connect(LOCAL_URI);
    const { dom } = await local.rpc.domainDefineXmlFlags({
      xml: tcgDomainXml(name, `/var/lib/libvirt/images/${name}.qcow2`),
      flags: 0,
    });
    try {
      await withSsh(URI, keyed, async (c) => {
        assert.equal(
          (await c.rpc.connectGetHostname()).hostname,
          (await local.rpc.connectGetHostname()).hostname,
        );
        assert.equal(
          (await c.rpc.connectGetLibVersion()).libVer,
          (await local.rpc.connectGetLibVersion()).libVer,
        );
        assert.equal((await c.rpc.connectGetType()).type, 'QEMU');
        assert.equal((await c.rpc.connectGetUri()).uri, 'qemu:///system');
        const { domains } = await c.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
        const found = domains.find((d) => d.name === name);
        assert.ok(found, 'the domain defined over the UNIX socket is listed over ssh');
        assert.deepEqual(found, dom);
      });
    } finally {
      await local.rpc.domainUndefineFlags({ dom, flags: 0 });
      await local.close();
    }
  });

  it('accepts a pinned fingerprint with no known_hosts at all', () =>
    withSsh(URI, { privateKey: CLIENT_KEY, hostKeyFingerprints: [HOST_FINGERPRINT] }, async (c) => {
      assert.ok((await c.rpc.connectGetHostname()).hostname.length > 0);
    }));

  it('logs in with the passphrase-protected RSA key', () =>
    withSsh(
      URI,
      { privateKey: RSA_KEY, passphrase: RSA_PASSPHRASE, knownHosts: KNOWN_HOSTS },
      async (c) => {
        assert.ok((await c.rpc.connectGetLibVersion()).libVer > 0);
      },
    ));

  it('says a wrong or missing passphrase is one, without saying it', async () => {
    const wrong = await refused(URI, {
      privateKey: RSA_KEY,
      passphrase: `${RSA_PASSPHRASE}x`,
      knownHosts: KNOWN_HOSTS,
    });
    assert.match(wrong.message, /cannot be decrypted: wrong passphrase/);
    assert.ok(!wrong.message.includes(`${RSA_PASSPHRASE}x`));
    const missing = await refused(URI, { privateKey: RSA_KEY, knownHosts: KNOWN_HOSTS });
    assert.match(missing.message, /encrypted and no passphrase was given/);
  });

  for (const [proxy, pattern, absent] of [
    ['netcat', NC_PATTERN, HELPER_PATTERN],
    ['native', HELPER_PATTERN, NC_PATTERN],
  ] as const) {
    it(`proxy=${proxy} runs ${proxy === 'netcat' ? 'nc -U' : 'virt-ssh-helper'} on the server`, () =>
      withSsh(`${URI}?proxy=${proxy}`, keyed, async (c) => {
        assert.ok((await c.rpc.connectGetHostname()).hostname.length > 0);
        assert.ok(pgrep(pattern).length > 0, `a process matching ${pattern} serves the channel`);
        assert.equal(pgrep(absent).length, 0, `no process matching ${absent}`);
      }));
  }

  it('proxy=auto uses virt-ssh-helper, which Debian’s libvirt-daemon ships', () =>
    withSsh(URI, keyed, async (c) => {
      await c.rpc.connectGetHostname();
      assert.ok(pgrep(HELPER_PATTERN).length > 0);
    }));

  it('asks virt-ssh-helper for a read-only connection when the client is read-only', async () => {
    const c = await LibvirtClient.connect(`${URI}?proxy=native`, {
      credentials: { ssh: keyed },
      readOnly: true,
    });
    try {
      assert.ok(pgrep(`${HELPER_PATTERN}-r `).length > 0, 'virt-ssh-helper runs with -r');
      await assert.rejects(
        c.rpc.domainDefineXmlFlags({
          xml: tcgDomainXml(
            `ssh-ro-${randomUUID().slice(0, 8)}`,
            '/var/lib/libvirt/images/none.qcow2',
          ),
          flags: 0,
        }),
        (err: Error & { codeName?: string }) => {
          assert.equal(err.codeName, 'VIR_ERR_OPERATION_DENIED');
          return true;
        },
      );
    } finally {
      await c.close();
    }
  });

  it('refuses a key the server does not authorize, naming authentication and authorized_keys', async () => {
    const err = await refused(URI, { privateKey: STRANGER_KEY, knownHosts: KNOWN_HOSTS });
    assert.match(err.message, /authentication failed: the server refused key ssh-ed25519 SHA256:/);
    assert.match(err.message, /user root/);
    assert.match(err.message, /authorized_keys/);
    const strangerFp = sshKeygenFingerprint(path.join(SSH_DIR, 'stranger_ed25519.pub'));
    assert.ok(err.message.includes(strangerFp), 'the refused key is named by its fingerprint');
  });

  it('refuses an unknown host key before offering the key, naming the fingerprint ssh-keygen -lf prints', async () => {
    const logStart = statSync(SSHD_LOG).size;
    const err = await refused(URI, { privateKey: CLIENT_KEY, knownHosts: '' });
    assert.match(err.message, /host key not known/);
    assert.ok(err.message.includes(HOST_FINGERPRINT), err.message);
    // sshd logs the key exchange we broke off (disconnect reason 3) and no login attempt.
    const port = await waitFor(
      () => /Received disconnect from 127\.0\.0\.1 port (\d+):3:/.exec(sshdLogSince(logStart))?.[1],
      'sshd to log the refused key exchange',
      5000,
    );
    const ours = sshdLogSince(logStart)
      .split('\n')
      .filter((line) => line.includes(`port ${port}`));
    assert.ok(ours.length > 0);
    assert.ok(!ours.some((line) => /publickey|Accepted|Failed/.test(line)), ours.join('\n'));
  });

  it('refuses a host known_hosts lists with another key as changed', async () => {
    const other = file('stranger_ed25519.pub').split(' ').slice(0, 2).join(' ');
    const err = await refused(URI, {
      privateKey: CLIENT_KEY,
      knownHosts: `[127.0.0.1]:${SSH_PORT} ${other}\n`,
      trustOnFirstUse: true,
    });
    assert.match(err.message, /host key changed/);
    assert.ok(err.message.includes(HOST_FINGERPRINT));
  });

  it('refuses a host whose key is not the pinned one', async () => {
    const err = await refused(URI, {
      privateKey: CLIENT_KEY,
      hostKeyFingerprints: ['SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    });
    assert.match(err.message, /host key changed/);
  });

  it('trusts on first use when asked, telling onHostKey the fingerprint', async () => {
    const seen: [string, string][] = [];
    await withSsh(
      URI,
      {
        privateKey: CLIENT_KEY,
        trustOnFirstUse: true,
        onHostKey: (fp, type) => seen.push([fp, type]),
      },
      async (c) => {
        await c.rpc.connectGetHostname();
      },
    );
    assert.deepEqual(seen, [[HOST_FINGERPRINT, 'ssh-ed25519']]);
  });

  it('accepts a known_hosts hashed by ssh-keygen -H', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'virtgate-kh-'));
    try {
      const copy = path.join(dir, 'known_hosts');
      copyFileSync(path.join(SSH_DIR, 'known_hosts'), copy);
      execFileSync('ssh-keygen', ['-q', '-H', '-f', copy], { stdio: 'ignore' });
      const hashed = readFileSync(copy, 'utf8');
      assert.ok(!hashed.includes('127.0.0.1'), 'the names are hashed');
      assert.match(hashed, /^\|1\|/);
      await withSsh(URI, { privateKey: CLIENT_KEY, knownHosts: hashed }, async (c) => {
        await c.rpc.connectGetHostname();
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('connects standalone from keyfile= and known_hosts= with no credentials given', () =>
    withSsh(
      `${URI}?keyfile=${path.join(SSH_DIR, 'client_ed25519')}&known_hosts=${path.join(SSH_DIR, 'known_hosts')}`,
      undefined,
      async (c) => {
        assert.ok((await c.rpc.connectGetHostname()).hostname.length > 0);
      },
    ));

  it('says what the remote command printed when it dies before the daemon answers', async () => {
    const noSocket = await refused(`${URI}?proxy=netcat&socket=/nonexistent/libvirt-sock`, keyed);
    assert.match(noSocket.message, /exited with status 1 before the daemon answered/);
    assert.match(noSocket.message, /\/nonexistent\/libvirt-sock: No such file or directory/);
    const noNetcat = await refused(`${URI}?netcat=/nonexistent/nc`, keyed);
    assert.match(noNetcat.message, /status 127/);
    assert.match(noNetcat.message, /\/nonexistent\/nc: not found/);
  });

  it('ends the ssh session, and nc on the server, when the client closes', async () => {
    await waitFor(() => pgrep(SSHD_SESSION_PATTERN).length === 0, 'earlier sessions to end', 5000);
    const c = await LibvirtClient.connect(`${URI}?proxy=netcat`, { credentials: { ssh: keyed } });
    await c.rpc.connectGetHostname();
    assert.equal(pgrep(SSHD_SESSION_PATTERN).length > 0, true, 'a session is open meanwhile');
    assert.ok(pgrep(NC_PATTERN).length > 0, 'nc serves it');
    await c.close();
    await waitFor(
      () => pgrep(NC_PATTERN).length === 0 && pgrep(SSHD_SESSION_PATTERN).length === 0,
      'nc and the sshd session to end after close',
      5000,
    );
  });
});

describe('qemu+ssh:// through a real ssh-agent', () => {
  let dir = '';
  let agent: ChildProcess;
  let socket = '';
  const addKey = (name: string): void => {
    execFileSync('ssh-add', ['-q', path.join(SSH_DIR, name)], {
      env: { ...process.env, SSH_AUTH_SOCK: socket },
      stdio: 'ignore',
    });
  };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'virtgate-agent-'));
    socket = path.join(dir, 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    await waitFor(() => existsSync(socket), 'ssh-agent to listen', 5000);
  });

  after(() => {
    agent.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses when the agent holds only a key the server does not authorize', async () => {
    addKey('stranger_ed25519');
    const err = await refused(URI, { agentSocket: socket, knownHosts: KNOWN_HOSTS });
    assert.match(err.message, /authentication failed: the server refused key from the agent/);
    assert.match(err.message, /authorized_keys/);
  });

  it('logs in with the key the agent holds, no private key given', async () => {
    addKey('client_ed25519');
    await withSsh(URI, { agentSocket: socket, knownHosts: KNOWN_HOSTS }, async (c) => {
      assert.ok((await c.rpc.connectGetHostname()).hostname.length > 0);
    });
  });
});

describe('qemu+ssh:// to peers that do not behave', () => {
  let silent: net.Server;
  let silentPort = 0;
  const held = new Set<net.Socket>();
  const closedByClient = new Set<net.Socket>();

  before(async () => {
    // Accepts TCP and never says a word: no SSH identification, no handshake.
    silent = net.createServer((s) => {
      held.add(s);
      s.on('error', () => undefined);
      s.on('close', () => closedByClient.add(s));
      s.resume(); // reads (and ignores) what the client sends, so its close is seen
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    silentPort = (silent.address() as net.AddressInfo).port;
  });

  after(() => {
    for (const s of held) s.destroy();
    silent.close();
  });

  it('gives up on a peer that accepts TCP and says nothing within the timeout', async (t) => {
    const started = performance.now();
    const err = await refused(
      `qemu+ssh://root@127.0.0.1:${silentPort}/system`,
      { privateKey: CLIENT_KEY, trustOnFirstUse: true },
      800,
    );
    // The outcome: the handshake deadline's own error (how long it took is a diagnostic).
    t.diagnostic(`gave up after ${Math.round(performance.now() - started)} ms`);
    assert.match(err.message, /timed out after 800 ms waiting for the SSH handshake/);
    assert.ok(held.size > 0, 'the client did reach the silent peer');
    await waitFor(
      () => held.size > 0 && [...held].every((sock) => closedByClient.has(sock)),
      'the client to drop the TCP connection it gave up on',
      3000,
    );
  });

  it('says a refused TCP connection is one', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const err = await refused(`qemu+ssh://root@127.0.0.1:${port}/system`, {
      privateKey: CLIENT_KEY,
      trustOnFirstUse: true,
    });
    assert.match(
      err.message,
      new RegExp(`cannot connect to ssh:root@127\\.0\\.0\\.1:${port}: ECONNREFUSED`),
    );
  });

  it('notices through SSH keepalive a server that falls silent after the handshake', async (t) => {
    const forwarder = new Forwarder(SSH_PORT);
    await forwarder.open();
    try {
      const uri = parseLibvirtUri(`qemu+ssh://root@127.0.0.1:${forwarder.port}/system`);
      const transport = new SshTransport(
        uri,
        { privateKey: CLIENT_KEY, hostKeyFingerprints: [HOST_FINGERPRINT] },
        { keepaliveIntervalMs: 200, keepaliveCountMax: 2 },
      );
      // libvirt's own keepalive off: only SSH's can notice.
      const c = await LibvirtClient.connect(uri.uri, { transport, keepalive: false });
      await c.rpc.connectGetHostname();
      const order: string[] = [];
      const closed = new Promise<Error | null>((resolve) =>
        c.once('close', (error: Error | null) => {
          order.push('close');
          resolve(error);
        }),
      );
      const started = performance.now();
      order.push('freeze');
      forwarder.freeze();
      const error = await closed;
      t.diagnostic(`noticed after ${Math.round(performance.now() - started)} ms`);
      // Nothing but SSH's keepalive can tell (libvirt's is off, the TCP link stays up).
      assert.deepEqual(
        order,
        ['freeze', 'close'],
        'the client closed only once the server fell silent',
      );
      assert.ok(error instanceof Error, 'closed with an error, not by this side');
      assert.match(error.message, /keepalive/i);
      c.destroy(new Error('test over'));
    } finally {
      await forwarder.cut();
    }
  });
});
