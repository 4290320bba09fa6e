/**
 * Host credentials over the API, with certificates and keys made here by
 * openssl and ssh-keygen: registered inline or as files, sealed in Redis,
 * never returned; described by subject, expiry and fingerprint; a
 * certificate near its expiry warned about in the host view and in
 * readiness; checked at registration (each bad piece a 400 naming its
 * field); rotated by PATCH; refused without VIRTGATE_SECRETS_KEY.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { redisKeys } from '#src/redis/keys.js';
import { registerSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';
import { codes, graphql } from './graphql-helpers.js';
import {
  closeAllApps,
  deleteKeys,
  REDIS_URL,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'host-credentials-test-admin-token-0';
const TLS_URI = 'qemu+tls://localhost:16514/system';
const SSH_URI = 'qemu+ssh://root@127.0.0.1:2222/system';

/** Registers the base64 lines of a PEM or key as secrets: they show as such even JSON-escaped. */
function secretKey(text: string, what: string): string {
  for (const line of text.split('\n')) {
    if (/^[A-Za-z0-9+/=]{40,}$/.test(line)) registerSecret(line, what);
  }
  return text;
}

interface Pki {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  /** A certificate of the same CA that expires in 10 days, and its key. */
  soonCert: string;
  soonKey: string;
  /** The client key encrypted with `passphrase`. */
  encryptedKey: string;
  passphrase: string;
  sshKey: string;
  sshFingerprint: string;
}

