/**
 * The RPC client over `qemu+tls://` against the real libvirtd's TLS listener
 * (scripts/services.sh, scripts/services-tls.sh): its server certificate names
 * `localhost` only, its tls_allowed_dn_list holds our client's DN. Each refusal
 * is made real: a CA that did not sign the server, a client certificate past
 * its dates, one whose DN the daemon does not allow, one of a CA the daemon
 * does not know, a name the server certificate does not hold, a key that does
 * not open. Only a peer that stalls is a fake (no real daemon does that).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import tls from 'node:tls';
import {
  ConnectError,
  ConnectListAllDomainsFlags,
  LibvirtClient,
  type TlsCredentials,
} from '#src/libvirt/index.js';
import { PKI_DIR, TLS_PORT } from '../support/services.js';
import { waitFor } from '../support/wait.js';

const TLS_URI = `qemu+tls://localhost:${TLS_PORT}/system`;
const read = (...parts: string[]): string => readFileSync(join(PKI_DIR, ...parts), 'utf8');

/** The credentials of a pkipath directory under PKI_DIR ('' for the good one). */
function pki(dir = ''): TlsCredentials {
  return {
    ca: read(dir, 'cacert.pem'),
    cert: read(dir, 'clientcert.pem'),
    key: read(dir, 'clientkey.pem'),
  };
}

/**
 * The ConnectError a connection with these credentials ends in. Each caller
 * asserts which refusal it is; a refusal that waited for the deadline instead
 * would say "timed out" and fail that match.
 */
