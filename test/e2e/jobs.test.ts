/**
 * Changes as jobs: domain lifecycle actions through BullMQ against the real
 * test driver, Prefer: wait, Idempotency-Key, listing and canceling jobs, the
 * api and worker roles in separate processes, permanent failures failing at
 * once and a lost host retried with backoff.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
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
import { waitFor } from '../support/wait.js';
import { WorkerProcess } from '../support/worker-process.js';
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
  startedAt: string | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string; libvirtCode: string | null } | null;
}

/**
 * The worker role in a process of its own (ROLE=worker), on the test's Redis
 * prefix; its log is kept, to ask what it did about a job.
 */
function startWorker(env: Record<string, string> = {}): Promise<WorkerProcess> {
  return WorkerProcess.start({ REDIS_URL, VIRTGATE_REDIS_PREFIX: prefix, ...env });
}

/** Stops a worker the way an operator does (SIGTERM: it finishes or hands back what it runs). */
async function stopWorker(worker: WorkerProcess): Promise<void> {
  const { child } = worker;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

describe('jobs', () => {
  let t: TestApp;
  let client: LibvirtClient;
  const base = `vg-job-${randomUUID().slice(0, 6)}`;
  let defined = 0;
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

  /** A domain of the test's own, defined (shut off) in the test driver: no test shares one. */
  async function newDomain(): Promise<{ name: string; dom: RemoteDomain }> {
    const name = `${base}-${defined++}`;
    const { dom } = await client.rpc.domainDefineXmlFlags({
      xml: testDriverDomainXml(name, 64),
      flags: 0,
    });
    doms.push(dom);
    return { name, dom };
  }

  const jobOf = async (id: string) => (await http.get(`/v1/jobs/${id}`)).body as Job;

  /** The job once it is final (completed, failed or canceled). */
  function finished(id: string, ms = 20_000): Promise<Job> {
    return waitFor(
      async () => {
        const job = await jobOf(id);
        return ['completed', 'failed', 'canceled'].includes(job.state) ? job : null;
      },
      `job ${id} to finish`,
      ms,
    );
  }

  /** Runs an action to its end under Prefer: wait; the test fails unless it completed. */
  async function done(domain: string, act: string, body: object = {}): Promise<Job> {
    const res = await action(domain, act, body, { prefer: 'wait=60' });
    assert.equal(res.status, 200, `${act}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.state, 'completed', `${act}: ${JSON.stringify(res.body)}`);
    return res.body as Job;
  }

  before(async () => {
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
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
    const { name, dom } = await newDomain();
    const res = await action(name, 'start');
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.match(res.body.id, UUID_RE);
    assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
    assert.equal(res.body.state, 'queued');
    assert.equal(res.body.type, 'domain.start');
    assert.equal(res.body.domain, name);
    const job = await finished(res.body.id);
    assert.equal(job.state, 'completed');
    assert.deepEqual(job.result, { state: 'running', changed: true });
    assert.equal(job.attempts, 1);
    assert.equal(
      (await client.rpc.domainGetState({ dom, flags: 0 })).state,
      1,
      'libvirt says running',
    );
  });

  it('answers 200 with the finished job under Prefer: wait', async () => {
    // That it answers when the job ends, not when the wait runs out, is the subject of
    // 'answers under Prefer: wait when the job ends' below (an order, not a duration).
    const { name, dom } = await newDomain();
    for (const [act, state] of [
      ['start', 'running'],
      ['suspend', 'paused'],
      ['resume', 'running'],
      ['shutdown', 'shutoff'],
    ] as const) {
      const res = await action(name, act, act === 'shutdown' ? { timeoutSeconds: 10 } : {}, {
        prefer: 'wait=10',
      });
      assert.equal(res.status, 200, `${act}: ${JSON.stringify(res.body)}`);
      assert.equal(res.headers['preference-applied'], 'wait=10');
      assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
      assert.equal(res.body.state, 'completed');
      assert.equal(res.body.result.state, state);
      assert.deepEqual(await jobOf(res.body.id), res.body, 'the job as stored, final');
    }
    const autostart = await action(name, 'autostart', { enabled: true }, { prefer: 'wait=10' });
    assert.deepEqual(autostart.body.result, { autostart: true, changed: true });
    assert.equal((await client.rpc.domainGetAutostart({ dom })).autostart, 1);
  });

  it('reboots for real: the running domain comes back booted, not as it was', async () => {
    // The test driver says why a domain runs: `unpaused` after a resume, `booted` after
    // a (re)boot. A reboot that did nothing would leave `unpaused`.
    const { name: domain } = await newDomain();
    for (const act of ['start', 'suspend', 'resume']) await done(domain, act);
    const view = async () => (await http.get(`/v1/hosts/test/domains/${domain}`)).body;
    assert.deepEqual([(await view()).state, (await view()).stateReason], ['running', 'unpaused']);
    const rebooted = await action(domain, 'reboot', {}, { prefer: 'wait=10' });
    assert.equal(rebooted.status, 200, JSON.stringify(rebooted.body));
    assert.equal(rebooted.body.state, 'completed');
    assert.deepEqual([(await view()).state, (await view()).stateReason], ['running', 'booted']);
  });

  it('refuses an action the live state does not allow, or bad input, at once', async () => {
    const { name } = await newDomain(); // shut off
    const cases: [string, string, object, number, string, string?][] = [
      [name, 'resume', {}, 409, 'INVALID_STATE'],
      [name, 'shutdown', {}, 409, 'INVALID_STATE'],
      [name, 'explode', {}, 400, 'INVALID_ARGUMENT', 'action'],
      [name, 'start', { force: true }, 400, 'INVALID_ARGUMENT', 'force'],
      [name, 'shutdown', { timeoutSeconds: 0 }, 400, 'INVALID_ARGUMENT', 'timeoutSeconds'],
      [name, 'autostart', {}, 400, 'INVALID_ARGUMENT', 'enabled'],
      [name, 'start', { bogus: 1 }, 400, 'INVALID_ARGUMENT', 'bogus'],
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
    // Refused at once: none of them became a job.
    assert.deepEqual((await http.get(`/v1/jobs?domain=${name}`)).body.items, []);
  });

  it('gives back the same job for the same Idempotency-Key and request, and 422 for another request', async () => {
    const { name } = await newDomain();
    const key = `idem-${randomUUID()}`;
    const first = await action(name, 'start', {}, { 'idempotency-key': key });
    assert.equal(first.status, 202);
    await finished(first.body.id);
    const again = await action(name, 'start', {}, { 'idempotency-key': key });
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
    const other = await action(name, 'start', { paused: true }, { 'idempotency-key': key });
    assert.equal(other.status, 422);
    assert.equal(other.body.code, 'IDEMPOTENCY_MISMATCH');
    const bad = await action(name, 'suspend', {}, { 'idempotency-key': 'has space' });
    assert.equal(bad.status, 400);
    // The same request with its fields in another order, or an absent field sent as null, is the same request.
    const key2 = `idem-${randomUUID()}`;
    const shutdown = await action(
      name,
      'shutdown',
      { timeoutSeconds: 5, force: true },
      { 'idempotency-key': key2 },
    );
    assert.equal(shutdown.status, 202, JSON.stringify(shutdown.body));
    const reordered = await action(
      name,
      'shutdown',
      { force: true, timeoutSeconds: 5, paused: null },
      { 'idempotency-key': key2 },
    );
    assert.equal(reordered.body.id, shutdown.body.id, JSON.stringify(reordered.body));
    await finished(shutdown.body.id);
    assert.deepEqual(
      (await http.get(`/v1/jobs?domain=${name}`)).body.items.map((j: Job) => j.id),
      [shutdown.body.id, first.body.id],
      'two jobs, one per key',
    );
  });

  it('lists jobs newest first, filtered and paginated, and shows one', async () => {
    const { name } = await newDomain();
    const ran: Job[] = [];
    for (const [act, body] of [
      ['start', {}],
      ['suspend', {}],
      ['resume', {}],
      ['shutdown', { timeoutSeconds: 10 }],
      ['autostart', { enabled: true }],
    ] as const) {
      ran.push(await done(name, act, body));
    }
    const all = await http.get(`/v1/jobs?host=test&domain=${name}&limit=100`);
    assert.equal(all.status, 200);
    assert.deepEqual(
      all.body.items.map((j: Job) => [j.id, j.type]),
      ran.map((j) => [j.id, j.type]).reverse(),
    );
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await http.get(
        `/v1/jobs?host=test&domain=${name}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.ok(page.body.items.length <= 2);
      walked.push(...page.body.items.map((j: Job) => j.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.deepEqual(
      walked,
      all.body.items.map((j: Job) => j.id),
    );
    const completed = await http.get(`/v1/jobs?state=completed&type=domain.start&domain=${name}`);
    assert.deepEqual(
      completed.body.items.map((j: Job) => j.id),
      [ran[0]!.id],
    );
    assert.deepEqual((await http.get(`/v1/jobs/${ran[1]!.id}`)).body, ran[1]);
    assert.equal((await http.get(`/v1/jobs/${randomUUID()}`)).status, 404);
    assert.equal((await http.get('/v1/jobs/not-a-uuid')).status, 400);
    assert.equal((await http.get('/v1/jobs?state=sleeping')).status, 400);
  });

  it('refuses to cancel a job that has finished', async () => {
    const { name } = await newDomain();
    const finishedJob = await done(name, 'start');
    const res = await http.del(`/v1/jobs/${finishedJob.id}`);
    assert.equal(res.status, 409);
    assert.equal(res.body.code, 'INVALID_STATE');
    assert.equal((await jobOf(finishedJob.id)).state, 'completed', 'still completed');
  });

  it('does the same through GraphQL: domainAction with wait, job, jobs, errors with REST codes', async () => {
    const { name } = await newDomain();
    // An earlier start and stop of the domain, through REST: the list below has both starts.
    const earlier = await done(name, 'start');
    await done(name, 'destroy');
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
      { d: name },
    );
    assert.equal(started.errors, undefined, JSON.stringify(started.errors));
    assert.equal(started.data.domainAction.state, 'completed');
    assert.deepEqual(started.data.domainAction.result, {
      __typename: 'StartDomainResult',
      state: 'running',
      changed: true,
    });
    const id = started.data.domainAction.id as string;
    const rest = await jobOf(id);
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
      { d: name },
    );
    assert.deepEqual(
      listed.data.jobs.edges.map((e: { node: { id: string } }) => e.node.id),
      [id, earlier.id],
    );
    assert.equal(listed.data.jobs.pageInfo.hasNextPage, false);
    const refused = await gql(
      `mutation($d: String!) { domainAction(host: "test", domain: $d, action: start) { id } }`,
      {
        d: name,
      },
    );
    assert.equal(refused.errors[0].extensions.code, 'INVALID_STATE');
    const stopped = await gql(
      `mutation($d: String!) { domainAction(host: "test", domain: $d, action: destroy, wait: 10) { state result { __typename ... on DestroyDomainResult { state changed } } } }`,
      { d: name },
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
    // No worker runs between tests: each test that needs one starts its own and stops it.
    const forwarder = new Forwarder();
    let queue: Queue;
    let worker: WorkerProcess | null = null;
    async function withWorker<T>(
      env: Record<string, string>,
      fn: (w: WorkerProcess) => Promise<T>,
    ): Promise<T> {
      worker = await startWorker(env);
      try {
        return await fn(worker);
      } finally {
        await stopWorker(worker);
        worker = null;
      }
    }

    before(async () => {
      await closeAllApps();
      t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }));
      await forwarder.open();
      await http
        .post('/v1/hosts', { name: 'flaky', uri: `test+tcp://127.0.0.1:${forwarder.port}/default` })
        .expect(201);
      queue = new Queue('domain-ops', {
        connection: { url: REDIS_URL, maxRetriesPerRequest: null },
        prefix: `${prefix}bull`,
      });
    });

    after(async () => {
      if (worker) await stopWorker(worker);
      await queue.close();
      await forwarder.cut();
    });

    it('keeps jobs queued without a worker, and cancels one that has not started', async () => {
      const { name, dom } = await newDomain();
      const res = await action(name, 'start');
      assert.equal(res.status, 202);
      const id = res.body.id as string;
      // Nothing can take it: BullMQ holds it waiting, and no worker listens on its queue.
      assert.equal(await queue.getWorkersCount(), 0, 'no worker on domain-ops');
      assert.equal(await (await queue.getJob(id))?.getState(), 'waiting');
      assert.equal((await jobOf(id)).state, 'queued', 'no worker, no progress');
      const canceled = await http.del(`/v1/jobs/${id}`);
      assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
      assert.equal(canceled.body.state, 'canceled');
      assert.equal(await queue.getJob(id), undefined, 'taken out of BullMQ');
      // It never runs: a worker that comes later runs a later job on the same queue, not it.
      await withWorker({}, async (w) => {
        const later = await finished((await action(name, 'autostart', { enabled: true })).body.id);
        assert.equal(later.state, 'completed', JSON.stringify(later));
        assert.deepEqual(w.linesOf(id), [], 'the worker never touched the canceled job');
        assert.equal(w.linesOf(later.id).length > 0, true, 'the worker logs the jobs it runs');
      });
      const afterwards = await jobOf(id);
      assert.equal(afterwards.state, 'canceled');
      assert.equal(afterwards.attempts, 0);
      assert.equal((await client.rpc.domainGetState({ dom, flags: 0 })).state, 5, 'still shut off');
    });

    it('has a separate worker process run what the api queued; a vanished domain fails at once', async () => {
      const kept = await newDomain();
      const gone = await newDomain();
      const start = await action(kept.name, 'start');
      const doomed = await action(gone.name, 'start');
      assert.deepEqual([start.status, doomed.status], [202, 202]);
      // the domain disappears after the job was accepted: a permanent failure
      await client.rpc.domainUndefineFlags({ dom: gone.dom, flags: 0 });
      await withWorker({}, async () => {
        const started = await finished(start.body.id);
        assert.equal(started.state, 'completed');
        assert.equal((await client.rpc.domainGetState({ dom: kept.dom, flags: 0 })).state, 1);
        const failed = await finished(doomed.body.id);
        assert.equal(failed.state, 'failed');
        assert.equal(failed.attempts, 1, 'a permanent failure is not retried');
        assert.equal(failed.error?.code, 'NOT_FOUND');
      });
    });

    it('answers under Prefer: wait when the job ends, not when the wait runs out', async () => {
      // A witness: a job held by a host that fell silent, its caller under Prefer: wait=20,
      // is answered when those 20 s run out (202, unfinished). A job that ends at once, its
      // caller under Prefer: wait=60, asked after the witness, must be answered before it.
      const held = await newDomain();
      const quick = await newDomain();
      // Its connections wait for the silent host (a handshake would time out only in 60 s).
      await withWorker({ LIBVIRT_CONNECT_TIMEOUT_MS: '60000' }, async (w) => {
        // The worker takes the witness job only once the host has fallen silent (the api
        // needs it answering to accept the job): the queue is paused meanwhile.
        await queue.pause();
        let witnessAnswered = false;
        try {
          const witness = actionOn('flaky', held.name, 'start', {}, { prefer: 'wait=20' }).then(
            (r) => {
              witnessAnswered = true;
              return r;
            },
          );
          const heldJob = await waitFor(
            async () => (await http.get(`/v1/jobs?domain=${held.name}`)).body.items[0] as Job,
            'the witness job to be queued',
          );
          forwarder.freeze();
          await queue.resume();
          await waitFor(
            async () => (await jobOf(heldJob.id)).startedAt !== null,
            'the worker to take the witness job',
          );
          const res = await action(quick.name, 'start', {}, { prefer: 'wait=60' });
          assert.equal(
            witnessAnswered,
            false,
            'answered before a 20 s wait asked earlier ran out: when the job ended',
          );
          assert.equal(res.status, 200, JSON.stringify(res.body));
          assert.equal(res.headers['preference-applied'], 'wait=60');
          assert.equal(res.body.state, 'completed');
          const answered = await witness;
          assert.equal(answered.status, 202, `the wait ran out: ${JSON.stringify(answered.body)}`);
          assert.equal(answered.headers['preference-applied'], 'wait=20');
          assert.ok(['queued', 'running'].includes(answered.body.state), answered.body.state);
          // The silent host answers again: the witness job ends as it should.
          forwarder.resume();
          assert.equal((await finished(heldJob.id, 90_000)).state, 'completed');
          assert.equal(w.linesOf(heldJob.id).length > 0, true);
        } finally {
          await queue.resume();
          forwarder.resume();
        }
      });
    });

    it('retries a job whose host went away, with backoff, and completes it when the host is back', async () => {
      const { name, dom } = await newDomain();
      await client.rpc.domainCreateWithFlags({ dom, flags: 0 });
      const res = await actionOn('flaky', name, 'suspend');
      assert.equal(res.status, 202);
      const id = res.body.id as string;
      // accepted through the forwarder; now the host goes away before a worker gets to it
      await forwarder.cut();
      let back = false;
      try {
        await withWorker({}, async (w) => {
          const waiting = await waitFor(async () => {
            const job = await jobOf(id);
            return job.error !== null ? job : null;
          }, 'the first attempt to fail');
          assert.equal(waiting.state, 'queued', `waiting to retry: ${JSON.stringify(waiting)}`);
          assert.equal(waiting.error?.code, 'HOST_UNREACHABLE');
          assert.equal(waiting.attempts, 1);
          await forwarder.open();
          back = true;
          const ended = await finished(id);
          assert.equal(ended.state, 'completed', JSON.stringify(ended));
          assert.ok(ended.attempts >= 2, `attempts: ${ended.attempts}`);
          assert.equal(ended.error, null, 'what stopped the first attempt is past');
          // The worker's own account, in order: a retry announced, then the job completed
          // (its log line may reach the pipe after the record said so).
          await waitFor(
            () => w.linesOf(id).some((l) => l.includes(': completed')),
            'the worker to log the completion',
          );
          const lines = w.linesOf(id);
          const retry = lines.findIndex((l) => l.includes('will retry'));
          const completed = lines.findIndex((l) => l.includes(': completed'));
          assert.ok(retry >= 0 && completed > retry, lines.join('\n'));
        });
      } finally {
        if (!back) await forwarder.open(); // the host back for whatever runs after
      }
      assert.equal((await client.rpc.domainGetState({ dom, flags: 0 })).state, 3, 'paused');
    });
  });
});
