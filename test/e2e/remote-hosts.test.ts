/**
 * Hosts reached over libvirt's remote transports, through the API: the
 * services script's TLS listener (test CA, client certificate checked by
 * libvirtd's tls_allowed_dn_list) and its sshd on loopback. Each host is
 * registered with credentials, shows its inventory, and runs the seed's
 * block commit with pivot on a real TCG domain, the chain checked against
 * libvirt's live XML and qemu-img after the job. A rotation of credentials
 * reaches the next connection without a restart.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { LibvirtClient } from '#src/libvirt/index.js';
import { registerSecret } from '../support/secrets.js';
import { PKI_DIR, SSH_DIR, SSH_PORT, TLS_PORT } from '../support/services.js';
import { TcgChainDomain } from '../support/tcg-chain.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';
import { holdExclusive } from '../support/exclusive.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'remote-hosts-test-admin-token-012';
const TLS_URI = `qemu+tls://localhost:${TLS_PORT}/system`;
const SSH_URI = `qemu+ssh://root@127.0.0.1:${SSH_PORT}/system`;

const REMOTE = ['tls', 'ssh'] as const;

const read = (file: string): string => readFileSync(file, 'utf8');
/** The base64 lines of a key, registered for the secrets check (they survive JSON escaping). */
function secret(text: string, what: string): string {
  for (const line of text.split('\n')) {
    if (/^[A-Za-z0-9+/=]{40,}$/.test(line)) registerSecret(line, what);
  }
  return text;
}

function tlsCredentials(dir: string) {
  return {
    caCert: read(join(PKI_DIR, 'cacert.pem')),
    clientCert: read(join(dir, 'clientcert.pem')),
    clientKey: secret(read(join(dir, 'clientkey.pem')), 'a TLS client key of the test PKI'),
  };
}