async function connectError(
  uri: string,
  credentials: TlsCredentials,
  connectTimeoutMs = 5_000,
): Promise<ConnectError> {
  try {
    const c = await LibvirtClient.connect(uri, {
      credentials: { tls: credentials },
      connectTimeoutMs,
    });
    await c.close();
  } catch (err) {
    assert.ok(err instanceof ConnectError, `a ConnectError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${uri} connected with credentials that should be refused`);
}

/** Sorted names of all domains, so two transports can be compared. */
async function domainNames(c: LibvirtClient): Promise<string[]> {
  const { domains } = await c.rpc.connectListAllDomains({
    needResults: 1,
    flags: ConnectListAllDomainsFlags.ACTIVE | ConnectListAllDomainsFlags.INACTIVE,
  });
  return domains.map((d) => d.name).sort();
}

describe('qemu+tls:// against the real TLS listener', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'virtgate-tls-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('answers as the UNIX socket does: hostname, version, domains, concurrent calls', async () => {
    // callTimeoutMs: calls pipelined into one TLS record used to wait for libvirtd's
    // next keepalive (seconds); each must be answered well within this.
    const overTls = await LibvirtClient.connect(TLS_URI, {
      credentials: { tls: pki() },
      callTimeoutMs: 3_000,
    });
    const local = await LibvirtClient.connect('qemu:///system', { readOnly: true });
    try {
      assert.equal(overTls.uri.transport, 'tls');
      assert.deepEqual(overTls.features, {
        keepalive: true,
        eventCallbacks: true,
        typedParamString: true,
      });
      assert.deepEqual(
        await overTls.rpc.connectGetHostname(),
        await local.rpc.connectGetHostname(),
      );
      assert.deepEqual(
        await overTls.rpc.connectGetLibVersion(),
        await local.rpc.connectGetLibVersion(),
      );
      assert.equal((await overTls.rpc.connectGetType()).type, 'QEMU');
      // Other test files define and undefine domains on the same libvirtd meanwhile: the
      // two lists are compared until a pair read back to back agrees (a transport that
      // lists other domains never does).
      let lists: [string[], string[]] = [[], []];
      await waitFor(
        async () => {
          lists = [await domainNames(overTls), await domainNames(local)];
          return JSON.stringify(lists[0]) === JSON.stringify(lists[1]);
        },
        'the domains over TLS to be those of the UNIX socket',
        20_000,
      ).catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(lists)}`));
      // Many calls in flight on one TLS session, each answered with its own reply, in
      // rounds: a stall shows up as a call timeout.
      const infos = [];
      for (let round = 0; round < 5; round++) {
        infos.push(
          ...(await Promise.all(Array.from({ length: 40 }, () => overTls.rpc.nodeGetInfo()))),
        );
      }
      const first = await local.rpc.nodeGetInfo();
      for (const info of infos) assert.deepEqual(info, first);
    } finally {
      await overTls.close();
      await local.close();
    }
  });

  it('reads its files from pkipath when given no credentials, as libvirt clients do', async () => {
    const c = await LibvirtClient.connect(`${TLS_URI}?pkipath=${PKI_DIR}`);
    try {
      assert.ok((await c.rpc.connectGetHostname()).hostname.length > 0);
    } finally {
      await c.close();
    }
    await assert.rejects(
      LibvirtClient.connect(`${TLS_URI}?pkipath=${join(scratch, 'nothing-here')}`),
      (err: Error) => {
        assert.ok(err instanceof ConnectError);
        assert.match(err.message, /cannot read the CA certificate .*cacert\.pem: ENOENT/);
        return true;
      },
    );
  });

  it('refuses a server its CA did not sign', async () => {
    const err = await connectError(TLS_URI, { ...pki(), ca: read('other-ca', 'cacert.pem') });
    assert.match(
      err.message,
      /server certificate not trusted: tls:localhost:\d+ presented one not signed by the CA given/,
    );
  });

  it('refuses a server certificate that does not name the host, unless no_verify is set', async () => {
    const byAddress = `qemu+tls://127.0.0.1:${TLS_PORT}/system`;
    const err = await connectError(byAddress, pki());
    assert.match(
      err.message,
      /server certificate does not match the host: .* naming DNS:localhost, not '127\.0\.0\.1'/,
    );
    const c = await LibvirtClient.connect(byAddress, {
      credentials: { tls: { ...pki(), noVerify: true } },
    });
    try {
      assert.ok((await c.rpc.connectGetHostname()).hostname.length > 0);
    } finally {
      await c.close();
    }
  });

  it('refuses its own certificate past its dates before connecting, as libvirt does', async () => {
    const err = await connectError(TLS_URI, pki('expired'));
    assert.match(err.message, /^client certificate expired on 2020-01-02T00:00:00\.000Z$/);
  });

  it("reports the daemon's refusal of a DN it does not allow, and of a CA it does not know", async () => {
    for (const credentials of [
      pki('stranger'),
      {
        ...pki(),
        cert: read('other-ca', 'clientcert.pem'),
        key: read('other-ca', 'clientkey.pem'),
      },
    ]) {
      const err = await connectError(TLS_URI, credentials);
      assert.match(
        err.message,
        /client certificate refused by tls:localhost:\d+ .*tls_allowed_dn_list/,
      );
    }
  });

  it('opens an encrypted key with its passphrase, and says so when the passphrase is wrong', async () => {
    const encrypted = join(scratch, 'clientkey-encrypted.pem');
    const passphrase = 'tls-test-passphrase-0123';
    writeFileSync(join(scratch, 'pass'), passphrase, { mode: 0o600 });
    execFileSync('openssl', [
      'pkey',
      '-in',
      join(PKI_DIR, 'clientkey.pem'),
      '-aes-256-cbc',
      '-passout',
      `file:${join(scratch, 'pass')}`,
      '-out',
      encrypted,
    ]);
    const key = readFileSync(encrypted, 'utf8');
    assert.match(key, /ENCRYPTED PRIVATE KEY/);
    const c = await LibvirtClient.connect(TLS_URI, {
      credentials: { tls: { ...pki(), key, passphrase } },
    });
    await c.close();
    const wrong = await connectError(TLS_URI, { ...pki(), key, passphrase: 'not-it' });
    assert.match(wrong.message, /client key does not open with the passphrase given/);
    assert.doesNotMatch(wrong.message, /not-it/);
    const mismatched = await connectError(TLS_URI, {
      ...pki(),
      key: read('stranger', 'clientkey.pem'),
    });
    assert.match(mismatched.message, /client key is not the key of the client certificate/);
  });

  describe('peers that stall (fakes: no real daemon does this)', () => {
    const servers: net.Server[] = [];
    after(() => {
      for (const s of servers) s.close();
    });
    const listen = async (server: net.Server): Promise<number> => {
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return (server.address() as net.AddressInfo).port;
    };
    const credentialsForLocalhost = (): TlsCredentials => pki();

    it('gives up at the deadline on a peer that accepts TCP and never speaks TLS, and hangs up', async (t) => {
      const held: net.Socket[] = [];
      const hungUp = new Set<net.Socket>();
      const port = await listen(
        net.createServer((s) => {
          held.push(s);
          s.on('error', () => undefined);
          s.on('close', () => hungUp.add(s));
          s.resume(); // reads (and ignores) the ClientHello, so the client's close is seen
        }),
      );
      try {
        const started = performance.now();
        const err = await connectError(
          `qemu+tls://localhost:${port}/system`,
          credentialsForLocalhost(),
          400,
        );
        t.diagnostic(`gave up after ${Math.round(performance.now() - started)} ms`);
        assert.match(err.message, /timed out after 400 ms .*TLS handshake/);
        await waitFor(
          () => held.length > 0 && held.every((s) => hungUp.has(s)),
          'the client to drop the TCP connection it gave up on',
          5_000,
        );
      } finally {
        for (const s of held) s.destroy();
      }
    });

    it('gives up on a peer that completes the handshake and never confirms, and refuses a wrong byte', async () => {
      const server = (byte: number | null): tls.Server =>
        tls.createServer(
          { key: read('server', 'serverkey.pem'), cert: read('server', 'servercert.pem') },
          (s) => {
            s.on('error', () => undefined);
            if (byte !== null) s.write(Buffer.from([byte]));
          },
        );
      const silent = await listen(server(null));
      const err = await connectError(
        `qemu+tls://localhost:${silent}/system`,
        credentialsForLocalhost(),
        400,
      );
      assert.match(err.message, /timed out after 400 ms/);
      const zero = await listen(server(0));
      const refused = await connectError(
        `qemu+tls://localhost:${zero}/system`,
        credentialsForLocalhost(),
      );
      assert.match(refused.message, /answered 0 instead of the confirmation byte/);
    });
  });
});
