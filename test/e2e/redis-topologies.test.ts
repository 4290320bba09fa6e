/**
 * The gateway on each supported Redis topology, with real redis-server
 * processes of this file's own on loopback (test/support/redis-servers.ts):
 * a refusal to boot on a Redis that may evict keys, in both roles; a
 * three-master Cluster on which everything works (tokens, hosts, jobs with
 * `Prefer: wait`, the event stream) and a master restarted (SIGKILL, then
 * its AOF and nodes.conf) while jobs run loses and doubles none; a Sentinel
 * failover (the master SIGKILLed, the replica promoted) while jobs run, with
 * REDIS_WAIT_REPLICAS=1, after which every job accepted ended exactly once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { ConfigError, loadConfig } from '#src/config/config.js';
import { assertEachRanOnce, JobLoad, runsOf, TEST_DRIVER_URI } from '../support/job-load.js';
import {
  RedisClusterSet,
  RedisSentinelSet,
  startRedisServer,
  stopAllRedisServers,
} from '../support/redis-servers.js';
import { SseClient } from '../support/sse-client.js';
import { waitFor } from '../support/wait.js';
import { closeAllApps, startApp, testConfig, uniquePrefix } from './helpers.js';

const ADMIN = 'redis-topologies-admin-token-0123456789';
const auth = { authorization: `Bearer ${ADMIN}` };

/** The log lines of an app, raw (JSON), for counting runs. */
const rawLines = (t: { logs: { raw: string[] } }): string[] => t.logs.raw;

