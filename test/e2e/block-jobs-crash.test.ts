/**
 * A worker may die at any moment. The api runs here (ROLE=api); the worker is
 * a process of its own (ROLE=worker, JOB_LOCK_MS=1000), killed with SIGKILL
 * while a block commit runs, in three situations: mid-commit with libvirt
 * still running it, mid-commit with libvirt finishing it before any worker is
 * back, and waiting in ready with a pivot asked for while no worker runs; and
 * then three times over during one commit. Each time a new worker process finishes the job exactly once (libvirt
 * reports one completion on the disk, one commit's worth of images left the
 * chain) and the chain and the data are right.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import {
  BlockJobStatus,
  DomainBlockCommitFlags,
  DomainEventId,
  LibvirtClient,
  type DomainEvent,
} from '#src/libvirt/index.js';
import { Forwarder } from '../support/forwarder.js';
import { WorkerProcess } from '../support/worker-process.js';
import { TcgChainDomain } from '../support/tcg-chain.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  REDIS_URL,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'block-jobs-crash-admin-token-0123';
const MiB = 1024 * 1024;
const TERMINAL = ['completed', 'failed', 'canceled'];

interface Job {
  id: string;
  state: string;
  attempts: number;
  progress: { cur: number; end: number; percent: number } | null;
  result: {
    outcome: string;
    completionSeenIn: string | null;
    reattached: boolean;
    pivoted: boolean | null;
    disk: { chain: { path: string; index: number }[] };
  } | null;
  error: { code: string; message: string } | null;
}

describe('block jobs when the worker is killed (SIGKILL)', () => {
  let t: TestApp;
  let client: LibvirtClient;
  let worker: WorkerProcess | null = null;
  const workers: WorkerProcess[] = [];
  const run = randomUUID().slice(0, 6);
  const domains: TcgChainDomain[] = [];
  const events: Extract<DomainEvent, { kind: 'blockJob' }>[] = [];
  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).send(body),
  };

  /** POST a block job on `d`'s vda through the api. */
  const blockJob = (d: TcgChainDomain, body: object) =>
    http.post(`/v1/hosts/local/domains/${d.name}/disks/vda/block-jobs`, body);

  /** The id of a job the api accepted (202). */
  function accepted(res: { status: number; body: { id?: string } }): string {
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id!;
  }

  async function startWorker(): Promise<WorkerProcess> {
    // The worker role alone, with a short job lock so a dead one is noticed fast.
    worker = await WorkerProcess.start({
      REDIS_URL,
      VIRTGATE_REDIS_PREFIX: prefix,
      JOB_LOCK_MS: '1000',
    });
    workers.push(worker);
    return worker;
  }

  /** How long the job took to be picked up again, for the record (`node --test` prints diagnostics). */
  function report(
    t: { diagnostic(m: string): void },
    id: string,
    next: WorkerProcess,
    killedAt: number,
    startedAt: number,
  ): void {
    const reattached = next.loggedAt(id, 're-attaching');
    t.diagnostic(
      `worker ready ${startedAt - killedAt} ms after the kill; job re-attached ${reattached === null ? '?' : reattached - startedAt} ms after that; completed ${Date.now() - killedAt} ms after the kill`,
    );
  }

  async function domain(label: string, extraMiB: Partial<Record<string, number>>) {
    const d = await TcgChainDomain.create(client, `vg-bjc-${run}-${label}`, { extraMiB });
    domains.push(d);
    return d;
  }

  async function job(id: string): Promise<Job> {
    return (await http.get(`/v1/jobs/${id}`)).body as Job;
  }

  async function until(id: string, done: (j: Job) => boolean, what: string, ms = 30_000) {
    let last: Job | null = null;
    try {
      return await waitFor(
        async () => {
          last = await job(id);
          return done(last) ? last : null;
        },
        `job ${id}: ${what}`,
        ms,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`, {
        cause: err,
      });
    }
  }

  async function ended(id: string): Promise<Job> {
    return until(id, (j) => TERMINAL.includes(j.state), 'end');
  }

  async function libvirtHasJob(d: TcgChainDomain): Promise<boolean> {
    return (
      (await client.rpc.domainGetBlockJobInfo({ dom: d.dom, path: 'vda', flags: 0 })).found === 1
    );
  }

  /** Terminal BLOCK_JOB_2 events libvirt sent for `d`'s vda (one per block job that ended). */
  function endsOf(d: TcgChainDomain): number[] {
    return events
      .filter(
        (e) =>
          e.dom.uuid.equals(d.dom.uuid) && e.disk === 'vda' && e.status !== BlockJobStatus.READY,
      )
      .map((e) => e.status);
  }

  before(async () => {
    client = await LibvirtClient.connect('qemu:///system');
    client.on('domainEvent', (e) => {
      if (e.kind === 'blockJob') events.push(e);
    });
    await client.domainEventRegisterAny(DomainEventId.BLOCK_JOB_2, null);
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }));
    await startWorker();
  });

  after(async () => {
    for (const w of workers) await w.kill();
    await closeAllApps();
    for (const d of domains) await d.remove();
    await client.close();
    await deleteKeys(prefix);
  });

  it('1: killed mid active commit, libvirt still running it: the next worker re-attaches and pivots', async (t) => {
    const d = await domain('reattach', { top: 4 });
    const { base, s1, s2 } = d.paths;
    const idx = Object.fromEntries((await d.liveChain()).map((m) => [m.path, m.index]));
    const res = await blockJob(d, {
      type: 'commit',
      base: `vda[${idx[s2]}]`,
      bandwidth: 1 * MiB,
    });
    const id = accepted(res);
    await until(id, (j) => j.state === 'running' && j.progress !== null, 'progress');
    assert.ok(await libvirtHasJob(d));
    const killedAt = Date.now();
    await worker!.kill();
    assert.ok(await libvirtHasJob(d), 'the commit outlives the worker: libvirt still runs it');
    assert.notEqual((await job(id)).state, 'completed');

    // Without a worker, the disk is still the job's: a second job is refused at once.
    const second = await blockJob(d, {
      type: 'pull',
    });
    assert.equal(second.status, 409);
    assert.equal(second.body.code, 'CONFLICT');

    const next = await startWorker();
    const startedAt = Date.now();
    const done = await ended(id);
    report(t, id, next, killedAt, startedAt);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(done.result?.reattached, true);
    assert.equal(done.result?.pivoted, true);
    assert.equal(done.result?.completionSeenIn, 'event+chain');
    assert.ok(done.attempts >= 2, `attempts: ${done.attempts}`);
    assert.ok(
      next.linesOf(id).some((l) => l.includes('re-attaching') && l.includes('still runs it')),
      next.linesOf(id).join('\n'),
    );
    assert.ok(
      !next.linesOf(id).some((l) => l.includes('starting')),
      'the new worker started nothing',
    );
    await d.assertChain([s2, s1, base], 'after the re-attached commit');
    assert.deepEqual(endsOf(d), [BlockJobStatus.COMPLETED], 'libvirt ran exactly one block job');
    await d.assertPatterns(s2);
    assert.ok(await d.holds(s2, 'top'));
    assert.ok(!(await d.holds(s1, 'top')), 'nothing was committed further down');
  });

  it('2: killed mid commit, libvirt finishing it while no worker runs: the next worker recognises it from the chain', async (t) => {
    const d = await domain('finished', { s2: 2 });
    const { base, s2, top } = d.paths;
    const idx = Object.fromEntries((await d.liveChain()).map((m) => [m.path, m.index]));
    const res = await blockJob(d, {
      type: 'commit',
      top: `vda[${idx[s2]}]`,
      base: `vda[${idx[base]}]`,
      bandwidth: 1 * MiB,
    });
    const id = accepted(res);
    await until(id, (j) => j.state === 'running' && j.progress !== null, 'progress');
    const killedAt = Date.now();
    await worker!.kill();
    // libvirt's own word that the commit ended (BLOCK_JOB_2), and its job gone from the disk.
    await waitFor(
      async () => endsOf(d).length > 0 && !(await libvirtHasJob(d)),
      'libvirt to finish the commit with no worker running',
    );
    assert.deepEqual(endsOf(d), [BlockJobStatus.COMPLETED], 'libvirt finished the commit');
    await d.assertChain([top, base], 'libvirt applied the commit while no worker watched');
    assert.equal((await job(id)).state, 'running', 'the record does not know yet');

    // libvirt has no job on the disk now, but the gateway's job still holds it.
    const second = await blockJob(d, {
      type: 'pull',
    });
    assert.equal(second.status, 409, JSON.stringify(second.body));
    assert.match(second.body.detail, new RegExp(id));

    const next = await startWorker();
    const startedAt = Date.now();
    const done = await ended(id);
    report(t, id, next, killedAt, startedAt);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(done.result?.reattached, true);
    assert.equal(done.result?.completionSeenIn, 'chain', 'no event for it: the chain told');
    assert.ok(
      next.linesOf(id).some((l) => l.includes('re-attaching') && l.includes('has no job')),
      next.linesOf(id).join('\n'),
    );
    assert.ok(
      !next.linesOf(id).some((l) => l.includes('starting')),
      'the commit was not run again',
    );
    await d.assertChain([top, base], 'after the job');
    assert.deepEqual(endsOf(d), [BlockJobStatus.COMPLETED], 'libvirt ran exactly one block job');
    await d.assertPatterns(top, ['base', 's1', 's2', 'top']);
    assert.ok(await d.holds(base, 's2'), "s2's data is in base");
  });

  it('3: killed while ready with pivot: false, a pivot asked for meanwhile: the next worker pivots', async (t) => {
    const d = await domain('pivot', {});
    const { base, s1 } = d.paths;
    const res = await blockJob(d, {
      type: 'commit',
      base: s1,
      pivot: false,
    });
    const id = accepted(res);
    await until(id, (j) => j.state === 'ready', 'ready');
    const killedAt = Date.now();
    await worker!.kill();
    // The api takes the pivot request; the job waits for a worker.
    const pivot = await http.post(`/v1/jobs/${id}/pivot`);
    assert.equal(pivot.status, 202, JSON.stringify(pivot.body));
    assert.equal((await job(id)).state, 'ready');
    assert.ok(await libvirtHasJob(d), 'nothing pivots without a worker');
    assert.deepEqual(endsOf(d), [], 'libvirt reported no end of the commit');

    const next = await startWorker();
    const startedAt = Date.now();
    const done = await ended(id);
    report(t, id, next, killedAt, startedAt);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(done.result?.reattached, true);
    assert.equal(done.result?.pivoted, true);
    // No pivot while no worker ran: the next one found libvirt's job still there, then pivoted it.
    const lines = next.linesOf(id);
    const reattach = lines.findIndex((l) => l.includes('re-attaching'));
    assert.ok(reattach >= 0 && lines[reattach]!.includes('still runs it'), lines.join('\n'));
    assert.ok(
      lines.findIndex((l) => l.includes('pivoting')) > reattach,
      `the new worker pivoted, after it re-attached: ${lines.join('\n')}`,
    );
    await d.assertChain([s1, base], 'after the pivot');
    assert.deepEqual(endsOf(d), [BlockJobStatus.COMPLETED], 'libvirt ran exactly one block job');
    await d.assertPatterns(s1);
  });
  it('killed again and again during one active commit (3 times): completed exactly once, chain and data right', async (t) => {
    const d = await domain('again', { top: 4, s2: 2 });
    const { base } = d.paths;
    // Slow (9 MiB to commit at 256 KiB/s) while the workers are killed and started again,
    // however long that takes: an active commit that got ready would be pivoted by the
    // worker holding it, and end before the kills are done.
    const res = await blockJob(d, {
      type: 'commit',
      base,
      bandwidth: MiB / 4,
    });
    const id = accepted(res);
    const postedAt = Date.now();
    // Killed at three different points of a worker's hold on the job, each chosen by what
    // the job shows (a kill at a point the job had passed would fail the round, not pass it).
    const holding = (w: WorkerProcess) => w.loggedAt(id, 're-attaching') !== null;
    let cur = 0;
    const points: [string, (j: Job) => boolean][] = [
      // 1: the first worker follows it, libvirt's progress written;
      [
        'the first worker writing its progress',
        (j) => j.state === 'running' && j.progress !== null,
      ],
      // 2: the second re-attached and moved it on (it wrote libvirt's progress past kill 1's);
      ['the second worker moving it on', (j) => holding(worker!) && (j.progress?.cur ?? 0) > cur],
      // 3: the third, as soon as its log says it re-attached (the kill lands as it takes over).
      ['the third worker re-attaching', () => holding(worker!)],
    ];
    for (const [round, [point, reached]] of points.entries()) {
      const before = await until(
        id,
        (j) => reached(j) || TERMINAL.includes(j.state),
        point,
        60_000,
      );
      await worker!.kill();
      t.diagnostic(
        `kill ${round + 1} (${point}): ${Date.now() - postedAt} ms after the POST; job ${before.state} at ${before.progress?.percent ?? '?'} %`,
      );
      assert.ok(
        !TERMINAL.includes(before.state),
        `the job ended before kill ${round + 1}: make it longer`,
      );
      // The record as the dead worker left it: what the next one must move on from.
      cur = (await job(id)).progress?.cur ?? 0;
      await startWorker();
    }
    assert.ok(await libvirtHasJob(d), 'libvirt still runs the commit');
    // The kills are done: libvirt may go at full speed (the job does not track its speed).
    await client.rpc.domainBlockJobSetSpeed({ dom: d.dom, path: 'vda', bandwidth: 0n, flags: 0 });
    const done = await ended(id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.ok(done.attempts >= 4, `attempts: ${done.attempts}`);
    assert.equal(done.result?.reattached, true);
    assert.equal(done.result?.pivoted, true);
    await d.assertChain([base], 'after the commit of the whole chain into base');
    assert.deepEqual(endsOf(d), [BlockJobStatus.COMPLETED], 'libvirt ran exactly one block job');
    await d.assertPatterns(base);
  });
  it('the host goes away mid active commit: the job stays running while the worker retries, then re-attaches', async () => {
    const forwarder = new Forwarder();
    await forwarder.open();
    try {
      await http
        .post('/v1/hosts', { name: 'flaky', uri: `qemu+tcp://127.0.0.1:${forwarder.port}/system` })
        .expect(201);
      const d = await domain('flaky', { top: 4 });
      const { base, s1, s2 } = d.paths;
      const res = await http.post(`/v1/hosts/flaky/domains/${d.name}/disks/vda/block-jobs`, {
        type: 'commit',
        base: s2,
        bandwidth: 1 * MiB,
        pivot: false,
      });
      const id = accepted(res);
      await until(id, (j) => j.state === 'running' && j.progress !== null, 'progress');
      await forwarder.cut();
      const lost = await until(
        id,
        (j) => j.error?.code === 'HOST_UNREACHABLE',
        'word of the lost host',
        10_000,
      );
      assert.equal(lost.state, 'running', 'libvirt still runs it: the job is not queued again');
      assert.ok(await libvirtHasJob(d), 'the commit outlives the connection');
      // A retry runs (its start clears the error and counts an attempt) and fails the same way.
      const retried = await until(
        id,
        (j) =>
          j.attempts > lost.attempts &&
          j.error?.code === 'HOST_UNREACHABLE' &&
          worker!.linesOf(id).filter((l) => l.includes('will retry')).length >= 2,
        'a retry that failed too',
      );
      assert.equal(retried.state, 'running', JSON.stringify(retried));
      assert.equal(retried.error?.code, 'HOST_UNREACHABLE');
      assert.ok(await libvirtHasJob(d), 'libvirt still runs the commit');

      await forwarder.open();
      const ready = await until(id, (j) => j.state === 'ready', 'ready', 60_000);
      assert.equal(ready.error, null, 'the outage is past');
      assert.ok(ready.attempts >= 2, `attempts: ${ready.attempts}`);
      assert.equal((await http.post(`/v1/jobs/${id}/pivot`)).status, 202);
      const done = await ended(id);
      assert.equal(done.state, 'completed', JSON.stringify(done.error));
      assert.equal(done.result?.reattached, true);
      assert.equal(done.result?.pivoted, true);
      await d.assertChain([s2, s1, base], 'after the commit that lived through the outage');
      assert.deepEqual(endsOf(d), [BlockJobStatus.COMPLETED], 'libvirt ran exactly one block job');
      await d.assertPatterns(s2);
    } finally {
      await forwarder.cut();
    }
  });
  it('a worker stopped with SIGTERM mid-commit hands the job back at once; the next one re-attaches', async (t) => {
    const d = await domain('sigterm', { top: 4 });
    const { base, s1, s2 } = d.paths;
    const res = await blockJob(d, {
      type: 'commit',
      base: s2,
      bandwidth: 1 * MiB,
    });
    const id = accepted(res);
    await until(id, (j) => j.state === 'running' && j.progress !== null, 'progress');
    const stopping = worker!;
    const signaledAt = Date.now();
    stopping.child.kill('SIGTERM');
    const [code] = (await once(stopping.child, 'exit')) as [number | null];
    t.diagnostic(`the worker exited ${Date.now() - signaledAt} ms after SIGTERM`);
    assert.equal(code, 0, 'a clean exit');
    assert.ok(stopping.linesOf(id).some((l) => l.includes('handed back')));
    // It did not wait for the commit to end: libvirt still runs it after the exit, unpivoted.
    assert.ok(await libvirtHasJob(d), 'libvirt goes on with the commit');
    assert.deepEqual(endsOf(d), [], 'libvirt reported no end of the commit before the exit');
    assert.ok(
      !stopping.linesOf(id).some((l) => l.includes('pivoting')),
      'the stopping worker pivoted nothing',
    );
    assert.equal((await job(id)).state, 'running', 'the record keeps its state');

    await startWorker();
    const done = await ended(id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(done.result?.reattached, true);
    assert.equal(done.result?.pivoted, true);
    await d.assertChain([s2, s1, base], 'after the handed-back commit');
    assert.deepEqual(endsOf(d), [BlockJobStatus.COMPLETED], 'libvirt ran exactly one block job');
    await d.assertPatterns(s2);
  });
  it('resolves a queued job again when it starts: refused if the chain changed under it, and nothing is started', async () => {
    await worker!.kill();
    const d = await domain('changed', {});
    const { base, s1, s2, top } = d.paths;
    const idx = Object.fromEntries((await d.liveChain()).map((m) => [m.path, m.index]));
    const res = await blockJob(d, {
      type: 'commit',
      top: `vda[${idx[s1]}]`,
      base: `vda[${idx[base]}]`,
    });
    const id = accepted(res);
    // Queued, no worker: the disk is the job's already.
    const second = await blockJob(d, {
      type: 'pull',
    });
    assert.equal(second.status, 409);
    assert.match(second.body.detail, new RegExp(`${id} \\(block.commit, queued\\)`));

    // Meanwhile someone merges s1 away outside the gateway: vda[idx[s1]] names nothing now.
    const endsBefore = endsOf(d).length;
    await client.rpc.domainBlockCommit({
      dom: d.dom,
      disk: 'vda',
      base: `vda[${idx[base]}]`,
      top: `vda[${idx[s1]}]`,
      bandwidth: 0n,
      flags: 0,
    });
    await waitFor(
      async () => endsOf(d).length > endsBefore && !(await libvirtHasJob(d)),
      'libvirt to end the commit made outside the gateway',
    );
    await d.assertChain([top, s2, base], 'after the commit made outside the gateway');
    const ends = endsOf(d).length;

    await startWorker();
    const done = await ended(id);
    assert.equal(done.state, 'failed');
    assert.equal(done.error?.code, 'CONFLICT');
    assert.match(done.error?.message ?? '', /changed since the job was accepted.*names no image/);
    assert.equal(endsOf(d).length, ends, 'the gateway started no block job');
    await d.assertChain([top, s2, base], 'the chain as the other commit left it');
    await d.assertPatterns(top);
    // The failed job let go of the disk.
    const next = await blockJob(d, {
      type: 'pull',
    });
    assert.equal(next.status, 202, JSON.stringify(next.body));
    assert.equal((await ended(next.body.id as string)).state, 'completed');
  });
  it('a worker that died between asking libvirt to start a job and noting it: the next one adopts it, or starts it if it did not take', async () => {
    await worker!.kill();
    const redis = new Redis(REDIS_URL);
    const jobs: { d: TcgChainDomain; id: string; took: boolean }[] = [];
    try {
      for (const took of [true, false]) {
        const d = await domain(took ? 'took' : 'nottook', {});
        const { base, s1, s2, top } = d.paths;
        const res = await blockJob(d, {
          type: 'commit',
          base: s2,
        });
        assert.equal(res.status, 202, JSON.stringify(res.body));
        const id = res.body.id as string;
        // What a worker killed right after asking libvirt leaves: the start noted as under way...
        await redis.hset(`${prefix}block-job:${id}`, {
          phase: 'starting',
          chainAtStart: JSON.stringify([top, s2, s1, base]),
        });
        // ...and, if the call took, the commit running in libvirt.
        if (took) {
          await client.rpc.domainBlockCommit({
            dom: d.dom,
            disk: 'vda',
            base: s2,
            top: null,
            bandwidth: 0n,
            flags: DomainBlockCommitFlags.ACTIVE,
          });
        }
        jobs.push({ d, id, took });
      }
    } finally {
      await redis.quit();
    }
    const next = await startWorker();
    for (const { d, id, took } of jobs) {
      const done = await ended(id);
      assert.equal(done.state, 'completed', JSON.stringify(done.error));
      assert.equal(done.result?.reattached, took);
      assert.equal(
        next.linesOf(id).some((l) => l.includes('starting block.commit')),
        !took,
        next.linesOf(id).join('\n'),
      );
      await d.assertChain([d.paths.s2, d.paths.s1, d.paths.base], `after the job (took: ${took})`);
      assert.deepEqual(endsOf(d), [BlockJobStatus.COMPLETED], 'libvirt ran exactly one block job');
      await d.assertPatterns(d.paths.s2);
    }
  });
});
