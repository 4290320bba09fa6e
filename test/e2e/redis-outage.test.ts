/**
 * The gateway's store going away under a running app: requests that need it
 * get 503 UNAVAILABLE with Retry-After at once (the command refused by the
 * client, not queued until Redis is back or until a command deadline), never a
 * 500 or a hang, and service resumes when Redis is back. Uses a Redis server of its own (the
 * shared one must stay up for the other tests).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import request from 'supertest';
import { RedisServer, stopAllRedisServers } from '../support/redis-servers.js';
import { waitFor } from '../support/wait.js';
import { closeAllApps, PROBLEM_JSON, startApp, testConfig, uniquePrefix } from './helpers.js';

const ADMIN_TOKEN = 'redis-outage-admin-token-0123456789';

describe('Redis outage', () => {
  let redis: RedisServer;

  after(async () => {
    // A close that hangs fails here naming the shutdown steps that did not return (see
    // closeAllApps); the private Redis goes either way.
    try {
      await closeAllApps();
    } finally {
      await stopAllRedisServers();
    }
  });

  it('answers 503 at once where Redis is needed, keeps serving reads that need none, and recovers', async () => {
    redis = await RedisServer.start('outage', { aof: false });
    const t = await startApp(
      testConfig(uniquePrefix(import.meta.url), {
        REDIS_URL: redis.url,
        VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      }),
    );
    // Every request has a deadline: one that hangs fails the test, saying which.
    const get = (path: string, token = ADMIN_TOKEN): request.Test =>
      request(t.server).get(path).set('authorization', `Bearer ${token}`).timeout(10_000);
    assert.equal((await get('/v1/me')).status, 200);
    const host = await request(t.server)
      .post('/v1/hosts')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ name: 'tst', uri: 'test+tcp://127.0.0.1:16509/default' });
    assert.equal(host.status, 201, JSON.stringify(host.body));
    const xmlBefore = await get('/v1/hosts/tst/domains/test/xml');
    assert.equal(xmlBefore.status, 200, JSON.stringify(xmlBefore.body));

    await redis.kill();

    // At once: the client refused the command while disconnected (no offline queue),
    // rather than holding it until Redis is back, a retry limit or a command timeout.
    const REFUSED_AT_ONCE = /not answering: (Stream isn't writeable|Connection is closed)/;
    // What needs Redis: a 503 problem with Retry-After, never a hang.
    for (const path of ['/v1/jobs', '/v1/hosts', '/v1/tokens']) {
      const res = await get(path);
      assert.equal(res.status, 503, `${path}: ${JSON.stringify(res.body)}`);
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, 'UNAVAILABLE');
      assert.equal(res.headers['retry-after'], '5');
      assert.match(res.body.detail, REFUSED_AT_ONCE, path);
    }
    // A token never seen cannot be checked: 503 (not 401: it may well be valid).
    const stranger = await get('/v1/me', 'a-token-this-gateway-has-never-seen-0123');
    assert.equal(stranger.status, 503, JSON.stringify(stranger.body));
    assert.match(stranger.body.detail, REFUSED_AT_ONCE);
    // Nothing is written without the store: a new token is refused at once.
    const made = await request(t.server)
      .post('/v1/tokens')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ name: 'during-the-outage', role: 'viewer' })
      .timeout(10_000);
    assert.equal(made.status, 503, JSON.stringify(made.body));
    assert.match(made.body.detail, REFUSED_AT_ONCE);

    // What needs no Redis keeps working: the token verified before, the host as last read.
    assert.equal((await get('/v1/me')).status, 200);
    const xml = await get('/v1/hosts/tst/domains/test/xml');
    assert.equal(xml.status, 200, JSON.stringify(xml.body));
    assert.equal(xml.text, xmlBefore.text);
    const disks = await get('/v1/hosts/tst/domains/test/disks');
    assert.equal(disks.status, 200, JSON.stringify(disks.body));

    const ready = await request(t.server).get('/health/ready');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.checks.redis.status, 'down');

    // An empty Redis comes back: the gateway notices its data is gone and registers the
    // configured admin token and the default host again, without a restart.
    await redis.run();
    await waitFor(async () => {
      const hosts = await get('/v1/hosts');
      return (
        hosts.status === 200 && hosts.body.items.some((h: { name: string }) => h.name === 'local')
      );
    }, 'the admin token and the default host to be back');
    const after = await request(t.server).get('/health/ready');
    assert.equal(after.body.checks.recovery.lastLossAt === null, false, JSON.stringify(after.body));
  });

  it('closes though its Redis stopped answering (a SIGTERMed gateway exits)', async () => {
    const stopped = await RedisServer.start('outage-stopped', { aof: false });
    const t = await startApp(
      testConfig(uniquePrefix(import.meta.url), {
        REDIS_URL: stopped.url,
        VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      }),
    );
    // Work under way at close: a host followed (events, connections), queues and workers.
    const host = await request(t.server)
      .post('/v1/hosts')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ name: 'tst', uri: 'test+tcp://127.0.0.1:16509/default' });
    assert.equal(host.status, 201, JSON.stringify(host.body));
    const xml = await request(t.server)
      .get('/v1/hosts/tst/domains/test/xml')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .timeout(10_000);
    assert.equal(xml.status, 200, JSON.stringify(xml.body));
    // The server keeps its connections open but answers nothing (SIGKILLed in `after`).
    stopped.child!.kill('SIGSTOP');
    // Ends (a close that hangs fails, naming the steps that did not return: see closeAllApps).
    await t.close();
    assert.equal(t.server.listening, false);
  });
});