async function registerTestHost(server: import('node:http').Server): Promise<void> {
  const res = await request(server)
    .post('/v1/hosts')
    .set(auth)
    .send({ name: 'test', uri: TEST_DRIVER_URI });
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

describe('Redis topologies', () => {
  const loads: JobLoad[] = [];

  after(async () => {
    // A test that failed midway left its load submitting: stopped before the apps close,
    // so no request reaches a closing server.
    for (const load of loads) await load.stopSubmitting();
    await closeAllApps();
    await stopAllRedisServers();
    for (const load of loads) await load.close();
  });

  describe('boot checks', () => {
    const EVICTION = /maxmemory-policy allkeys-lru: the gateway needs noeviction.*BullMQ/s;

    it('refuses to start on a Redis with allkeys-lru, saying why and how to fix it', async () => {
      const redis = await startRedisServer({ aof: false, maxmemoryPolicy: 'allkeys-lru' });
      const config = testConfig(uniquePrefix(import.meta.url), {
        REDIS_URL: redis.url,
        VIRTGATE_ADMIN_TOKEN: ADMIN,
      });
      await assert.rejects(startApp(config), (err: Error) => {
        assert.match(err.message, EVICTION);
        assert.match(err.message, /maxmemory-policy noeviction/);
        return true;
      });
    });

    it('reads the policy from INFO where CONFIG is disabled', async () => {
      const redis = await startRedisServer({
        aof: false,
        maxmemoryPolicy: 'allkeys-lru',
        args: ['--rename-command', 'CONFIG', '""'],
      });
      const config = testConfig(uniquePrefix(import.meta.url), {
        REDIS_URL: redis.url,
        VIRTGATE_ADMIN_TOKEN: ADMIN,
      });
      await assert.rejects(startApp(config), EVICTION);
    });

    it('the worker role exits non-zero with that message', async () => {
      const redis = await startRedisServer({ aof: false, maxmemoryPolicy: 'allkeys-lru' });
      const child = spawn(process.execPath, ['dist/src/main.js'], {
        env: {
          ...process.env,
          ROLE: 'worker',
          // Other test files' block jobs run on the same libvirtd: none is this worker's to adopt.
          BLOCK_JOB_ADOPT: 'false',
          REDIS_URL: redis.url,
          VIRTGATE_REDIS_PREFIX: uniquePrefix(import.meta.url),
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c) => (out += String(c)));
      child.stderr.on('data', (c) => (out += String(c)));
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 1, out);
      assert.match(out, /cannot start/);
      assert.match(out, /maxmemory-policy allkeys-lru: the gateway needs noeviction/);
    });

    it('refuses a Cluster prefix without a hash tag, and two topologies at once', () => {
      const problems = (env: Record<string, string>): string => {
        try {
          loadConfig(env);
        } catch (err) {
          assert.ok(err instanceof ConfigError);
          return err.problems.join('\n');
        }
        assert.fail('accepted');
      };
      assert.match(
        problems({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', VIRTGATE_REDIS_PREFIX: 'vg:' }),
        /VIRTGATE_REDIS_PREFIX must hold a hash tag \(\{\.\.\.\}\) with REDIS_CLUSTER_NODES/,
      );
      assert.match(
        problems({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_SENTINELS: '127.0.0.1:26379' }),
        /REDIS_URL and REDIS_SENTINELS are both set/,
      );
      assert.match(
        problems({ REDIS_SENTINELS: '127.0.0.1:26379' }),
        /REDIS_SENTINELS is set, but not REDIS_SENTINEL_NAME/,
      );
      assert.match(
        problems({ REDIS_SENTINELS: '127.0.0.1', REDIS_SENTINEL_NAME: 'm' }),
        /REDIS_SENTINELS must be comma-separated host:port pairs/,
      );
      const secret = 'a-sentinel-password-never-shown';
      const shown = problems({ REDIS_PASSWORD: secret });
      assert.match(shown, /REDIS_PASSWORD is set without REDIS_SENTINELS or REDIS_CLUSTER_NODES/);
      assert.ok(!shown.includes(secret));
      const cluster = loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000, 127.0.0.1:7001' });
      assert.equal(cluster.redisPrefix, '{virtgate}:', 'the default prefix of a Cluster');
      assert.deepEqual(cluster.redisTopology, {
        kind: 'cluster',
        nodes: [
          { host: '127.0.0.1', port: 7000 },
          { host: '127.0.0.1', port: 7001 },
        ],
        username: null,
        password: null,
      });
    });
  });

  describe('Cluster (three masters)', () => {
    let cluster: RedisClusterSet;
    let t: Awaited<ReturnType<typeof startApp>>;
    let load: JobLoad;
    const prefix = `{vgtest-cluster-${process.pid}-${Date.now().toString(36)}}:`;

    before(async () => {
      cluster = await RedisClusterSet.start(3);
      load = await JobLoad.create('cluster');
      loads.push(load);
      t = await startApp(
        testConfig(prefix, {
          REDIS_URL: '',
          REDIS_CLUSTER_NODES: cluster.nodesEnv,
          VIRTGATE_ADMIN_TOKEN: ADMIN,
          JOB_LOCK_MS: '2000',
        }),
      );
      await t.app.listen(0, '127.0.0.1');
      await registerTestHost(t.server);
    });

    it('serves tokens, jobs (Prefer: wait) and the event stream', async () => {
      const made = await request(t.server)
        .post('/v1/tokens')
        .set(auth)
        .send({ name: 'cluster-viewer', role: 'viewer' });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      const me = await request(t.server)
        .get('/v1/me')
        .set('authorization', `Bearer ${made.body.token}`);
      assert.equal(me.status, 200, JSON.stringify(me.body));
      assert.equal(me.body.role, 'viewer');

      const base = `http://127.0.0.1:${(t.server.address() as AddressInfo).port}`;
      const sse = await SseClient.open(
        `${base}/v1/events?domain=${load.names[0]}&type=job.*`,
        auth,
      );
      const res = await request(t.server)
        .post(`/v1/hosts/test/domains/${load.names[0]}/actions/autostart`)
        .set(auth)
        .set('prefer', 'wait=10')
        .send({ enabled: true });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'completed');
      try {
        await waitFor(
          () => sse.parsed().some((e) => JSON.stringify(e).includes('completed')),
          'the job event on the stream',
          10_000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}: ${JSON.stringify(sse.events)}`);
        });
      } finally {
        sse.close();
      }
      // Every key (BullMQ's too) is in the one slot of the prefix's hash tag.
      const holder = await cluster.nodeOf(`${prefix}jobs`);
      const c = holder.client();
      try {
        const keys = (await c.keys(`${prefix}*`)).filter((k) => k.includes('bull'));
        assert.ok(keys.length > 0, 'BullMQ keys on the node of the slot');
      } finally {
        c.disconnect();
      }
    });

    it('loses and doubles no job while the master of the slot is restarted', async (ctx) => {
      const holder = await cluster.nodeOf(`${prefix}jobs`);
      const start = load.accepted.length;
      const stop = load.keepSubmitting(t.server, ADMIN, 40);
      await waitFor(() => load.accepted.length >= start + 10, 'jobs accepted before the kill');
      await holder.kill();
      const killedAt = Date.now();
      // The scenario's own outage: the master is down for a moment while jobs keep coming
      // (the Cluster client shows no sign of it until it gives a command up, ~20 s later,
      // a different scenario). Nothing waits for a condition here, nor is anything asserted
      // of what happened by then.
      // eslint-disable-next-line no-restricted-syntax -- the length of the outage, not synchronisation
      await new Promise((r) => setTimeout(r, 1000));
      await holder.run();
      await cluster.waitHealthy();
      ctx.diagnostic(`master of the slot back ${Date.now() - killedAt} ms after the kill`);
      const back = load.accepted.length;
      await waitFor(() => load.accepted.length >= back + 10, 'jobs accepted once it is back');
      await stop();
      const jobs = await load.allEnded(t.server, ADMIN);
      ctx.diagnostic(
        `${jobs.length} jobs accepted, ${load.refused.length} requests refused meanwhile (${[...new Set(load.refused.map((r) => `${r.status} ${r.code}`))].join(', ')})`,
      );
      for (const line of t.logs.lines.filter((l) => Number(l.level) >= 50)) {
        ctx.diagnostic(JSON.stringify(line).slice(0, 1500));
      }
      assert.ok(jobs.length >= 20, `only ${jobs.length} jobs accepted`);
      for (const r of load.refused) assert.equal(r.status, 503, JSON.stringify(r));
      assertEachRanOnce(jobs, rawLines(t));
    });

    it('loses and doubles no job while the master of the slot is down until requests are refused', async (ctx) => {
      // The longer outage: the master stays down until the Cluster client gives a request up
      // (a 503), about 15 to 20 s here, past the lock of every job (JOB_LOCK_MS=2000) and past
      // the BullMQ worker's blocking wait; it comes back with its data (AOF, nodes.conf).
      const holder = await cluster.nodeOf(`${prefix}jobs`);
      // A load of its own: what it asserts of its jobs does not depend on the test before.
      const own = await JobLoad.create('cluster-long');
      loads.push(own);
      const stop = own.keepSubmitting(t.server, ADMIN, 40);
      try {
        await waitFor(() => own.accepted.length >= 10, 'jobs accepted before the kill');
        const refusedBefore = own.refused.length;
        await holder.kill();
        const killedAt = Date.now();
        await waitFor(
          () => own.refused.length > refusedBefore,
          'a request refused while the master of the slot is down',
          90_000,
          100,
        );
        ctx.diagnostic(`first request refused ${Date.now() - killedAt} ms after the kill`);
        await holder.run();
        await cluster.waitHealthy();
        ctx.diagnostic(`master of the slot back ${Date.now() - killedAt} ms after the kill`);
        // The workers take jobs again: ten more accepted, and (below) every one of them ends.
        const back = own.accepted.length;
        await waitFor(() => own.accepted.length >= back + 10, 'jobs accepted once it is back');
      } finally {
        await stop();
      }
      const jobs = await own.allEnded(t.server, ADMIN).catch(async (err: unknown) => {
        // Where each job that did not end is: its record, BullMQ's lists, the warnings.
        const c = holder.client();
        try {
          const bullKeys = (await c.keys(`${prefix}bull:*`)).filter(
            (k) => !/:[0-9a-f-]{36}/.test(k),
          );
          for (const id of own.accepted) {
            const state = await c.hget(`${prefix}job:${id}`, 'state');
            if (state?.includes('completed')) continue;
            const where: string[] = [];
            for (const k of bullKeys) {
              const type = await c.type(k);
              if (type === 'list' && (await c.lrange(k, 0, -1)).includes(id)) where.push(k);
              if (type === 'zset' && (await c.zscore(k, id)) !== null) where.push(k);
              if (type === 'set' && (await c.sismember(k, id)) === 1) where.push(k);
            }
            ctx.diagnostic(
              `job ${id}: record ${state}, in BullMQ's ${where.join(', ') || 'nothing'}, run ${runsOf(rawLines(t), id)} times`,
            );
          }
        } finally {
          c.disconnect();
        }
        for (const line of t.logs.lines.filter((l) => Number(l.level) >= 40)) {
          ctx.diagnostic(JSON.stringify(line).slice(0, 600));
        }
        throw err;
      });
      ctx.diagnostic(
        `${jobs.length} jobs accepted, ${own.refused.length} requests refused meanwhile (${[...new Set(own.refused.map((r) => `${r.status} ${r.code}`))].join(', ')})`,
      );
      assert.ok(jobs.length >= 20, `only ${jobs.length} jobs accepted`);
      for (const r of own.refused) assert.equal(r.status, 503, JSON.stringify(r));
      assertEachRanOnce(jobs, rawLines(t));
    });
  });

  describe('Sentinel (master, one replica)', () => {
    let set: RedisSentinelSet;
    let t: Awaited<ReturnType<typeof startApp>>;
    let load: JobLoad;

    before(async () => {
      set = await RedisSentinelSet.start();
      load = await JobLoad.create('sentinel');
      loads.push(load);
      t = await startApp(
        testConfig(uniquePrefix(import.meta.url), {
          REDIS_URL: '',
          REDIS_SENTINELS: set.sentinelsEnv,
          REDIS_SENTINEL_NAME: RedisSentinelSet.MASTER_NAME,
          REDIS_WAIT_REPLICAS: '1',
          VIRTGATE_ADMIN_TOKEN: ADMIN,
          JOB_LOCK_MS: '2000',
        }),
      );
      await registerTestHost(t.server);
    });

    it('follows a failover: every job accepted ends exactly once', async (ctx) => {
      const oldMaster = set.master.port;
      const start = load.accepted.length;
      const stop = load.keepSubmitting(t.server, ADMIN, 40);
      await waitFor(() => load.accepted.length >= start + 10, 'jobs accepted before the kill');
      const before = load.accepted.length;
      await set.master.kill();
      const killedAt = Date.now();
      await waitFor(
        async () => (await set.masterPort()) !== oldMaster,
        'Sentinel to fail over',
        20_000,
        100,
      );
      ctx.diagnostic(`Sentinel promoted the replica ${Date.now() - killedAt} ms after the kill`);
      // The new master has no replica: with REDIS_WAIT_REPLICAS=1 no job can be made
      // durable, so none is accepted (503) until the old master is back as its replica.
      // Proven by requests that went that way meanwhile: refused, not accepted.
      const promoted = load.accepted.length;
      const refusedAtPromotion = load.refused.length;
      await waitFor(
        () => load.refused.length >= refusedAtPromotion + 3,
        'requests refused while the new master is alone',
        20_000,
        100,
      );
      const alone = load.accepted.length - promoted;
      // As its supervisor would bring it back: a replica of the master Sentinel names now.
      const newMaster = await set.masterPort();
      await set.master.run(['--replicaof', '127.0.0.1', String(newMaster)]);
      await set.waitReplicaOf(newMaster, set.master);
      ctx.diagnostic(
        `old master back as a replica ${Date.now() - killedAt} ms after the kill; ${alone} jobs accepted while the new master was alone`,
      );
      // Jobs are accepted again.
      const resumed = load.accepted.length;
      const refusedBefore = load.refused.length;
      await waitFor(
        () => load.accepted.length >= resumed + 10,
        'jobs accepted again after the failover',
        40_000,
        100,
      ).catch((err: Error) => {
        const since = load.refused.slice(refusedBefore);
        const why = [...new Set(since.map((r) => `${r.status} ${r.code}`))].join(', ');
        throw new Error(`${err.message}: ${since.length} refused since (${why})`);
      });
      await stop();
      const jobs = await load.allEnded(t.server, ADMIN);
      ctx.diagnostic(
        `${before} jobs accepted before the kill, ${jobs.length} in all; ${load.refused.length} requests refused meanwhile (${[...new Set(load.refused.map((r) => `${r.status} ${r.code}`))].join(', ')})`,
      );
      assertEachRanOnce(jobs, rawLines(t));
      for (const r of load.refused) assert.equal(r.status, 503, JSON.stringify(r));
      assert.ok(alone <= 1, `${alone} jobs accepted without a replica to confirm them`);
    });
  });
});
