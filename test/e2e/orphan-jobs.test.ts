/**
 * Job records that survived while their BullMQ entries did not (a partial
 * loss of Redis data, a flushed BullMQ prefix): a worker finds them and
 * queues them again from their records, so they run, once. The api runs
 * here alone (ROLE=api); the worker is a process of its own, started only
 * once the queue entries are gone.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { DomainState, LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { waitFor } from '../support/wait.js';
import { WorkerProcess } from '../support/worker-process.js';
import {
  closeAllApps,
  deleteKeys,
  REDIS_URL,
  scanKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'orphan-jobs-admin-token-0123456789';

describe('jobs whose queue entries were lost', () => {
  let t: TestApp;
  let client: LibvirtClient;
  let worker: WorkerProcess | null = null;
  const doms: RemoteDomain[] = [];
  const name = `vg-orphan-${randomUUID().slice(0, 6)}`;
  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).send(body),
  };

  before(async () => {
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    for (let i = 0; i < 2; i++) {
      const xml = testDriverDomainXml(`${name}-${i}`, 64);
      doms.push((await client.rpc.domainDefineXmlFlags({ xml, flags: 0 })).dom);
    }
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }));
    await http.post('/v1/hosts', { name: 'test', uri: 'test+tcp://127.0.0.1/default' }).expect(201);
  });

  after(async () => {
    await worker?.kill();
    await closeAllApps();
    for (const dom of doms) {
      await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await client.close();
    await deleteKeys(prefix);
  });

  it('queues them again from their records: each runs once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await http.post(`/v1/hosts/test/domains/${name}-${i}/actions/start`);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      ids.push(res.body.id as string);
    }
    // No worker yet: the jobs wait in BullMQ. Then BullMQ's keys go, the records stay.
    const redis = new Redis(REDIS_URL);
    try {
      const bull = await scanKeys(redis, `${prefix}bull`);
      assert.ok(bull.length > 0, 'BullMQ held the jobs');
      await redis.del(...bull);
      for (const id of ids) assert.equal(await redis.exists(`${prefix}job:${id}`), 1);
    } finally {
      await redis.quit();
    }

    worker = await WorkerProcess.start({
      REDIS_URL,
      VIRTGATE_REDIS_PREFIX: prefix,
      VIRTGATE_ADMIN_TOKEN: ADMIN,
    });
    for (const id of ids) {
      await waitFor(
        async () => (await http.get(`/v1/jobs/${id}`)).body.state === 'completed',
        `job ${id} to complete`,
        30_000,
      );
    }
    for (const [i, id] of ids.entries()) {
      const job = (await http.get(`/v1/jobs/${id}`)).body;
      assert.equal(job.result?.changed, true, JSON.stringify(job));
      assert.equal(job.attempts, 1, JSON.stringify(job));
      const state = await client.rpc.domainGetState({ dom: doms[i]!, flags: 0 });
      assert.equal(state.state, DomainState.RUNNING);
      assert.equal(worker.linesOf(`job ${id} (domain.start, queued): queue entry lost`).length, 1);
      assert.equal(worker.linesOf(`job ${id} (domain.start) on test`).length, 1, 'run once');
      // The record can say completed before the worker's line reaches the pipe.
      await waitFor(
        () => worker!.linesOf(`job ${id}: completed`).length > 0,
        `the worker to log job ${id}'s completion`,
      );
      assert.equal(worker.linesOf(`job ${id}: completed`).length, 1);
    }
  });
});
