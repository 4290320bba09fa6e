/**
 * Nothing lost across a Redis restart with AOF (appendonly yes, appendfsync
 * everysec), on a redis-server of this file's own: with jobs queued and
 * running, Redis is shut down (SHUTDOWN writes and fsyncs the AOF) and
 * started again on the same directory. Every token, host and job record is
 * still there, the jobs queued before are run after, and every job ends once.
 * Then the same with SIGKILL instead of SHUTDOWN: what Redis had written to
 * its AOF is in the kernel's page cache, so a killed Redis loses nothing
 * either (only a crash of the machine loses up to the last second).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { waitFor } from '../support/wait.js';
import { assertEachRanOnce, JobLoad, TEST_DRIVER_URI } from '../support/job-load.js';
import {
  startRedisServer,
  stopAllRedisServers,
  type RedisServer,
} from '../support/redis-servers.js';
import { closeAllApps, startApp, testConfig, uniquePrefix, type TestApp } from './helpers.js';

const ADMIN = 'redis-durability-admin-token-0123456789';
const auth = { authorization: `Bearer ${ADMIN}` };

describe('Redis restart with AOF', () => {
  let redis: RedisServer;
  let t: TestApp;
  let load: JobLoad;
  let viewerToken = '';

  before(async () => {
    redis = await startRedisServer({ aof: true });
    load = await JobLoad.create('aof');
    t = await startApp(
      testConfig(uniquePrefix(import.meta.url), {
        REDIS_URL: redis.url,
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        JOB_LOCK_MS: '2000',
      }),
    );
    const host = await request(t.server)
      .post('/v1/hosts')
      .set(auth)
      .send({ name: 'test', uri: TEST_DRIVER_URI });
    assert.equal(host.status, 201, JSON.stringify(host.body));
    const made = await request(t.server)
      .post('/v1/tokens')
      .set(auth)
      .send({ name: 'aof-viewer', role: 'viewer' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    viewerToken = made.body.token as string;
  });

  after(async () => {
    await closeAllApps();
    await stopAllRedisServers();
    await load?.close();
  });

  /** Submits a burst, stops Redis with `stop` while it is being worked through, starts it again. */
  async function restartUnderLoad(
    stop: () => Promise<void>,
    ctx: { diagnostic(m: string): void },
  ): Promise<void> {
    const from = load.accepted.length;
    // A burst, with Redis stopped once a few are accepted: most are queued or running then.
    const burst = Promise.all(Array.from({ length: 24 }, () => load.submit(t.server, ADMIN)));
    await waitFor(
      () => load.accepted.length >= from + 8,
      'a few of the burst to be accepted',
      20_000,
      5,
    );
    await stop();
    // Down long enough for the gateway to have noticed: its readiness says so.
    await waitFor(
      async () =>
        (await request(t.server).get('/health/ready')).body.checks?.redis?.status === 'down',
      'the gateway to see Redis down',
    );
    await redis.run();
    // A request caught between its record and its queue entry waits for Redis (the queue's
    // connection retries without limit) rather than leave a record with no job: it ends now.
    await burst;
    const submitted = load.accepted.slice(from);
    ctx.diagnostic(
      `${submitted.length} accepted, ${load.refused.length} refused (Redis down) so far`,
    );
    for (const r of load.refused) assert.equal(r.status, 503, JSON.stringify(r));

    // The api's client fails fast while disconnected: wait for it to be back.
    await waitFor(
      async () => (await request(t.server).get('/health/ready')).status === 200,
      'the gateway to reach Redis again',
    );
    // Everything written before is back.
    const me = await request(t.server).get('/v1/me').set('authorization', `Bearer ${viewerToken}`);
    assert.equal(me.status, 200, JSON.stringify(me.body));
    const hosts = await request(t.server).get('/v1/hosts').set(auth);
    assert.equal(hosts.status, 200);
    assert.ok(JSON.stringify(hosts.body).includes(TEST_DRIVER_URI), JSON.stringify(hosts.body));
    for (const id of submitted) {
      const job = await request(t.server).get(`/v1/jobs/${id}`).set(auth);
      assert.equal(job.status, 200, `job ${id} lost: ${JSON.stringify(job.body)}`);
    }
  }

  it('keeps every token, host, job record and queued job across SHUTDOWN and restart', async (ctx) => {
    await restartUnderLoad(() => redis.shutdown(), ctx);
    const jobs = await load.allEnded(t.server, ADMIN);
    assertEachRanOnce(jobs, t.logs.raw);
  });

  it('and across SIGKILL and restart', async (ctx) => {
    await restartUnderLoad(() => redis.kill(), ctx);
    const jobs = await load.allEnded(t.server, ADMIN);
    assertEachRanOnce(jobs, t.logs.raw);
  });
});
