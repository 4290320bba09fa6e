/**
 * The audit trail against real Redis and libvirtd (the test driver): job
 * requests, host registrations, 401s and 403s (REST and GraphQL) each appear
 * once in GET /v1/audit with who, what, target, request id, address and
 * result; filters and cursor pagination; admins only; denied authentications
 * folded per address; retention trims old entries; nothing changes or
 * deletes an entry.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { redisKeys } from '#src/redis/keys.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { waitFor } from '../support/wait.js';
import { graphql } from './graphql-helpers.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  REDIS_URL,
  startApp,
  storeToken,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const keys = redisKeys(prefix);
const ADMIN = 'audit-test-admin-token-0123456789';
const OPERATOR = 'audit-test-operator-token-0123456789';
const WRONG = 'audit-test-wrong-token-0123456789';
const DAY_MS = 24 * 3600 * 1000;
/** AUDIT_DENIED_WINDOW_SECONDS of the test app. */
const WINDOW_MS = 2000;
const LOOPBACK = /^(::ffff:)?127\.0\.0\.1$|^::1$/;

interface AuditEvent {
  id: string;
  at: string;
  actor: { id: string; role: string } | null;
  action: string;
  target: string | null;
  host: string | null;
  requestId: string;
  address: string | null;
  result: string;
  code: string | null;
  detail: Record<string, unknown> | null;
}

