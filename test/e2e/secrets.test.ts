/**
 * Secrets never leave the gateway (issue #9, "Secrets"): a host registered
 * with a password in its URI's userinfo and in its query, and a domain
 * defined from raw XML with a VNC password. Neither shows in any response
 * (REST, GraphQL, errors), in the job's record (the idempotent replay still
 * matches), in BullMQ's copy once the job is done, or in the logs, while
 * libvirt gets the password as given. Every secret is registered, so the
 * check after the whole suite (scripts/check-secrets.ts) looks for it too.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { DomainXmlFlags, LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { redisKeys } from '#src/redis/keys.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { keysUnder, keyValue, registerSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  REDIS_URL,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const keys = redisKeys(prefix);
const ADMIN = 'secrets-test-admin-token-0123456789';
const URI_PASSWORD = registerSecret(`uripw-${randomUUID()}`, 'password in a host URI userinfo');
const QUERY_PASSWORD = registerSecret(`qpw-${randomUUID()}`, 'password in a host URI query');
// VNC passwords are at most 8 characters.
const VNC_PASSWORD = registerSecret(randomBytes(4).toString('hex'), 'VNC passwd in raw domain XML');
const SECRETS = [ADMIN, URI_PASSWORD, QUERY_PASSWORD, VNC_PASSWORD];
const LEAKY_URI = `test+tcp://vguser:${URI_PASSWORD}@127.0.0.1/default?password=${QUERY_PASSWORD}&mode=direct`;
const DOWN_URI = `test+tcp://vguser:${URI_PASSWORD}@127.0.0.1:1/default?pass=${QUERY_PASSWORD}`;
const DOMAIN = `vgsec-${randomUUID().slice(0, 6)}`;

function assertNoSecret(text: string, where: string): void {
  for (const secret of SECRETS) {
    for (const form of [secret, encodeURIComponent(secret)]) {
      assert.ok(!text.includes(form), `${where} shows a secret: ${text.slice(0, 2000)}`);
    }
  }
}

function shown(res: request.Response): string {
  return `${JSON.stringify(res.headers)}\n${res.text}`;
}

describe('secrets in host URIs and domain XML', () => {
  let t: TestApp;
  let redis: Redis;
  let libvirt: LibvirtClient;
  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object, headers: Record<string, string> = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).set(headers).send(body),
  };

  before(async () => {
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    redis = new Redis(REDIS_URL);
    libvirt = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
  });

  after(async () => {
    const dom = await libvirt.rpc
      .domainLookupByName({ name: DOMAIN })
      .then((r) => r.dom)
      .catch(() => null);
    if (dom) await libvirt.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    await libvirt.close();
    await closeAllApps();
    await redis.quit();
    await deleteKeys(prefix);
  });

  it('shows a host URI without its passwords, in every view and error', async () => {
    const created = await http.post('/v1/hosts', { name: 'leaky', uri: LEAKY_URI });
    assert.equal(created.status, 201, created.text);
    assert.equal(
      created.body.uri,
      'test+tcp://vguser:***@127.0.0.1/default?password=***&mode=direct',
    );
    assertNoSecret(shown(created), 'POST /v1/hosts');
    for (const url of ['/v1/hosts', '/v1/hosts/leaky']) {
      const res = await http.get(url);
      assert.equal(res.status, 200);
      assertNoSecret(shown(res), url);
    }
    const gql = await http.post('/graphql', {
      query:
        '{ hosts { edges { node { name uri connection { lastError } } } } host(name: "leaky") { uri } }',
    });
    assert.equal(gql.status, 200, gql.text);
    assert.equal(gql.body.data.host.uri, created.body.uri);
    assertNoSecret(shown(gql), 'GraphQL hosts');

    // A URI refused at registration is named in the error, without its passwords.
    const refused = await http.post('/v1/hosts', {
      name: 'refused',
      uri: `qemu+bogus://vguser:${URI_PASSWORD}@h/system?password=${QUERY_PASSWORD}`,
    });
    assert.equal(refused.status, 400);
    assert.match(refused.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.match(refused.body.detail, /qemu\+bogus:\/\/vguser:\*\*\*@h\/system\?password=\*\*\*/);
    assertNoSecret(shown(refused), 'a refused host URI');
  });

  it('keeps the passwords out of an unreachable host’s errors and its log lines', async () => {
    assert.equal((await http.post('/v1/hosts', { name: 'down', uri: DOWN_URI })).status, 201);
    const res = await http.get('/v1/hosts/down/domains');
    assert.equal(res.status, 503, res.text);
    assertNoSecret(shown(res), 'an unreachable host');
    const view = await http.get('/v1/hosts/down');
    assert.equal(view.body.connection.state, 'unreachable');
    assertNoSecret(shown(view), 'an unreachable host’s view');
    // The host is named in the logs, with its URI redacted.
    assert.ok(
      t.logs.raw.some((l) =>
        l.includes("host 'down' (test+tcp://vguser:***@127.0.0.1:1/default?pass=***)"),
      ),
      'the unreachable host is logged with its URI redacted',
    );
  });

  it('defines a domain from raw XML with a VNC password: libvirt has it, nothing else shows it', async () => {
    const xml = testDriverDomainXml(DOMAIN, 64).replace(
      '</domain>',
      `<devices><graphics type="vnc" port="-1" autoport="yes" passwd="${VNC_PASSWORD}"/></devices></domain>`,
    );
    assert.ok(xml.includes(VNC_PASSWORD));
    const headers = { prefer: 'wait=10', 'idempotency-key': `secrets-${DOMAIN}` };
    const res = await http.post('/v1/hosts/leaky/domains', { xml }, headers);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.state, 'completed', JSON.stringify(res.body.error));
    assertNoSecret(shown(res), 'the define job');
    assert.match(res.body.request.xml, /passwd="\[redacted\]"/, 'the request is shown, redacted');
    const id = res.body.id as string;

    // libvirt got the password as given.
    const { dom } = (await libvirt.rpc.domainLookupByName({ name: DOMAIN })) as {
      dom: RemoteDomain;
    };
    const secure = await libvirt.rpc.domainGetXmlDesc({ dom, flags: DomainXmlFlags.SECURE });
    assert.ok(
      secure.xml.includes(`passwd='${VNC_PASSWORD}'`) ||
        secure.xml.includes(`passwd="${VNC_PASSWORD}"`),
    );

    // The record, as the API shows it and as Redis holds it.
    const job = await http.get(`/v1/jobs/${id}`);
    assert.equal(job.status, 200);
    assertNoSecret(shown(job), 'GET /v1/jobs/{id}');
    assertNoSecret(JSON.stringify(await redis.hgetall(keys.job(id))), 'the job record in Redis');
    assertNoSecret(shown(await http.get('/v1/jobs')), 'GET /v1/jobs');
    const gql = await http.post('/graphql', { query: `{ job(id: "${id}") { request resolved } }` });
    assertNoSecret(shown(gql), 'GraphQL job');

    // The same key and request are a replay of the same job, though the record is redacted.
    const replay = await http.post('/v1/hosts/leaky/domains', { xml }, headers);
    assert.ok([200, 202].includes(replay.status), replay.text);
    assert.equal(replay.body.id, id);
    // The same key with another password is the same request as far as the record can tell.
    const xmlView = await http.get(`/v1/hosts/leaky/domains/${DOMAIN}/xml`);
    assert.equal(xmlView.status, 200);
    assertNoSecret(shown(xmlView), 'GET …/xml');

    // BullMQ's copy of the job keeps the params only until the job is done.
    await waitFor(
      async () => {
        const leaking: string[] = [];
        for (const key of await keysUnder(redis, keys.bull)) {
          const entry = await keyValue(redis, key);
          if (JSON.stringify(entry?.value ?? '').includes(VNC_PASSWORD)) leaking.push(key);
        }
        // Named in the timeout's message (waitFor keeps the last error).
        if (leaking.length > 0)
          throw new Error(`BullMQ holds the password in ${leaking.join(', ')}`);
        return true;
      },
      'BullMQ to drop the job params holding the password',
      10_000,
    );
  });

  it('wrote none of the secrets in any log line', () => {
    assert.ok(t.logs.raw.length > 10, 'the app logged');
    assertNoSecret(t.logs.raw.join('\n'), 'the logs');
  });
});
