/**
 * Scoped tokens against real libvirtd (the test driver, as hosts `local` and
 * `other`): a token scoped to `<tag>-web-*` on one host sees and starts only
 * those domains, on REST and GraphQL alike; what is outside its scope answers
 * as if it did not exist; jobs are shown to their requester and to tokens
 * whose scope covers their target.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { LibvirtClient, uuidString, type RemoteDomain } from '#src/libvirt/index.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'scopes-test-admin-token-0123456789';
const URI = 'test+tcp://127.0.0.1/default';
const tag = `sc${process.pid}`;

describe('scoped tokens', () => {
  let t: TestApp;
  let client: LibvirtClient;
  const doms: Record<string, RemoteDomain> = {};
  /** An operator scoped to `<tag>-web-*` on `local`; a viewer scoped to host `other`; a token with no pools. */
  let web = '';
  let other = '';
  let noPools = '';

  const as = (token: string) => ({
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${token}`),
    post: (url: string, body: object = {}) =>
      request(t.server)
        .post(url)
        .set('authorization', `Bearer ${token}`)
        .set('prefer', 'wait=10')
        .send(body),
    del: (url: string) => request(t.server).delete(url).set('authorization', `Bearer ${token}`),
    gql: (query: string) =>
      request(t.server)
        .post('/graphql')
        .set('authorization', `Bearer ${token}`)
        .set('content-type', 'application/json')
        .send({ query }),
  });
  const admin = () => as(ADMIN);
  const names = (items: Array<{ name: string }>) => items.map((d) => d.name).sort();

  before(async () => {
    client = await LibvirtClient.connect(URI);
    for (const name of ['web-1', 'web-2', 'db-1']) {
      doms[name] = (
        await client.rpc.domainDefineXmlFlags({
          xml: testDriverDomainXml(`${tag}-${name}`, 64),
          flags: 0,
        })
      ).dom;
    }
    t = await startApp(
      testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, LIBVIRT_DEFAULT_URI: URI }),
    );
    const registered = await admin().post('/v1/hosts', { name: 'other', uri: URI });
    assert.equal(registered.status, 201, registered.text);
    const make = async (body: object) => {
      const res = await admin().post('/v1/tokens', body);
      assert.equal(res.status, 201, res.text);
      return res.body.token as string;
    };
    web = await make({
      name: 'web',
      role: 'operator',
      scopes: [{ host: 'local', domains: [`${tag}-web-*`] }],
    });
    other = await make({ name: 'other', role: 'viewer', scopes: [{ host: 'other' }] });
    noPools = await make({
      name: 'no-pools',
      role: 'viewer',
      scopes: [{ host: 'local', pools: ['nothing-*'] }],
    });
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
    for (const dom of Object.values(doms)) {
      await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await client.close();
  });

  it('lists only the hosts and domains the scope covers, and says so', async () => {
    const hosts = await as(web).get('/v1/hosts');
    assert.deepEqual(names(hosts.body.items), ['local']);
    assert.equal(hosts.body.scopeFiltered, true);
    for (const query of [`namePrefix=${tag}`, `namePrefix=${tag}&state=shutoff`]) {
      const list = await as(web).get(`/v1/hosts/local/domains?${query}`);
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(names(list.body.items), [`${tag}-web-1`, `${tag}-web-2`]);
      assert.equal(list.body.scopeFiltered, true);
      assert.equal(list.body.totalCount ?? 2, 2);
    }
    const all = await admin().get(`/v1/hosts/local/domains?namePrefix=${tag}`);
    assert.deepEqual(names(all.body.items), [`${tag}-db-1`, `${tag}-web-1`, `${tag}-web-2`]);
    assert.equal(all.body.scopeFiltered, false);
    const gql = await as(web).gql(
      `{ host(name: "local") { domains(first: 50, filter: { namePrefix: "${tag}" }) { edges { node { name } } scopeFiltered } } }`,
    );
    assert.deepEqual(
      gql.body.data.host.domains.edges.map((e: { node: { name: string } }) => e.node.name),
      [`${tag}-web-1`, `${tag}-web-2`],
    );
    assert.equal(gql.body.data.host.domains.scopeFiltered, true);
  });

  it('answers a domain outside the scope exactly as one that does not exist', async () => {
    const unknown = await as(web).get(`/v1/hosts/local/domains/${tag}-none`);
    const db = await as(web).get(`/v1/hosts/local/domains/${tag}-db-1`);
    const byUuid = await as(web).get(`/v1/hosts/local/domains/${uuidString(doms['db-1']!.uuid)}`);
    assert.equal(unknown.status, 404);
    for (const res of [db, byUuid]) {
      assert.equal(res.status, 404, res.text);
      assert.equal(res.body.code, 'NOT_FOUND');
    }
    assert.equal(db.body.detail, unknown.body.detail.replace(`${tag}-none`, `${tag}-db-1`));
    for (const path of ['xml', 'disks', 'snapshots']) {
      const res = await as(web).get(`/v1/hosts/local/domains/${tag}-db-1/${path}`);
      assert.equal(res.status, 404, `${path}: ${res.text}`);
    }
    const gql = await as(web).gql(
      `{ host(name: "local") { domain(name: "${tag}-db-1") { name } } }`,
    );
    assert.equal(gql.body.errors[0].extensions.code, 'NOT_FOUND');
    const otherHost = await as(web).get('/v1/hosts/other/domains');
    assert.equal(otherHost.status, 404);
  });

  it('starts what the scope covers and nothing else', async () => {
    const refused = await as(web).post(`/v1/hosts/local/domains/${tag}-db-1/actions/start`);
    assert.equal(refused.status, 404, refused.text);
    const started = await as(web).post(`/v1/hosts/local/domains/${tag}-web-1/actions/start`);
    assert.equal(started.status, 200, started.text);
    assert.equal(started.body.state, 'completed');
    const { state } = await client.rpc.domainGetState({ dom: doms['web-1']!, flags: 0 });
    assert.equal(state, 1, 'web-1 runs');
    const db = await client.rpc.domainGetState({ dom: doms['db-1']!, flags: 0 });
    assert.equal(db.state, 5, 'db-1 is still shut off');
    const define = await as(web).post('/v1/hosts/local/domains', {
      name: `${tag}-db-9`,
      memoryMiB: 64,
      vcpus: 1,
    });
    assert.equal(define.status, 403, define.text);
    assert.equal(define.body.code, 'FORBIDDEN');
    const viewer = await as(other).post(`/v1/hosts/other/domains/${tag}-web-2/actions/start`);
    assert.equal(viewer.status, 403, 'a viewer starts nothing, even in its scope');
  });

  it('shows a job to its requester and to tokens whose scope covers its target', async () => {
    const byAdmin = await admin().post(`/v1/hosts/local/domains/${tag}-db-1/actions/start`);
    assert.equal(byAdmin.status, 200, byAdmin.text);
    const dbJob = byAdmin.body.id as string;
    const webJob = (await admin().post(`/v1/hosts/local/domains/${tag}-web-2/actions/start`)).body
      .id as string;
    assert.equal((await as(web).get(`/v1/jobs/${dbJob}`)).status, 404);
    assert.equal((await as(web).get(`/v1/jobs/${webJob}`)).status, 200, 'its target is in scope');
    assert.equal((await admin().get(`/v1/jobs/${dbJob}`)).status, 200);
    const listed = await as(web).get('/v1/jobs?limit=100');
    assert.equal(listed.body.scopeFiltered, true);
    const ids = listed.body.items.map((j: { id: string }) => j.id);
    assert.ok(ids.includes(webJob) && !ids.includes(dbJob), JSON.stringify(ids));
    for (const j of listed.body.items as Array<{ domain: string | null }>) {
      assert.match(j.domain ?? '', new RegExp(`^${tag}-web-`));
    }
    // A token scoped to another host sees none of these: host `local` is outside it.
    assert.equal((await as(other).get(`/v1/jobs/${webJob}`)).status, 404);
    const cancel = await as(web).del(`/v1/jobs/${dbJob}`);
    assert.equal(cancel.status, 404, 'a job it cannot see, it cannot cancel');
  });

  it('keeps a scoped admin to its scope: no hosts to register, no audit trail', async () => {
    const res = await admin().post('/v1/tokens', {
      name: 'scoped-admin',
      role: 'admin',
      scopes: [{ host: 'local', domains: [`${tag}-web-*`] }],
    });
    const scopedAdmin = as(res.body.token as string);
    const host = await scopedAdmin.post('/v1/hosts', { name: 'another', uri: URI });
    assert.equal(host.status, 403, host.text);
    assert.equal((await scopedAdmin.get('/v1/audit')).status, 403);
    assert.equal((await admin().get('/v1/audit')).status, 200);
    // Its scope names domains only: it reaches no pool.
    const pools = await scopedAdmin.get('/v1/hosts/local/pools');
    assert.deepEqual(pools.body.items, []);
    // And it cannot make a token reaching beyond its own scope.
    const wider = await scopedAdmin.post('/v1/tokens', { name: 'wider', role: 'viewer' });
    assert.equal(wider.status, 403, wider.text);
  });

  it('lists only the pools the scope covers', async () => {
    const pools = await as(noPools).get('/v1/hosts/local/pools');
    assert.equal(pools.status, 200, pools.text);
    assert.deepEqual(pools.body.items, []);
    assert.equal(pools.body.scopeFiltered, true);
    const all = await admin().get('/v1/hosts/local/pools');
    assert.ok(all.body.items.length > 0);
    const one = await as(noPools).get(`/v1/hosts/local/pools/${all.body.items[0].name}`);
    assert.equal(one.status, 404);
  });
});