function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'vg-cred-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '365',
    '-subj',
    '/O=vg test/CN=vg test CA',
  );
  const leaf = (name: string, days: string) => {
    ssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/O=vg test/CN=${name}`,
    );
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      days,
    );
  };
  leaf('client', '200');
  leaf('soon', '10');
  const passphrase = registerSecret(`pass-${process.pid}-${Date.now()}`, 'a client key passphrase');
  ssl(
    'pkey',
    '-in',
    'client.key',
    '-out',
    'client.enc.key',
    '-aes256',
    '-passout',
    `pass:${passphrase}`,
  );
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id_ed25519')]);
  const fp = execFileSync('ssh-keygen', ['-lf', join(dir, 'id_ed25519.pub')]).toString();
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  // libvirt's pkipath layout too.
  writeFileSync(join(dir, 'cacert.pem'), read('ca.pem'));
  writeFileSync(join(dir, 'clientcert.pem'), read('client.pem'));
  writeFileSync(join(dir, 'clientkey.pem'), read('client.key'), { mode: 0o600 });
  return {
    dir,
    ca: read('ca.pem'),
    cert: read('client.pem'),
    key: secretKey(read('client.key'), 'a TLS client key'),
    soonCert: read('soon.pem'),
    soonKey: secretKey(read('soon.key'), 'a TLS client key'),
    encryptedKey: secretKey(read('client.enc.key'), 'an encrypted TLS client key'),
    passphrase,
    sshKey: secretKey(read('id_ed25519'), 'an SSH private key'),
    sshFingerprint: fp.split(' ')[1]!,
  };
}

describe('host credentials', () => {
  let t: TestApp;
  let pki: Pki;
  let redis: Redis;
  const api = (app: () => TestApp = () => t) => ({
    get: (url: string) => request(app().server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object) =>
      request(app().server).post(url).set('authorization', `Bearer ${ADMIN}`).send(body),
    patch: (url: string, body: object) =>
      request(app().server).patch(url).set('authorization', `Bearer ${ADMIN}`).send(body),
  });
  /** Nothing of a key, a passphrase or a PEM in what the API says. */
  const assertNoSecrets = (body: unknown) => {
    const text = JSON.stringify(body);
    assert.doesNotMatch(text, /-----BEGIN/);
    assert.ok(!text.includes(pki.passphrase));
  };

  before(async () => {
    pki = makePki();
    redis = new Redis(REDIS_URL);
    t = await startApp(
      testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, LIBVIRT_CONNECT_TIMEOUT_MS: '1000' }),
    );
  });

  after(async () => {
    await closeAllApps();
    redis.disconnect();
    await deleteKeys(prefix);
    rmSync(pki.dir, { recursive: true, force: true });
  });

  it('registers TLS credentials inline: sealed in Redis, described, never returned', async () => {
    const res = await api().post('/v1/hosts', {
      name: 'tls-inline',
      uri: TLS_URI,
      credentials: { tls: { caCert: pki.ca, clientCert: pki.cert, clientKey: pki.key } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assertNoSecrets(res.body);
    const c = res.body.credentials;
    assert.equal(c.kind, 'tls');
    assert.equal(c.stored, true);
    assert.equal(c.error, null);
    assert.equal(c.tls.verifyServer, true);
    assert.equal(c.tls.clientCertificate.subject, 'O=vg test, CN=client');
    assert.equal(c.tls.clientCertificate.issuer, 'O=vg test, CN=vg test CA');
    assert.equal(c.tls.clientCertificate.source, 'stored');
    assert.ok(c.tls.clientCertificate.daysLeft >= 198 && c.tls.clientCertificate.daysLeft <= 200);
    assert.equal(c.tls.ca.subject, 'O=vg test, CN=vg test CA');
    assert.deepEqual(c.tls.clientKey, { source: 'stored', path: null, encrypted: false });
    assert.deepEqual(c.warnings, []);

    const raw = await redis.hget(redisKeys(prefix).hosts, 'tls-inline');
    assert.ok(raw);
    assert.doesNotMatch(raw, /BEGIN|PRIVATE/);
    const keyLine = pki.key.split('\n')[1]!;
    assert.ok(!raw.includes(keyLine), 'the key is not in the record in clear');
    const record = JSON.parse(raw) as { credentials: { sealed: string; kinds: string[] } };
    assert.match(record.credentials.sealed, /^v1\./);
    assert.deepEqual(record.credentials.kinds, ['tls']);

    const again = await api().get('/v1/hosts/tls-inline');
    assert.equal(again.body.credentials.tls.clientCertificate.subject, 'O=vg test, CN=client');
    assertNoSecrets(again.body);
  });

  it('reads credentials from files under HOST_CREDENTIAL_DIRS, and refuses files elsewhere', async () => {
    const files = {
      caCertFile: join(pki.dir, 'ca.pem'),
      clientCertFile: join(pki.dir, 'client.pem'),
      clientKeyFile: join(pki.dir, 'client.key'),
    };
    const res = await api().post('/v1/hosts', {
      name: 'tls-files',
      uri: TLS_URI,
      credentials: { tls: files },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.credentials.tls.clientCertificate.source, 'file');
    assert.equal(res.body.credentials.tls.clientCertificate.path, files.clientCertFile);
    assert.equal(res.body.credentials.tls.clientKey.path, files.clientKeyFile);

    for (const [tls, field] of [
      [{ ...files, clientKeyFile: '/etc/shadow' }, 'credentials.tls.clientKeyFile'],
      [
        { ...files, caCertFile: `${pki.dir}/../../etc/ssl/certs/ca.pem` },
        'credentials.tls.caCertFile',
      ],
      [{ ...files, clientCertFile: join(pki.dir, 'nope.pem') }, 'credentials.tls.clientCertFile'],
    ] as const) {
      const bad = await api().post('/v1/hosts', {
        name: 'tls-bad-file',
        uri: TLS_URI,
        credentials: { tls },
      });
      assert.equal(bad.status, 400, JSON.stringify(bad.body));
      assert.equal(bad.body.errors[0].field, field, JSON.stringify(bad.body));
    }
    const outside = await api().post('/v1/hosts', {
      name: 'tls-bad-file',
      uri: TLS_URI,
      credentials: { tls: { ...files, clientKeyFile: '/etc/shadow' } },
    });
    assert.match(outside.body.detail, /outside the directories host credentials may be read from/);
    assert.equal((await api().get('/v1/hosts/tls-bad-file')).status, 404, 'nothing registered');
  });

  it('refuses each bad piece with a 400 naming its field, without echoing it', async () => {
    const good = { caCert: pki.ca, clientCert: pki.cert, clientKey: pki.key };
    for (const [credentials, field, uri] of [
      [
        { tls: { ...good, clientCert: 'not a certificate' } },
        'credentials.tls.clientCert',
        TLS_URI,
      ],
      [
        {
          tls: {
            ...good,
            caCert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
          },
        },
        'credentials.tls.caCert',
        TLS_URI,
      ],
      [{ tls: { ...good, clientKey: pki.soonKey } }, 'credentials.tls.clientKey', TLS_URI],
      [{ tls: { ...good, clientKey: pki.encryptedKey } }, 'credentials.tls.clientKey', TLS_URI],
      [
        { tls: { ...good, clientKey: pki.encryptedKey, keyPassphrase: 'wrong-passphrase' } },
        'credentials.tls.clientKey',
        TLS_URI,
      ],
      [{ tls: good }, 'credentials.tls', SSH_URI],
      [
        { ssh: { privateKey: pki.sshKey, hostKeyFingerprints: [pki.sshFingerprint] } },
        'credentials.ssh',
        TLS_URI,
      ],
      [
        { ssh: { privateKey: 'garbage', hostKeyFingerprints: [pki.sshFingerprint] } },
        'credentials.ssh.privateKey',
        SSH_URI,
      ],
      [
        { ssh: { privateKey: pki.sshKey, hostKeyFingerprints: ['MD5:aa:bb'] } },
        'credentials.ssh.hostKeyFingerprints',
        SSH_URI,
      ],
      [{ ssh: { privateKey: pki.sshKey } }, 'credentials.ssh', SSH_URI],
    ] as const) {
      const res = await api().post('/v1/hosts', { name: 'bad-creds', uri, credentials });
      assert.equal(res.status, 400, `${field}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'INVALID_ARGUMENT');
      assert.equal(res.body.errors[0].field, field, JSON.stringify(res.body));
      assertNoSecrets(res.body);
      assert.ok(!JSON.stringify(res.body).includes('wrong-passphrase'));
    }
    assert.equal((await api().get('/v1/hosts/bad-creds')).status, 404);
  });

  it('takes an encrypted key with its passphrase', async () => {
    const res = await api().post('/v1/hosts', {
      name: 'tls-encrypted',
      uri: TLS_URI,
      credentials: {
        tls: {
          caCert: pki.ca,
          clientCert: pki.cert,
          clientKey: pki.encryptedKey,
          keyPassphrase: pki.passphrase,
        },
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.credentials.tls.clientKey.encrypted, true);
    assertNoSecrets(res.body);
  });

  it('describes SSH credentials by key type and pinned fingerprint', async () => {
    const res = await api().post('/v1/hosts', {
      name: 'ssh-pinned',
      uri: SSH_URI,
      credentials: { ssh: { privateKey: pki.sshKey, hostKeyFingerprints: [pki.sshFingerprint] } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assertNoSecrets(res.body);
    const ssh = res.body.credentials.ssh;
    assert.equal(ssh.user, 'root');
    assert.deepEqual(ssh.privateKey, {
      source: 'stored',
      path: null,
      type: 'ssh-ed25519',
      encrypted: false,
    });
    assert.deepEqual(ssh.hostKeys, {
      fingerprints: [pki.sshFingerprint],
      knownHosts: null,
      trustOnFirstUse: false,
    });
    const tofu = await api().patch('/v1/hosts/ssh-pinned', {
      credentials: { ssh: { privateKey: pki.sshKey, trustOnFirstUse: true } },
    });
    assert.equal(tofu.status, 400, JSON.stringify(tofu.body));
    assert.equal(tofu.body.errors[0].field, 'credentials.ssh.trustOnFirstUse');
  });

  it('warns of a certificate within 30 days of expiry, in the host view and in readiness', async () => {
    const res = await api().post('/v1/hosts', {
      name: 'tls-soon',
      uri: TLS_URI,
      credentials: { tls: { caCert: pki.ca, clientCert: pki.soonCert, clientKey: pki.soonKey } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.credentials.warnings.length, 1, JSON.stringify(res.body.credentials));
    assert.match(
      res.body.credentials.warnings[0],
      /^the client certificate \(O=vg test, CN=soon\) expires in (9|10) days/,
    );
    // Readiness looks at the hosts' credentials every 5 s at most.
    const ready = await waitFor(async () => {
      const res = await request(t.server).get('/health/ready');
      return res.body.checks?.credentials?.status === 'warning' ? res : null;
    }, 'readiness to warn about the credentials');
    const check = ready.body.checks.credentials;
    assert.equal(check.status, 'warning', JSON.stringify(ready.body));
    assert.ok(
      check.warnings.some(
        (w: { host: string; message: string }) =>
          w.host === 'tls-soon' && /expires in/.test(w.message),
      ),
      JSON.stringify(check),
    );
    assert.ok(!check.warnings.some((w: { host: string }) => w.host === 'tls-inline'));
  });

  it('rotates credentials with PATCH and removes them, each audited', async () => {
    const before = await api().get('/v1/hosts/tls-inline');
    const rotated = await api().patch('/v1/hosts/tls-inline', {
      credentials: { tls: { caCert: pki.ca, clientCert: pki.soonCert, clientKey: pki.soonKey } },
    });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal(rotated.body.credentials.tls.clientCertificate.subject, 'O=vg test, CN=soon');
    assert.ok(rotated.body.updatedAt);
    assert.equal(rotated.body.createdAt, before.body.createdAt);
    assertNoSecrets(rotated.body);

    // Without registered credentials the URI's files or libvirt's defaults must do: none here.
    const unusable = await api().patch('/v1/hosts/tls-inline', { removeCredentials: true });
    assert.equal(unusable.status, 400, JSON.stringify(unusable.body));
    assert.equal(unusable.body.errors[0].field, 'credentials.tls.caCert');
    const removed = await api().patch('/v1/hosts/tls-inline', {
      uri: `${TLS_URI}?pkipath=${pki.dir}`,
      removeCredentials: true,
    });
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.equal(removed.body.credentials.tls.clientCertificate.source, 'uri');
    assert.equal(
      removed.body.credentials.tls.clientCertificate.path,
      join(pki.dir, 'clientcert.pem'),
    );
    assert.equal(removed.body.credentials.stored, false);
    const raw = JSON.parse((await redis.hget(redisKeys(prefix).hosts, 'tls-inline'))!) as object;
    assert.ok(!('credentials' in raw));

    const empty = await api().patch('/v1/hosts/tls-inline', {});
    assert.equal(empty.status, 400);
    const missing = await api().patch('/v1/hosts/nope', { uri: 'qemu:///system' });
    assert.equal(missing.status, 404);

    const audit = await api().get('/v1/audit?action=host.update');
    assert.equal(audit.status, 200, JSON.stringify(audit.body));
    const mine = (audit.body.items as { target: string; result: string }[]).filter(
      (e) => e.target === 'tls-inline',
    );
    assert.deepEqual(mine.map((e) => e.result).sort(), [
      'accepted',
      'accepted',
      'refused',
      'refused',
    ]);
    assertNoSecrets(audit.body);
  });

  it('reads credential files afresh: a file rotated in place counts without a restart', async () => {
    const cert = join(pki.dir, 'rotating.pem');
    const key = join(pki.dir, 'rotating.key');
    writeFileSync(cert, pki.cert);
    writeFileSync(key, pki.key, { mode: 0o600 });
    const res = await api().post('/v1/hosts', {
      name: 'tls-rotating',
      uri: TLS_URI,
      credentials: {
        tls: { caCertFile: join(pki.dir, 'ca.pem'), clientCertFile: cert, clientKeyFile: key },
      },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.credentials.tls.clientCertificate.subject, 'O=vg test, CN=client');
    writeFileSync(cert, pki.soonCert);
    writeFileSync(key, pki.soonKey);
    const after = await api().get('/v1/hosts/tls-rotating');
    assert.equal(after.body.credentials.tls.clientCertificate.subject, 'O=vg test, CN=soon');
    // Half-rotated (the key of another certificate): said in the view, not thrown.
    writeFileSync(key, pki.key);
    const half = await api().get('/v1/hosts/tls-rotating');
    assert.equal(half.status, 200);
    assert.match(half.body.credentials.error, /does not belong to the client certificate/);
  });
  it('registers and rotates over GraphQL the same way, with the same view', async () => {
    const created = await graphql(
      t,
      ADMIN,
      `
        mutation ($input: CreateHostInput!) {
          createHost(input: $input) {
            name
            credentials {
              kind
              stored
              tls {
                clientCertificate {
                  subject
                  daysLeft
                }
                clientKey {
                  source
                  encrypted
                }
              }
              warnings
            }
          }
        }
      `,
      {
        input: {
          name: 'tls-graphql',
          uri: TLS_URI,
          credentials: { tls: { caCert: pki.ca, clientCert: pki.cert, clientKey: pki.key } },
        },
      },
    );
    assert.equal(created.status, 200);
    assert.equal(created.body.errors, undefined, JSON.stringify(created.body.errors));
    const c = created.body.data.createHost.credentials;
    assert.equal(c.kind, 'tls');
    assert.equal(c.stored, true);
    assert.equal(c.tls.clientCertificate.subject, 'O=vg test, CN=client');
    assert.deepEqual(c.tls.clientKey, { source: 'stored', encrypted: false });
    const rotated = await graphql(
      t,
      ADMIN,
      `
        mutation ($input: UpdateHostInput!) {
          updateHost(name: "tls-graphql", input: $input) {
            updatedAt
            credentials {
              tls {
                clientCertificate {
                  subject
                }
              }
              warnings
            }
          }
        }
      `,
      {
        input: {
          credentials: {
            tls: { caCert: pki.ca, clientCert: pki.soonCert, clientKey: pki.soonKey },
          },
        },
      },
    );
    assert.equal(rotated.body.errors, undefined, JSON.stringify(rotated.body.errors));
    const r = rotated.body.data.updateHost;
    assert.equal(r.credentials.tls.clientCertificate.subject, 'O=vg test, CN=soon');
    assert.equal(r.credentials.warnings.length, 1);
    assert.ok(r.updatedAt);
    const bad = await graphql(
      t,
      ADMIN,
      `
        mutation ($input: UpdateHostInput!) {
          updateHost(name: "tls-graphql", input: $input) {
            name
          }
        }
      `,
      {
        input: {
          credentials: { tls: { caCert: pki.ca, clientCert: pki.cert, clientKey: pki.soonKey } },
        },
      },
    );
    assert.deepEqual(codes(bad.body), ['INVALID_ARGUMENT']);
    assertNoSecrets(bad.body);
  });

  // Last: closing a second app in this process unregisters passport's strategy for all.
  it('refuses to store credentials without VIRTGATE_SECRETS_KEY (409)', async () => {
    const keyless = await startApp(
      testConfig(prefix + 'nokey:', { VIRTGATE_ADMIN_TOKEN: ADMIN, VIRTGATE_SECRETS_KEY: '' }),
    );
    try {
      const res = await api(() => keyless).post('/v1/hosts', {
        name: 'tls-nokey',
        uri: TLS_URI,
        credentials: { tls: { caCert: pki.ca, clientCert: pki.cert, clientKey: pki.key } },
      });
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.code, 'INVALID_STATE');
      assert.match(res.body.detail, /VIRTGATE_SECRETS_KEY/);
    } finally {
      await keyless.close();
      await deleteKeys(prefix + 'nokey:');
    }
  });
});
