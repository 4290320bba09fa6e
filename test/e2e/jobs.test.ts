/**
 * Changes as jobs: domain lifecycle actions through BullMQ against the real
 * test driver, Prefer: wait, Idempotency-Key, listing and canceling jobs, the
 * api and worker roles in separate processes, permanent failures failing at
 * once and a lost host retried with backoff.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { checkProcessors } from '#jobs/job-runner.service.js';
import { BlockJobsProcessor } from '#modules/block-jobs/block-jobs.processor.js';
import { DomainsProcessor } from '#modules/domains/domains.processor.js';
import { SnapshotsProcessor } from '#modules/snapshots/snapshots.processor.js';
import { StorageProcessor } from '#modules/storage-pools/storage-pools.processor.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { Forwarder } from '../support/forwarder.js';
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
const ADMIN = 'jobs-test-admin-token-0123456789';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Job {
  id: string;
  type: string;
  state: string;
  attempts: number;
  result: Record<string, unknown> | null;
  error: { code: string; message: string; libvirtCode: string | null } | null;
}

/** The worker role in a process of its own (ROLE=worker), on the test's Redis prefix. */
async function startWorkerProcess(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: {
      ...process.env,
      ROLE: 'worker',
      // Other test files' block jobs run on the same libvirtd: none is this worker's to adopt.
      BLOCK_JOB_ADOPT: 'false',
      REDIS_URL,
      VIRTGATE_REDIS_PREFIX: prefix,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    if (out.includes('processing queues')) return child;
  }
  throw new Error(`the worker did not start: ${out}`);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

describe('jobs', () => {
  let t: TestApp;
  let client: LibvirtClient;
  const name = `vg-job-${randomUUID().slice(0, 6)}`;
  const doms: RemoteDomain[] = [];
  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object = {}, headers: Record<string, string> = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).set(headers).send(body),
    del: (url: string) => request(t.server).delete(url).set('authorization', `Bearer ${ADMIN}`),
  };
  const actionOn = (
    host: string,
    domain: string,
    act: string,
    body: object = {},
    headers: Record<string, string> = {},
  ) => http.post(`/v1/hosts/${host}/domains/${domain}/actions/${act}`, body, headers);
  const action = (
    domain: string,
    act: string,
    body: object = {},
    headers: Record<string, string> = {},
  ) => actionOn('test', domain, act, body, headers);

  async function finished(id: string, ms = 10_000): Promise<Job> {
    const deadline = Date.now() + ms;
    for (;;) {
      const job = (await http.get(`/v1/jobs/${id}`)).body as Job;
      if (['completed', 'failed', 'canceled'].includes(job.state)) return job;
      assert.ok(Date.now() < deadline, `job ${id} still ${job.state} after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  before(async () => {
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    for (let i = 0; i < 5; i++) {
      doms.push(
        (
          await client.rpc.domainDefineXmlFlags({
            xml: testDriverDomainXml(`${name}-${i}`, 64),
            flags: 0,
          })
        ).dom,
      );
    }
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    await http.post('/v1/hosts', { name: 'test', uri: 'test+tcp://127.0.0.1/default' }).expect(201);
  });

  after(async () => {
    await closeAllApps();
    for (const dom of doms) {
      await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await client.close();
    await deleteKeys(prefix);
  });

  it('runs an action as a job: 202 with Location, then completed with the new state', async () => {
    const res = await action(`${name}-0`, 'start');
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.match(res.body.id, UUID_RE);
    assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
    assert.equal(res.body.state, 'queued');
    assert.equal(res.body.type, 'domain.start');
    assert.equal(res.body.domain, `${name}-0`);
    const job = await finished(res.body.id);
    assert.equal(job.state, 'completed');
    assert.deepEqual(job.result, { state: 'running', changed: true });
    assert.equal(job.attempts, 1);
    assert.equal(
      (await client.rpc.domainGetState({ dom: doms[0]!, flags: 0 })).state,
      1,
      'libvirt says running',
    );
  });

  it('answers 200 with the finished job under Prefer: wait', async () => {
    for (const [act, state] of [
      ['suspend', 'paused'],
      ['resume', 'running'],
      ['shutdown', 'shutoff'],
    ] as const) {
      const started = Date.now();
      const res = await action(`${name}-0`, act, act === 'shutdown' ? { timeoutSeconds: 10 } : {}, {
        prefer: 'wait=10',
      });
      assert.equal(res.status, 200, `${act}: ${JSON.stringify(res.body)}`);
      assert.equal(res.headers['preference-applied'], 'wait=10');
      assert.equal(res.body.state, 'completed');
      assert.equal(res.body.result.state, state);
      assert.ok(Date.now() - started < 5000);
    }
    const autostart = await action(
      `${name}-0`,
      'autostart',
      { enabled: true },
      { prefer: 'wait=10' },
    );
    assert.deepEqual(autostart.body.result, { autostart: true, changed: true });
    assert.equal((await client.rpc.domainGetAutostart({ dom: doms[0]! })).autostart, 1);
  });

  it('reboots for real: the running domain comes back booted, not as it was', async () => {
    // The test driver says why a domain runs: `unpaused` after a resume, `booted` after
    // a (re)boot. A reboot that did nothing would leave `unpaused`.
    const domain = `${name}-4`;
    for (const act of ['start', 'suspend', 'resume']) {
      const res = await action(domain, act, {}, { prefer: 'wait=10' });
      assert.equal(res.body.state, 'completed', `${act}: ${JSON.stringify(res.body)}`);
    }
    const view = async () => (await http.get(`/v1/hosts/test/domains/${domain}`)).body;
    assert.deepEqual([(await view()).state, (await view()).stateReason], ['running', 'unpaused']);
    const rebooted = await action(domain, 'reboot', {}, { prefer: 'wait=10' });
    assert.equal(rebooted.status, 200, JSON.stringify(rebooted.body));
    assert.equal(rebooted.body.state, 'completed');
    assert.deepEqual([(await view()).state, (await view()).stateReason], ['running', 'booted']);
  });

  it('refuses an action the live state does not allow, or bad input, at once', async () => {
    const cases: [string, string, object, number, string, string?][] = [
      [`${name}-1`, 'resume', {}, 409, 'INVALID_STATE'],
      [`${name}-1`, 'shutdown', {}, 409, 'INVALID_STATE'],
      [`${name}-1`, 'explode', {}, 400, 'INVALID_ARGUMENT', 'action'],
      [`${name}-1`, 'start', { force: true }, 400, 'INVALID_ARGUMENT', 'force'],
      [`${name}-1`, 'shutdown', { timeoutSeconds: 0 }, 400, 'INVALID_ARGUMENT', 'timeoutSeconds'],
      [`${name}-1`, 'autostart', {}, 400, 'INVALID_ARGUMENT', 'enabled'],
      [`${name}-1`, 'start', { bogus: 1 }, 400, 'INVALID_ARGUMENT', 'bogus'],
      ['no-such-domain', 'start', {}, 404, 'NOT_FOUND'],
    ];
    for (const [domain, act, body, status, code, field] of cases) {
      const res = await action(domain, act, body);
      assert.equal(
        res.status,
        status,
        `${act} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`,
      );
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, code);
      if (field) assert.equal(res.body.errors[0].field, field);
    }
  });

  it('gives back the same job for the same Idempotency-Key and request, and 422 for another request', async () => {
    const key = `idem-${randomUUID()}`;
    const first = await action(`${name}-1`, 'start', {}, { 'idempotency-key': key });
    assert.equal(first.status, 202);
    await finished(first.body.id);
    const again = await action(`${name}-1`, 'start', {}, { 'idempotency-key': key });
    assert.equal(
      again.body.id,
      first.body.id,
      `the same job, not a second one: ${JSON.stringify(again.body)}`,
    );
    // The key holds for 24 h (JOB_RETENTION_HOURS is 168 here, so the 24 h cap applies).
    const redis = new Redis(REDIS_URL);
    try {
      const [record] = await redis.keys(`${prefix}idempotency:*:${key}`);
      assert.ok(record, 'the idempotency record');
      const ttl = await redis.ttl(record);
      assert.ok(ttl > 86_400 - 300 && ttl <= 86_400, `idempotency TTL ${ttl} s`);
    } finally {
      redis.disconnect();
    }
    const other = await action(`${name}-1`, 'start', { paused: true }, { 'idempotency-key': key });
    assert.equal(other.status, 422);
    assert.equal(other.body.code, 'IDEMPOTENCY_MISMATCH');
    const bad = await action(`${name}-1`, 'suspend', {}, { 'idempotency-key': 'has space' });
    assert.equal(bad.status, 400);
    // The same request with its fields in another order, or an absent field sent as null, is the same request.
    const key2 = `idem-${randomUUID()}`;
    const shutdown = await action(
      `${name}-1`,
      'shutdown',
      { timeoutSeconds: 5, force: true },
      { 'idempotency-key': key2 },
    );
    assert.equal(shutdown.status, 202, JSON.stringify(shutdown.body));
    const reordered = await action(
      `${name}-1`,
      'shutdown',
      { force: true, timeoutSeconds: 5, paused: null },
      { 'idempotency-key': key2 },
    );
    assert.equal(reordered.body.id, shutdown.body.id, JSON.stringify(reordered.body));
    await finished(shutdown.body.id);
  });

  it('lists jobs newest first, filtered and paginated, and shows one', async () => {
    const all = await http.get(`/v1/jobs?host=test&domain=${name}-0&limit=100`);
    assert.equal(all.status, 200);
    const types = all.body.items.map((j: Job) => j.type);
    assert.deepEqual(types, [
      'domain.autostart',
      'domain.shutdown',
      'domain.resume',
      'domain.suspend',
      'domain.start',
    ]);
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await http.get(
        `/v1/jobs?host=test&domain=${name}-0&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      walked.push(...page.body.items.map((j: Job) => j.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.deepEqual(
      walked,
      all.body.items.map((j: Job) => j.id),
    );
    const completed = await http.get(`/v1/jobs?state=completed&type=domain.start&domain=${name}-0`);
    assert.equal(completed.body.items.length, 1);
    assert.equal((await http.get(`/v1/jobs/${randomUUID()}`)).status, 404);
    assert.equal((await http.get('/v1/jobs/not-a-uuid')).status, 400);
    assert.equal((await http.get('/v1/jobs?state=sleeping')).status, 400);
  });

  it('refuses to cancel a job that has finished', async () => {
    const done = (await http.get(`/v1/jobs?domain=${name}-0&limit=1`)).body.items[0] as Job;
    const res = await http.del(`/v1/jobs/${done.id}`);
    assert.equal(res.status, 409);
    assert.equal(res.body.code, 'INVALID_STATE');
  });

  it('does the same through GraphQL: domainAction with wait, job, jobs, errors with REST codes', async () => {
    const gql = async (query: string, variables: object = {}) =>
      (
        await request(t.server)
          .post('/graphql')
          .set('authorization', `Bearer ${ADMIN}`)
          .send({ query, variables })
      ).body;
    const started = await gql(
      `mutation($d: String!) { domainAction(host: "test", domain: $d, action: start, wait: 10) {
        id type state result { __typename ... on StartDomainResult { state changed } } domain attempts error { code } } }`,
      { d: `${name}-0` },
    );
    assert.equal(started.errors, undefined, JSON.stringify(started.errors));
    assert.equal(started.data.domainAction.state, 'completed');
    assert.deepEqual(started.data.domainAction.result, {
      __typename: 'StartDomainResult',
      state: 'running',
      changed: true,
    });
    const id = started.data.domainAction.id as string;
    const rest = (await http.get(`/v1/jobs/${id}`)).body as Job;
    const one = await gql(
      `query($id: ID!) { job(id: $id) { id type state attempts result { ... on StartDomainResult { state changed } } } }`,
      { id },
    );
    assert.deepEqual(one.data.job, {
      id,
      type: 'domain_start', // REST's domain.start: GraphQL enum names write '.' as '_'
      state: rest.state,
      attempts: rest.attempts,
      result: rest.result,
    });
    const listed = await gql(
      `query($d: String!) { jobs(first: 2, filter: { domain: $d, type: domain_start }) {
        edges { node { id } } pageInfo { hasNextPage } } }`,
      { d: `${name}-0` },
    );
    assert.deepEqual(
      listed.data.jobs.edges.map((e: { node: { id: string } }) => e.node.id),
      [id, (await http.get(`/v1/jobs?domain=${name}-0&type=domain.start`)).body.items[1].id],
    );
    const refused = await gql(
      `mutation($d: String!) { domainAction(host: "test", domain: $d, action: start) { id } }`,
      {
        d: `${name}-0`,
      },
    );
    assert.equal(refused.errors[0].extensions.code, 'INVALID_STATE');
    const stopped = await gql(
      `mutation($d: String!) { domainAction(host: "test", domain: $d, action: destroy, wait: 10) { state result { __typename ... on DestroyDomainResult { state changed } } } }`,
      { d: `${name}-0` },
    );
    assert.deepEqual(stopped.data.domainAction, {
      state: 'completed',
      result: { __typename: 'DestroyDomainResult', state: 'shutoff', changed: true },
    });
    const missing = await gql(`query { job(id: "${randomUUID()}") { id } }`);
    assert.equal(missing.errors[0].extensions.code, 'NOT_FOUND');
  });

  it('refuses to start a worker that lacks a handler for a job type', () => {
    const processor = new DomainsProcessor(null as never);
    const blockJobs = new BlockJobsProcessor(
      { blockJobConcurrency: 1 } as never,
      null as never,
      null as never,
      null as never,
      null as never,
      null as never,
      null as never,
    );
    assert.doesNotThrow(() =>
      checkProcessors([
        processor,
        blockJobs,
        new SnapshotsProcessor(null as never),
        new StorageProcessor(null as never),
      ]),
    );
    const { 'domain.reboot': _dropped, ...rest } = processor.handlers;
    assert.throws(
      () =>
        checkProcessors([
          { ...processor, handlers: rest as typeof processor.handlers },
          blockJobs,
          new SnapshotsProcessor(null as never),
          new StorageProcessor(null as never),
        ]),
      /job type 'domain.reboot' \(queue 'domain-ops'\) has no handler/,
    );
    assert.throws(
      () => checkProcessors([processor, processor]),
      /queue 'domain-ops' has 2 processors/,
    );
    assert.throws(() => checkProcessors([]), /queue 'domain-ops' has 0 processors/);
  });

  describe('with the api and worker roles in separate processes', () => {
    const forwarder = new Forwarder();
    let worker: ChildProcess | null = null;

    before(async () => {
      await closeAllApps();
      t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }));
      await forwarder.open();
      await http
        .post('/v1/hosts', { name: 'flaky', uri: `test+tcp://127.0.0.1:${forwarder.port}/default` })
        .expect(201);
    });

    after(async () => {
      if (worker) await stopProcess(worker);
      await forwarder.cut();
    });

    it('keeps jobs queued without a worker, and cancels one that has not started', async () => {
      const res = await action(`${name}-2`, 'start');
      assert.equal(res.status, 202);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(
        (await http.get(`/v1/jobs/${res.body.id}`)).body.state,
        'queued',
        'no worker, no progress',
      );
      const canceled = await http.del(`/v1/jobs/${res.body.id}`);
      assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
      assert.equal(canceled.body.state, 'canceled');
    });

    it('has a separate worker process run what the api queued; a vanished domain fails at once', async () => {
      const start = await action(`${name}-2`, 'start');
      const doomed = await action(`${name}-3`, 'start');
      // the domain disappears after the job was accepted: a permanent failure
      await client.rpc.domainUndefineFlags({ dom: doms[3]!, flags: 0 });
      worker = await startWorkerProcess();
      const started = await finished(start.body.id);
      assert.equal(started.state, 'completed');
      assert.equal((await client.rpc.domainGetState({ dom: doms[2]!, flags: 0 })).state, 1);
      const failed = await finished(doomed.body.id);
      assert.equal(failed.state, 'failed');
      assert.equal(failed.attempts, 1, 'a permanent failure is not retried');
      assert.equal(failed.error?.code, 'NOT_FOUND');
      // the canceled job never ran: the domain it would have started was started by the next job only
      const canceled = (await http.get(`/v1/jobs?domain=${name}-2&state=canceled`)).body.items;
      assert.equal(canceled.length, 1);
    });

    it('retries a job whose host went away, with backoff, and completes it when the host is back', async () => {
      const res = await actionOn('flaky', `${name}-2`, 'suspend');
      assert.equal(res.status, 202);
      // accepted through the forwarder; now the host goes away before the worker gets to it
      await forwarder.cut();
      const job = (await http.get(`/v1/jobs/${res.body.id}`)).body as Job;
      assert.notEqual(job.state, 'completed');
      await new Promise((r) => setTimeout(r, 1500));
      const waiting = (await http.get(`/v1/jobs/${res.body.id}`)).body as Job;
      assert.equal(waiting.state, 'queued', 'waiting to retry');
      assert.equal(waiting.error?.code, 'HOST_UNREACHABLE');
      await forwarder.open();
      const done = await finished(res.body.id, 15_000);
      assert.equal(done.state, 'completed', JSON.stringify(done));
      assert.ok(done.attempts >= 2, `attempts: ${done.attempts}`);
      assert.equal(
        (await client.rpc.domainGetState({ dom: doms[2]!, flags: 0 })).state,
        3,
        'paused',
      );
    });
  });
});