describe('hosts over TLS and SSH', () => {
  let t: TestApp;
  let local: LibvirtClient;
  const run = randomUUID().slice(0, 6);
  const domains: TcgChainDomain[] = [];
  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object, headers: Record<string, string> = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).set(headers).send(body),
    patch: (url: string, body: object) =>
      request(t.server).patch(url).set('authorization', `Bearer ${ADMIN}`).send(body),
  };

  let releaseSshd: (() => void) | undefined;

  before(async () => {
    // Its SSH sessions would count in client-ssh.test.ts's reading of the sshd's processes.
    releaseSshd = await holdExclusive('sshd');
    local = await LibvirtClient.connect('qemu:///system');
    t = await startApp(
      testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, LIBVIRT_CONNECT_TIMEOUT_MS: '5000' }),
    );
    const tls = await http.post('/v1/hosts', {
      name: 'tls',
      uri: TLS_URI,
      credentials: { tls: tlsCredentials(PKI_DIR) },
    });
    assert.equal(tls.status, 201, JSON.stringify(tls.body));
    const ssh = await http.post('/v1/hosts', {
      name: 'ssh',
      uri: SSH_URI,
      credentials: {
        ssh: {
          privateKey: secret(read(join(SSH_DIR, 'client_ed25519')), 'the SSH key of the test sshd'),
          knownHostsFile: join(SSH_DIR, 'known_hosts'),
        },
      },
    });
    assert.equal(ssh.status, 201, JSON.stringify(ssh.body));
  });

  after(async () => {
    await closeAllApps();
    for (const d of domains) await d.remove();
    await local.close();
    await deleteKeys(prefix);
    releaseSshd?.();
  });

  for (const host of REMOTE) {
    it(`shows the ${host} host connected, with its inventory`, async () => {
      const res = await http.get(`/v1/hosts/${host}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.connection.state, 'connected', JSON.stringify(res.body.connection));
      assert.equal(res.body.hypervisor.type, 'QEMU');
      assert.equal(res.body.credentials.kind, host);
      assert.equal(res.body.credentials.error, null);
      assert.doesNotMatch(JSON.stringify(res.body), /-----BEGIN/);
      const d = await TcgChainDomain.create(local, `vg-remote-${host}-${run}`);
      domains.push(d);
      const list = await http.get(`/v1/hosts/${host}/domains?limit=500`);
      assert.equal(list.status, 200, JSON.stringify(list.body));
      assert.ok(
        (list.body.items as { name: string }[]).some((x) => x.name === d.name),
        `${d.name} is listed over ${host}`,
      );
    });

    it(`runs an active block commit with pivot over ${host}, the chain as libvirt and qemu-img say`, async () => {
      const d = domains.find((x) => x.name === `vg-remote-${host}-${run}`);
      assert.ok(d, 'the domain of the inventory test');
      const { base, s1, s2, top } = d.paths;
      const before = await d.assertChain([top, s2, s1, base], 'the fresh chain');
      const index = Object.fromEntries(before.map((m) => [m.path, m.index]));
      const res = await http.post(
        `/v1/hosts/${host}/domains/${d.name}/disks/vda/block-jobs`,
        { type: 'commit', base: `vda[${index[s2]}]` },
        { prefer: 'wait=60' },
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'completed', JSON.stringify(res.body.error));
      assert.equal(res.body.host, host);
      assert.equal(res.body.result.pivoted, true);
      assert.equal(res.body.result.completionSeenIn, 'event+chain', 'the event came over ' + host);
      const live = await d.assertChain([s2, s1, base], `after the commit over ${host}`);
      assert.deepEqual(
        (res.body.result.disk.chain as { path: string; index: number }[]).map((m) => [
          m.path,
          m.index,
        ]),
        live.map((m) => [m.path, m.index]),
      );
      await d.assertPatterns(s2);
    });
  }

  it('refuses a client certificate libvirtd does not allow, and connects once it is rotated', async () => {
    const res = await http.post('/v1/hosts', {
      name: 'tls-rotate',
      uri: TLS_URI,
      credentials: { tls: tlsCredentials(join(PKI_DIR, 'stranger')) },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.connection.state, 'unreachable', JSON.stringify(res.body.connection));
    assert.match(res.body.connection.lastError, /client certificate refused/);
    const refused = await http.get('/v1/hosts/tls-rotate/domains');
    assert.equal(refused.status, 503);
    assert.equal(refused.body.code, 'HOST_UNREACHABLE');

    const rotated = await http.patch('/v1/hosts/tls-rotate', {
      credentials: { tls: tlsCredentials(PKI_DIR) },
    });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    // The breaker's probe tries the new credentials at once: no restart, no waiting out a backoff.
    await waitFor(
      async () => (await http.get('/v1/hosts/tls-rotate')).body.connection.state === 'connected',
      'the host to connect with the rotated certificate',
    );
    const listed = await http.get('/v1/hosts/tls-rotate/domains');
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
  });

  it("pins the sshd's host key on first use at registration, and connects with the pin", async () => {
    // What ssh-keygen says of the server's own key: the fingerprint the pin must hold.
    const printed = execFileSync('ssh-keygen', ['-lf', join(SSH_DIR, 'ssh_host_ed25519_key.pub')], {
      encoding: 'utf8',
    });
    const fingerprint = /(SHA256:\S+)/.exec(printed)![1]!;
    const res = await http.post('/v1/hosts', {
      name: 'ssh-tofu',
      uri: SSH_URI,
      credentials: {
        ssh: {
          privateKey: secret(read(join(SSH_DIR, 'client_ed25519')), 'the SSH key of the test sshd'),
          trustOnFirstUse: true,
        },
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body.credentials.ssh.hostKeys.fingerprints, [fingerprint]);
    assert.equal(res.body.connection.state, 'connected', JSON.stringify(res.body.connection));
    const listed = await http.get('/v1/hosts/ssh-tofu/domains');
    assert.equal(listed.status, 200, JSON.stringify(listed.body));

    // A host key that is neither pinned nor known is refused, its fingerprint in the detail.
    const unknown = await http.post('/v1/hosts', {
      name: 'ssh-unknown',
      uri: SSH_URI,
      credentials: {
        ssh: {
          privateKey: read(join(SSH_DIR, 'client_ed25519')),
          hostKeyFingerprints: ['SHA256:' + 'A'.repeat(43)],
        },
      },
    });
    assert.equal(unknown.status, 201, JSON.stringify(unknown.body));
    assert.equal(unknown.body.connection.state, 'unreachable');
    assert.ok(
      unknown.body.connection.lastError.includes(fingerprint),
      unknown.body.connection.lastError,
    );
  });
});
