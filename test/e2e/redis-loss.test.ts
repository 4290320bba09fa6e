/**
 * Redis loses the gateway's data under it (SHUTDOWN NOSAVE of a Redis kept
 * without persistence, then a restart: it comes back empty) while a block
 * copy waits in `ready` and a lifecycle job runs. The api runs here
 * (ROLE=api), the worker in a process of its own, both on a Redis of this
 * test's own. Nothing is restarted but Redis: the gateway notices the loss
 * by its marker key, is `degraded` while it restores what it keeps there,
 * and then every token configured works again, the jobs the worker was
 * running are there under their own ids and end as they would have (once),
 * and the copy is pivoted through the API, its chain checked against the
 * live XML and qemu-img.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { DomainState, LibvirtClient } from '#src/libvirt/index.js';
import { RedisServer, stopAllRedisServers } from '../support/redis-servers.js';
import { TcgChainDomain } from '../support/tcg-chain.js';
import { waitFor } from '../support/wait.js';
import { WorkerProcess } from '../support/worker-process.js';
import { closeAllApps, startApp, testConfig, uniquePrefix, type TestApp } from './helpers.js';

const ADMIN = 'redis-loss-admin-token-0123456789';

interface Job {
  id: string;
  type: string;
  state: string;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
}

describe('Redis loses its data under a running gateway', () => {
  let redis: RedisServer;
  let t: TestApp;
  let client: LibvirtClient;
  const workers: WorkerProcess[] = [];
  const domains: TcgChainDomain[] = [];
  const run = randomUUID().slice(0, 6);
  const prefix = uniquePrefix(import.meta.url);
  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object = {}, prefer?: string) => {
      const req = request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`);
      if (prefer) void req.set('prefer', prefer);
      return req.send(body);
    },
  };

  const workerEnv = () => ({
    REDIS_URL: redis.url,
    VIRTGATE_ADMIN_TOKEN: ADMIN,
    VIRTGATE_REDIS_PREFIX: prefix,
    JOB_LOCK_MS: '1000',
  });
  const job = async (id: string): Promise<Job> => (await http.get(`/v1/jobs/${id}`)).body as Job;

  /** A full copy of `d`'s vda through the api, waiting in ready (pivot: false). */
  async function copyToReady(d: TcgChainDomain): Promise<{ destination: string; copyId: string }> {
    const destination = path.join(d.dir, 'copy.qcow2');
    const copy = await http.post(`/v1/hosts/local/domains/${d.name}/disks/vda/block-jobs`, {
      type: 'copy',
      destination,
      pivot: false,
    });
    assert.equal(copy.status, 202, JSON.stringify(copy.body));
    const copyId = copy.body.id as string;
    await waitFor(
      async () => (await job(copyId)).state === 'ready',
      'the copy to be ready',
      30_000,
    );
    return { destination, copyId };
  }

  before(async () => {
    redis = await RedisServer.start('loss', { aof: false });
    client = await LibvirtClient.connect('qemu:///system');
    t = await startApp(
      testConfig(prefix, { REDIS_URL: redis.url, VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }),
    );
    // With adoption on: the first case checks that a copy written back is not adopted again.
    workers.push(await WorkerProcess.start({ ...workerEnv(), BLOCK_JOB_ADOPT: 'true' }));
  });

  after(async () => {
    for (const w of workers) await w.kill();
    await closeAllApps();
    for (const d of domains) await d.remove();
    await client.close();
    await stopAllRedisServers();
  });

  it('tokens work again, readiness goes degraded then ok, the running jobs end once under their ids, the copy pivots', async () => {
    const [copied, stopped] = await Promise.all([
      TcgChainDomain.create(client, `vg-loss-${run}-copy`),
      TcgChainDomain.create(client, `vg-loss-${run}-stop`),
    ]);
    domains.push(copied, stopped);
    const { destination, copyId } = await copyToReady(copied);

    // A guest without an OS ignores ACPI: the shutdown waits its 6 s out, then forces it.
    const shutdown = await http.post(`/v1/hosts/local/domains/${stopped.name}/actions/shutdown`, {
      timeoutSeconds: 6,
      force: true,
    });
    assert.equal(shutdown.status, 202, JSON.stringify(shutdown.body));
    const shutdownId = shutdown.body.id as string;
    await waitFor(async () => (await job(shutdownId)).state === 'running', 'the shutdown to run');

    // A client's place in the event stream, from before the loss.
    const page = await http.get('/v1/events?limit=500');
    const cursor = page.body.nextCursor as string;
    assert.ok(cursor, JSON.stringify(page.body));

    // Readiness from now on, sampled through waitFor (one check after the other, its
    // interval apart), the states it went through recorded in order, until it has been
    // degraded and is ok again. A failure below leaves it to end by its own deadline.
    const seen: string[] = [];
    const readiness = waitFor(
      async () => {
        const res = await request(t.server).get('/health/ready');
        const status = res.body.status as string;
        if (seen.at(-1) !== status) seen.push(status);
        return seen.includes('degraded') && status === 'ok';
      },
      'readiness to go degraded, then ok',
      60_000,
      20,
    );
    readiness.catch(() => undefined); // awaited below; a failure before that is the test's own

    // The loss is proven by a key of the test's own, which nothing of the gateway writes:
    // the job records themselves may be written back by a worker within milliseconds of
    // Redis coming back, before any check here could look.
    const direct = new Redis(redis.url);
    const witness = `${prefix}test:written-before-the-loss`;
    assert.equal(await direct.exists(`${prefix}job:${copyId}`), 1, 'the copy has its record');
    await direct.set(witness, '1');
    await direct.quit();
    await redis.shutdown(true);
    await redis.run();
    const empty = new Redis(redis.url);
    assert.equal(await empty.exists(witness), 0, 'Redis came back without its data');
    await empty.quit();

    // The configured admin token works again without a restart of anything but Redis.
    await waitFor(
      async () => (await http.get('/v1/me')).status === 200,
      'the admin token to work',
      10_000,
    );
    // The jobs the worker runs are there again under their own ids.
    await waitFor(
      async () => (await http.get(`/v1/jobs/${copyId}`)).status === 200,
      'the copy job back',
    ).catch((err: Error) => {
      // What the worker did about the loss, to tell why.
      const said = workers[0]!.log.split('\n').filter((l) => /Recovery|Redis|written back/.test(l));
      throw new Error(`${err.message}; the worker logged:\n${said.slice(-30).join('\n')}`);
    });
    assert.equal((await job(copyId)).state, 'ready');
    await waitFor(
      async () => (await http.get(`/v1/jobs/${shutdownId}`)).status === 200,
      'the shutdown job back',
    );
    // The default host is registered again.
    const hosts = await http.get('/v1/hosts');
    assert.ok(
      hosts.body.items.some((h: { name: string }) => h.name === 'local'),
      JSON.stringify(hosts.body),
    );
    await readiness.catch((err: Error) => {
      throw new Error(`${err.message} (${seen.join(' → ')})`);
    });
    assert.deepEqual(seen.slice(seen.indexOf('degraded')), ['degraded', 'ok'], seen.join(' → '));
    // The copy the worker ran was written back with its disk's claim: reconciliation (done
    // by now: readiness is ok) adopted no second job for it.
    const onDisk = await http.get(`/v1/jobs?domain=${copied.name}`);
    assert.deepEqual(
      (onDisk.body.items as Job[]).map((j) => j.id),
      [copyId],
      JSON.stringify(onDisk.body),
    );

    // The lifecycle job ended as it would have, once.
    await waitFor(
      async () => (await job(shutdownId)).state === 'completed',
      'the shutdown to complete',
      20_000,
    );
    const ended = await job(shutdownId);
    assert.equal(ended.result?.forced, true, JSON.stringify(ended));
    const state = await client.rpc.domainGetState({ dom: stopped.dom, flags: 0 });
    assert.equal(state.state, DomainState.SHUTOFF);
    // The record can say completed before the worker's line reaches the pipe.
    await waitFor(
      () => workers[0]!.linesOf(`job ${shutdownId}: completed`).length > 0,
      "the worker to log the shutdown's completion",
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${workers[0]!.linesOf(shutdownId).join('\n')}`);
    });
    const completions = workers[0]!.linesOf(`job ${shutdownId}: completed`);
    assert.equal(completions.length, 1, workers[0]!.linesOf(shutdownId).join('\n'));

    // The copy pivots through the API; the chain is the copy alone, as libvirt and qemu-img see it.
    const pivot = await http.post(`/v1/jobs/${copyId}/pivot`, {}, 'wait=30');
    assert.equal(pivot.status, 200, JSON.stringify(pivot.body));
    assert.equal(pivot.body.state, 'completed', JSON.stringify(pivot.body));
    assert.equal(pivot.body.result?.pivoted, true);
    await copied.assertChain([destination], 'after the pivot');
    await copied.assertPatterns(destination);

    // The event stream says what happened.
    const events = await http.get('/v1/events?type=gateway.*');
    assert.equal(events.status, 200, JSON.stringify(events.body));
    const types = (events.body.items as { type: string }[]).map((e) => e.type);
    assert.deepEqual(types, ['gateway.degraded', 'gateway.recovered']);
    // Resuming from before the loss is refused (what came between is gone), pointing at the loss.
    const resumed = await http.get(`/v1/events?after=${cursor}`);
    assert.equal(resumed.status, 410, JSON.stringify(resumed.body));
    assert.equal(resumed.body.code, 'CURSOR_EXPIRED');
    assert.equal(resumed.body.oldestEventId, (events.body.items as { id: string }[])[0]!.id);
  });

  it('with the worker killed too, the copy libvirt runs is adopted and pivots through the API', async () => {
    const d = await TcgChainDomain.create(client, `vg-loss-${run}-adopt`);
    domains.push(d);
    const { destination, copyId } = await copyToReady(d);

    // Nothing is left that remembers the copy but libvirt.
    await workers[0]!.kill();
    await redis.shutdown(true);
    await redis.run();
    workers.push(await WorkerProcess.start({ ...workerEnv(), BLOCK_JOB_ADOPT: 'true' }));

    await waitFor(
      async () => (await http.get('/v1/me')).status === 200,
      'the admin token to work',
      10_000,
    );
    let adopted: (Job & { adopted: boolean; disk: string }) | undefined;
    await waitFor(
      async () => {
        const res = await http.get(`/v1/jobs?domain=${d.name}`);
        adopted = res.status === 200 ? (res.body.items as (typeof adopted)[]).at(0) : undefined;
        return adopted?.state === 'ready';
      },
      'the copy to be adopted',
      20_000,
    );
    assert.equal(adopted!.adopted, true);
    assert.equal(adopted!.type, 'block.copy');
    assert.equal(adopted!.disk, 'vda');
    assert.notEqual(adopted!.id, copyId, 'a new job: the old record went with the data');
    const disk = await http.get(`/v1/hosts/local/domains/${d.name}/disks/vda`);
    assert.equal(disk.body.blockJob?.jobId, adopted!.id, JSON.stringify(disk.body.blockJob));

    const pivot = await http.post(`/v1/jobs/${adopted!.id}/pivot`, {}, 'wait=30');
    assert.equal(pivot.status, 200, JSON.stringify(pivot.body));
    assert.equal(pivot.body.state, 'completed', JSON.stringify(pivot.body));
    await d.assertChain([destination], 'after the pivot of the adopted copy');
    await d.assertPatterns(destination);
  });
});
