/**
 * Hosts over REST against real Redis and libvirtd: the default host, hosts
 * registered over UNIX and TCP, bad input, an unreachable host, pagination,
 * admin-only changes, and records that survive a restart. Each test
 * registers the hosts it needs under its own names: none relies on another
 * having run, in any order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  startApp,
  storeToken,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'hosts-test-admin-token-0123456789';
const USER = 'hosts-test-user-token-0123456789';

describe('hosts', () => {
  let t: TestApp;
  const as = (token: string) => ({
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${token}`),
    post: (url: string, body: object) =>
      request(t.server).post(url).set('authorization', `Bearer ${token}`).send(body),
    del: (url: string) => request(t.server).delete(url).set('authorization', `Bearer ${token}`),
  });
  const admin = () => as(ADMIN);
  const register = async (
    name: string,
    uri = 'test+unix:///default',
  ): Promise<request.Response> => {
    const res = await admin().post('/v1/hosts', { name, uri });
    assert.equal(res.status, 201, `${name}: ${JSON.stringify(res.body)}`);
    return res;
  };
  const names = (res: request.Response): string[] =>
    res.body.items.map((h: { name: string }) => h.name);

  before(async () => {
    await storeToken(prefix, USER, { id: 'user-1', role: 'operator' });
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
  });

  it('registers the default libvirt host as "local" at first start, connected', async () => {
    const res = await admin().get('/v1/hosts/local');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const host = res.body;
    assert.equal(host.uri, 'qemu:///system');
    assert.equal(host.connection.state, 'connected');
    assert.equal(host.connection.lastError, null);
    assert.match(host.libvirtVersion, /^\d+\.\d+\.\d+$/);
    assert.equal(host.hypervisor.type, 'QEMU');
    assert.ok(host.node.cpus >= 1);
    assert.ok(host.node.memoryBytes > 64 * 1024 ** 2);
    assert.ok(host.hostname.length > 0);
    const x86 = host.capabilities.guests.find((g: { arch: string }) => g.arch === 'x86_64');
    assert.ok(x86, 'an x86_64 guest capability');
    assert.ok(x86.domainTypes.includes('qemu'), 'TCG is available');
    assert.ok(x86.machines.includes('pc'));
  });

  for (const [name, uri] of [
    ['test-unix', 'test+unix:///default'],
    ['test-tcp', 'test+tcp://127.0.0.1/default'],
  ] as const) {
    it(`registers a host over ${uri}`, async () => {
      const res = await admin().post('/v1/hosts', { name, uri });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.name, name);
      assert.equal(res.body.uri, uri);
      assert.equal(res.body.connection.state, 'connected');
      assert.equal(res.body.hypervisor.type, 'TEST');
      assert.equal(res.body.node.cpus, 16, 'the test driver has 16 CPUs');
      const again = await admin().get(`/v1/hosts/${name}`);
      assert.equal(again.status, 200);
      assert.equal(again.body.hostname, res.body.hostname);
    });
  }

  it('refuses a duplicate name, a bad URI, credential files outside HOST_CREDENTIAL_DIRS and a bad name, naming the field', async () => {
    await register('dup-target');
    const dup = await admin().post('/v1/hosts', {
      name: 'dup-target',
      uri: 'test+unix:///default',
    });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 'ALREADY_EXISTS');
    for (const [body, field] of [
      [{ name: 'bad-uri', uri: 'not a uri' }, 'uri'],
      [{ name: 'bad-uri', uri: 'qemu+ftp://h/system' }, 'uri'],
      [{ name: 'tls', uri: 'qemu+tls://127.0.0.1/system?pkipath=/etc' }, 'uri'],
      [{ name: 'ssh', uri: 'qemu+ssh://root@h/system?keyfile=/etc/shadow' }, 'uri'],
      [{ name: 'Bad Name', uri: 'qemu:///system' }, 'name'],
      [{ name: 'x', uri: 'qemu:///system', extra: true }, 'extra'],
      [{ name: 'x' }, 'uri'],
    ] as const) {
      const res = await admin().post('/v1/hosts', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)} -> ${JSON.stringify(res.body)}`);
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, 'INVALID_ARGUMENT');
      assert.ok(
        res.body.errors.some((e: { field: string }) => e.field === field),
        `${JSON.stringify(body)} names ${field}: ${JSON.stringify(res.body.errors)}`,
      );
    }
  });

  it('shows an unreachable host without trying it again, with its state and last error', async () => {
    const created = await register('closed-port', 'qemu+tcp://127.0.0.1:1/system');
    assert.equal(created.body.connection.state, 'unreachable');
    const res = await admin().get('/v1/hosts/closed-port');
    assert.equal(res.status, 200);
    assert.equal(res.body.connection.state, 'unreachable');
    assert.match(res.body.connection.lastError, /ECONNREFUSED/);
    assert.equal(res.body.hostname, null);
    // The view is the breaker's, not a new attempt (which would pass through 'connecting'
    // and renew `since`); a probe that failed meanwhile leaves `since` as it was too.
    assert.equal(res.body.connection.since, created.body.connection.since);
  });

  it('lets only an admin register or remove hosts', async () => {
    const user = as(USER);
    await register('admin-only');
    assert.equal((await user.get('/v1/hosts/admin-only')).status, 200, 'users may read');
    const post = await user.post('/v1/hosts', { name: 'by-user', uri: 'test+unix:///default' });
    assert.equal(post.status, 403);
    assert.equal(post.body.code, 'FORBIDDEN');
    assert.equal((await admin().get('/v1/hosts/by-user')).status, 404, 'not registered');
    assert.equal((await user.del('/v1/hosts/admin-only')).status, 403);
    assert.equal((await admin().get('/v1/hosts/admin-only')).status, 200, 'not removed');
  });

  it('walks every host exactly once across pages', async () => {
    for (const name of ['walk-c', 'walk-a', 'walk-b']) await register(name);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: request.Response = await admin().get(
        `/v1/hosts?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.equal(res.status, 200);
      assert.ok(res.body.items.length <= 1);
      seen.push(...res.body.items.map((h: { name: string }) => h.name));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 50);
    assert.equal(cursor, null, 'the walk ended');
    // Whatever other tests registered: once each, in name order, the same as one page.
    assert.deepEqual(seen, [...new Set(seen)].sort(), JSON.stringify(seen));
    for (const name of ['local', 'walk-a', 'walk-b', 'walk-c'])
      assert.ok(seen.includes(name), name);
    const all = await admin().get('/v1/hosts?limit=500');
    assert.deepEqual(names(all), seen);
    assert.equal(all.body.nextCursor, null);
  });

  it('refuses an invalid cursor and a limit out of range', async () => {
    for (const query of [
      'cursor=not-a-cursor!',
      'cursor=eyJ4IjoxfQ',
      'limit=0',
      'limit=501',
      'limit=abc',
    ]) {
      const res = await admin().get(`/v1/hosts?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.code, 'INVALID_ARGUMENT');
      assert.equal(res.body.errors[0].field, query.split('=')[0]);
    }
  });

  it('removes a host, and keeps the others across a restart', async () => {
    const kept = await register('kept', 'test+tcp://127.0.0.1/default');
    await register('removed', 'qemu+tcp://127.0.0.1:1/system');
    const before = names(await admin().get('/v1/hosts?limit=500'));
    assert.ok(before.includes('removed') && before.includes('kept'), JSON.stringify(before));
    assert.equal((await admin().del('/v1/hosts/removed')).status, 204);
    assert.equal((await admin().get('/v1/hosts/removed')).status, 404);
    assert.equal((await admin().del('/v1/hosts/removed')).status, 404);
    await t.close();
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    const res = await admin().get('/v1/hosts?limit=500');
    assert.deepEqual(
      names(res),
      before.filter((n) => n !== 'removed'),
    );
    const again = await admin().get('/v1/hosts/kept');
    assert.equal(again.status, 200);
    assert.deepEqual([again.body.uri, again.body.createdAt], [kept.body.uri, kept.body.createdAt]);
  });
});