describe('audit', () => {
  let t: TestApp;
  let client: LibvirtClient;
  let dom: RemoteDomain;
  const run = randomUUID().slice(0, 6);
  const hostName = `audit-${run}`;
  const domName = `vg-audit-${run}`;
  const oldIds: string[] = [];

  const as = (token: string, requestId: string) => ({
    get: (url: string) =>
      request(t.server)
        .get(url)
        .set('authorization', `Bearer ${token}`)
        .set('x-request-id', requestId),
    post: (url: string, body: object = {}, headers: Record<string, string> = {}) =>
      request(t.server)
        .post(url)
        .set('authorization', `Bearer ${token}`)
        .set('x-request-id', requestId)
        .set(headers)
        .send(body),
    del: (url: string) =>
      request(t.server)
        .delete(url)
        .set('authorization', `Bearer ${token}`)
        .set('x-request-id', requestId),
  });
  const admin = (requestId = `rq-${randomUUID()}`) => as(ADMIN, requestId);

  async function audit(query: Record<string, string | number> = {}): Promise<AuditEvent[]> {
    const res = await admin()
      .get('/v1/audit')
      .query({ limit: 500, ...query });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items as AuditEvent[];
  }

  /** The entries of one request, once there are `atLeast` (denials are written once the answer went). */
  function entriesOf(requestId: string, atLeast = 1): Promise<AuditEvent[]> {
    return waitFor(async () => {
      const items = await audit({ requestId });
      return items.length >= atLeast ? items : null;
    }, `${atLeast} audit entries of request ${requestId}`);
  }

  /**
   * Waits until what is written after the answers already received is written:
   * a later 403, recorded the same way (once its answer went, one XADD on the
   * same connection), has its entry.
   */
  async function auditSettled(): Promise<void> {
    const rq = `settle-${randomUUID()}`;
    assert.equal((await as(OPERATOR, rq).get('/v1/audit')).status, 403);
    await entriesOf(rq);
  }

  /** Denied authentications from here fold into one entry per window: until it ends (its Redis key expires). */
  async function deniedWindowOver(): Promise<void> {
    const redis = new Redis(REDIS_URL);
    try {
      const gates = keys.auditDeniedGate('*');
      await waitFor(
        async () => (await redis.keys(gates)).length === 0,
        'the window of denied authentications to end',
      );
    } finally {
      redis.disconnect();
    }
  }

  before(async () => {
    // Entries older than the retention (1 day), as a gateway running for days would have left.
    const redis = new Redis(REDIS_URL);
    const old = Date.now() - 3 * DAY_MS;
    for (let i = 0; i < 3; i++) {
      const id = `${old + i}-0`;
      oldIds.push(id);
      const entry = {
        actor: { id: 'admin', role: 'admin' },
        action: 'host.register',
        target: `old-${i}`,
        host: `old-${i}`,
        requestId: `old-entry-${i}`,
        address: '127.0.0.1',
        result: 'accepted',
        code: null,
        at: new Date(old + i).toISOString(),
      };
      await redis.xadd(`${prefix}audit`, id, 'e', JSON.stringify(entry));
    }
    await storeToken(prefix, OPERATOR, { id: 'operator-1', role: 'operator' });
    await redis.quit();
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    dom = (
      await client.rpc.domainDefineXmlFlags({ xml: testDriverDomainXml(domName, 64), flags: 0 })
    ).dom;
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        AUDIT_RETENTION_DAYS: '1',
        GRAPHQL_INTROSPECTION: 'true',
        AUDIT_DENIED_WINDOW_SECONDS: String(WINDOW_MS / 1000),
      }),
    );
  });

  after(async () => {
    await closeAllApps();
    await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
    await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    await client.close();
    await deleteKeys(prefix);
  });

  it('records a host registration, a refused one and an unregistration', async () => {
    const rq = `reg-${run}`;
    const res = await admin(rq).post('/v1/hosts', {
      name: hostName,
      uri: 'test+tcp://127.0.0.1/default',
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const [entry, ...more] = await entriesOf(rq);
    assert.equal(more.length, 0, 'one entry');
    assert.ok(entry);
    assert.deepEqual(entry.actor, { id: 'admin', role: 'admin' });
    assert.equal(entry.action, 'host.register');
    assert.equal(entry.target, hostName);
    assert.equal(entry.host, hostName);
    assert.equal(entry.requestId, rq);
    assert.match(entry.address ?? '', LOOPBACK);
    assert.equal(entry.result, 'accepted');
    assert.equal(entry.code, null);
    assert.deepEqual(entry.detail, { uri: 'test+tcp://127.0.0.1/default' });
    assert.ok(Math.abs(Date.parse(entry.at) - Date.now()) < 10_000);

    const again = await admin(`${rq}-again`).post('/v1/hosts', {
      name: hostName,
      uri: 'test+tcp://127.0.0.1/default',
    });
    assert.equal(again.status, 409);
    const [refused] = await entriesOf(`${rq}-again`);
    assert.equal(refused?.result, 'refused');
    assert.equal(refused?.code, 'ALREADY_EXISTS');

    // A URI's password and query never reach the trail.
    const secret = await admin(`${rq}-secret`).post('/v1/hosts', {
      name: `${hostName}-s`,
      uri: 'qemu+tcp://user:hunter2-pw@127.0.0.1:1/system?password=hunter3-pw',
    });
    assert.equal(secret.status, 201, JSON.stringify(secret.body));
    await admin(`${rq}-secret-del`).del(`/v1/hosts/${hostName}-s`).expect(204);
    const raw = JSON.stringify(await audit());
    assert.ok(!raw.includes('hunter2-pw') && !raw.includes('hunter3-pw'), raw);

    const gone = await admin(`${rq}-del`).del('/v1/hosts/no-such-host');
    assert.equal(gone.status, 404);
    const [missing] = await entriesOf(`${rq}-del`);
    assert.equal(missing?.action, 'host.unregister');
    assert.equal(missing?.result, 'refused');
    assert.equal(missing?.code, 'NOT_FOUND');
  });

  it('records job requests: accepted, replayed with the same Idempotency-Key, refused', async () => {
    const url = `/v1/hosts/${hostName}/domains/${domName}/actions/start`;
    const key = { 'idempotency-key': `audit-${run}` };
    const res = await admin(`job-${run}`).post(url, {}, key);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const [entry] = await entriesOf(`job-${run}`);
    assert.ok(entry);
    assert.deepEqual(entry.actor, { id: 'admin', role: 'admin' });
    assert.equal(entry.action, 'job.request');
    assert.equal(entry.target, `${hostName}/${domName}`);
    assert.equal(entry.host, hostName);
    assert.match(entry.address ?? '', LOOPBACK);
    assert.equal(entry.result, 'accepted');
    assert.deepEqual(entry.detail, { type: 'domain.start', jobId: res.body.id });

    const replay = await admin(`job-${run}-replay`).post(url, {}, key);
    assert.equal(replay.body.id, res.body.id);
    const [replayed] = await entriesOf(`job-${run}-replay`);
    assert.equal(replayed?.result, 'replayed');
    assert.equal(replayed?.detail?.jobId, res.body.id);

    const mismatch = await admin(`job-${run}-mismatch`).post(
      `/v1/hosts/${hostName}/domains/${domName}/actions/start`,
      { paused: true },
      key,
    );
    assert.equal(mismatch.status, 422, JSON.stringify(mismatch.body));
    const [refused] = await entriesOf(`job-${run}-mismatch`);
    assert.equal(refused?.result, 'refused');
    assert.equal(refused?.code, 'IDEMPOTENCY_MISMATCH');
    assert.equal(refused?.detail?.jobId, undefined);

    // Refused by the check against the live state (resume needs a paused domain).
    const resume = await admin(`job-${run}-resume`).post(
      `/v1/hosts/${hostName}/domains/${domName}/actions/resume`,
    );
    assert.equal(resume.status, 409, JSON.stringify(resume.body));
    const [invalid] = await entriesOf(`job-${run}-resume`);
    assert.equal(invalid?.result, 'refused');
    assert.equal(invalid?.code, 'INVALID_STATE');
    assert.equal(invalid?.detail?.type, 'domain.resume');
  });

  it('records a 401 once, without the token, as auth.denied of nobody', async () => {
    await deniedWindowOver(); // a window of its own
    const rq = `unauth-${run}`;
    const res = await as(WRONG, rq).get('/v1/hosts?access_token=x');
    assert.equal(res.status, 401);
    const [entry, ...more] = await entriesOf(rq);
    assert.equal(more.length, 0);
    assert.ok(entry, 'the 401 is recorded');
    assert.equal(entry.actor, null);
    assert.equal(entry.action, 'auth.denied');
    assert.equal(entry.target, 'GET /v1/hosts');
    assert.match(entry.address ?? '', LOOPBACK);
    assert.equal(entry.result, 'denied');
    assert.equal(entry.code, 'UNAUTHENTICATED');
    assert.equal(entry.detail?.credentials, 'invalid');
    assert.ok(!JSON.stringify(await audit()).includes(WRONG), 'the token is never kept');
  });

  it('folds a flood of denied authentications into one entry per address and window', async () => {
    await deniedWindowOver();
    for (let i = 0; i < 6; i++) {
      const res = await request(t.server).get('/v1/hosts').set('x-request-id', `flood-${run}-${i}`);
      assert.equal(res.status, 401);
    }
    const [first] = await entriesOf(`flood-${run}-0`);
    assert.ok(first?.address);
    assert.equal(first.detail?.credentials, 'none');
    assert.equal(first.detail?.folded, undefined);
    // The 5 others were counted for the next entry of the address, not written.
    const redis = new Redis(REDIS_URL);
    try {
      await waitFor(
        async () => (await redis.get(keys.auditDeniedFolded(first.address!))) === '5',
        'the 5 folded denials to be counted',
      );
    } finally {
      redis.disconnect();
    }
    const denied = (await audit({ action: 'auth.denied' })).filter((e) =>
      e.requestId.startsWith(`flood-${run}-`),
    );
    assert.deepEqual(
      denied.map((e) => e.requestId),
      [`flood-${run}-0`],
    );
    await deniedWindowOver();
    await request(t.server).get('/v1/hosts').set('x-request-id', `flood-${run}-next`).expect(401);
    const [next] = await entriesOf(`flood-${run}-next`);
    assert.equal(next?.detail?.folded, 5, 'the next entry counts the 5 folded ones');
  });

  it('records a 403 once, with the caller, as access.denied', async () => {
    const rq = `forbid-${run}`;
    const res = await as(OPERATOR, rq).post('/v1/hosts', { name: 'nope', uri: 'test:///default' });
    assert.equal(res.status, 403, JSON.stringify(res.body));
    const [entry, ...more] = await entriesOf(rq);
    assert.equal(more.length, 0);
    assert.ok(entry);
    assert.deepEqual(entry.actor, { id: 'operator-1', role: 'operator' });
    assert.equal(entry.action, 'access.denied');
    assert.equal(entry.target, 'POST /v1/hosts');
    assert.match(entry.address ?? '', LOOPBACK);
    assert.equal(entry.result, 'denied');
    assert.equal(entry.code, 'FORBIDDEN');
  });

  it('is for admins only, on REST and GraphQL; a refused GraphQL operation is one entry', async () => {
    const rq = `nonadmin-${run}`;
    const res = await as(OPERATOR, rq).get('/v1/audit');
    assert.equal(res.status, 403);
    assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.equal(res.body.code, 'FORBIDDEN');
    assert.equal((await entriesOf(rq))[0]?.target, 'GET /v1/audit');

    const gq = `nonadmin-gql-${run}`;
    const body = await graphql(
      t,
      OPERATOR,
      '{ a: auditEvents { edges { node { id } } } b: auditEvents { edges { node { id } } } }',
      undefined,
      { 'x-request-id': gq },
    );
    const codes = (body.body.errors ?? []).map(
      (e: { extensions: { code: string } }) => e.extensions.code,
    );
    // Both fields are refused (a refused non-null root field nulls the answer: one error may be shown).
    assert.ok(codes.length >= 1 && codes.every((c: string) => c === 'FORBIDDEN'), codes.join());
    await auditSettled(); // a second entry, if any, would be there by now
    const entries = await entriesOf(gq);
    assert.equal(entries.length, 1, JSON.stringify(entries));
    assert.equal(entries[0]?.action, 'access.denied');
    assert.equal(entries[0]?.target, 'graphql Query.auditEvents');
    assert.deepEqual(entries[0]?.actor, { id: 'operator-1', role: 'operator' });
  });

  it('filters by actor, action, target, host, result and time', async () => {
    const all = await audit();
    assert.ok(all.length >= 10, `${all.length} entries`);
    const byActor = await audit({ actor: 'operator-1' });
    assert.ok(byActor.length >= 3 && byActor.every((e) => e.actor?.id === 'operator-1'));
    const byAction = await audit({ action: 'job.request' });
    assert.deepEqual(
      byAction.map((e) => e.result),
      ['refused', 'refused', 'replayed', 'accepted'],
    );
    const byTarget = await audit({ target: `${hostName}/${domName}` });
    assert.equal(byTarget.length, 4);
    const byHost = await audit({ host: hostName });
    assert.deepEqual(
      byHost.map((e) => e.action),
      [
        'job.request',
        'job.request',
        'job.request',
        'job.request',
        'host.register',
        'host.register',
      ],
    );
    const combined = await audit({ host: hostName, result: 'accepted' });
    assert.deepEqual(
      combined.map((e) => e.action),
      ['job.request', 'host.register'],
    );
    const denied = await audit({ result: 'denied' });
    assert.ok(denied.every((e) => e.action.endsWith('.denied')) && denied.length >= 5);

    const middle = all[Math.floor(all.length / 2)]!;
    const since = await audit({ since: middle.at });
    assert.ok(since.every((e) => Date.parse(e.at) >= Date.parse(middle.at)));
    assert.ok(since.some((e) => e.id === middle.id) && since.length < all.length);
    const until = await audit({ until: middle.at });
    assert.ok(until.some((e) => e.id === middle.id));
    assert.ok(until.every((e) => Date.parse(e.at) <= Date.parse(middle.at)));
    assert.equal(since.length + until.length, all.length + 1 + sameMs(all, middle));

    for (const query of [{ action: 'token.steal' }, { result: 'maybe' }, { since: 'yesterday' }]) {
      const res = await admin().get('/v1/audit').query(query);
      assert.equal(res.status, 400, JSON.stringify(query));
      assert.equal(res.body.code, 'INVALID_ARGUMENT');
    }
  });

  it('pages newest first with a cursor, on REST and GraphQL alike', async () => {
    const all = await audit();
    const ids = all.map((e) => e.id);
    assert.deepEqual([...ids].sort(compareIds).reverse(), ids, 'newest first');
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await admin()
        .get('/v1/audit')
        .query({ limit: 3, ...(cursor ? { cursor } : {}) });
      assert.equal(res.status, 200);
      assert.ok(res.body.items.length <= 3);
      paged.push(...res.body.items.map((e: AuditEvent) => e.id));
      cursor = res.body.nextCursor;
    } while (cursor !== null);
    // Entries written meanwhile (the listing's own are none) come before the first page.
    assert.deepEqual(paged, ids);

    const filteredPage = await admin().get('/v1/audit').query({ limit: 1, host: hostName });
    assert.equal(filteredPage.body.items[0].host, hostName);
    const second = await admin()
      .get('/v1/audit')
      .query({ limit: 1, host: hostName, cursor: filteredPage.body.nextCursor });
    assert.equal(second.body.items[0].host, hostName);
    assert.notEqual(second.body.items[0].id, filteredPage.body.items[0].id);

    const first = await graphql(
      t,
      ADMIN,
      `query($after: String) { auditEvents(first: 2, after: $after, filter: { host: "${hostName}" }) {
        edges { cursor node { id action actor { id role } target host requestId address result code detail } }
        pageInfo { hasNextPage endCursor } } }`,
    );
    assert.equal(first.body.errors, undefined, JSON.stringify(first.body.errors));
    const conn = first.body.data.auditEvents;
    assert.equal(conn.edges.length, 2);
    assert.equal(conn.pageInfo.hasNextPage, true);
    assert.equal(conn.edges[0].node.host, hostName);
    const rest = await admin()
      .get('/v1/audit')
      .query({ host: hostName, cursor: conn.pageInfo.endCursor });
    assert.deepEqual(
      [
        ...conn.edges.map((e: { node: AuditEvent }) => e.node.id),
        ...rest.body.items.map((e: AuditEvent) => e.id),
      ],
      (await audit({ host: hostName })).map((e) => e.id),
      'a GraphQL cursor works as a REST cursor',
    );

    const bad = await admin().get('/v1/audit').query({ cursor: 'bm90LWEtY3Vyc29y' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].field, 'cursor');
  });

  it('trims entries older than AUDIT_RETENTION_DAYS from the stream and never lists them', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      const stream = (await redis.xrange(`${prefix}audit`, '-', '+')) as Array<[string, string[]]>;
      const cutoff = Date.now() - DAY_MS;
      assert.ok(stream.length > 0);
      for (const id of oldIds) assert.ok(!stream.some(([s]) => s === id), `${id} trimmed`);
      assert.ok(stream.every(([id]) => Number(id.split('-')[0]) > cutoff));
    } finally {
      await redis.quit();
    }
    assert.deepEqual(await audit({ requestId: 'old-entry-0' }), []);
  });

  it('has no way to change or delete an entry', async () => {
    const [entry] = await audit({ limit: 1 });
    assert.ok(entry);
    for (const [method, url] of [
      ['delete', `/v1/audit/${entry.id}`],
      ['put', `/v1/audit/${entry.id}`],
      ['patch', `/v1/audit/${entry.id}`],
      ['get', `/v1/audit/${entry.id}`],
    ] as const) {
      const agent = request(t.server);
      const res = await agent[method](url).set('authorization', `Bearer ${ADMIN}`).send({});
      assert.equal(res.status, 404, `${method} ${url}: ${res.status}`);
    }
    // The list itself only reads: any other method is 405, and Allow says so.
    for (const method of ['delete', 'put', 'patch', 'post'] as const) {
      const agent = request(t.server);
      const res = await agent[method]('/v1/audit').set('authorization', `Bearer ${ADMIN}`).send({});
      assert.equal(res.status, 405, `${method} /v1/audit: ${res.status}`);
      assert.equal(res.headers.allow, 'GET, HEAD');
    }
    const doc = await request(t.server)
      .get('/docs/openapi.json')
      .set('authorization', `Bearer ${ADMIN}`);
    const paths = Object.entries(doc.body.paths as Record<string, object>).filter(([p]) =>
      p.includes('audit'),
    );
    assert.deepEqual(
      paths.map(([p, ops]) => [p, Object.keys(ops)]),
      [['/v1/audit', ['get']]],
    );
    const schema = await graphql(t, ADMIN, '{ __schema { mutationType { fields { name } } } }');
    const mutations = schema.body.data.__schema.mutationType.fields.map(
      (f: { name: string }) => f.name,
    );
    assert.ok(!mutations.some((m: string) => /audit/i.test(m)), mutations.join(' '));
    assert.ok(
      (await audit()).some((e) => e.id === entry.id),
      'the entry is still there',
    );
  });

  it('never fails the request it records: a write that fails is logged and counted', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      // A key of the wrong type: every XADD to it fails, as a real Redis refusal.
      await redis.del(`${prefix}audit`);
      await redis.set(`${prefix}audit`, 'not a stream');
      const rq = `lost-${run}`;
      const res = await admin(rq).post('/v1/hosts', {
        name: `${hostName}-lost`,
        uri: 'test+tcp://127.0.0.1/default',
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const line = t.logs.lines.find(
        (l) => typeof l.msg === 'string' && l.msg.includes(`host.register of request ${rq}`),
      );
      assert.ok(line, 'the lost entry is logged');
      assert.equal(line.level, 'error');
      assert.match(String(line.msg), /\d+ entries lost since start/);
    } finally {
      await redis.del(`${prefix}audit`);
      await redis.quit();
    }
    await admin().del(`/v1/hosts/${hostName}-lost`).expect(204);
    assert.equal((await audit({ action: 'host.unregister' })).length, 1, 'recording goes on');
  });
});

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}

/** Entries other than `e` of the same millisecond as it (in both the since and the until pages). */
function sameMs(all: AuditEvent[], e: AuditEvent): number {
  return all.filter((x) => x.id !== e.id && x.at === e.at).length;
}
