/**
 * Block jobs libvirt runs with no record of the gateway's, started here with
 * `virsh` (outside the gateway) on real TCG domains over a 4-image qcow2 chain
 * (base <- s1 <- s2 <- top): the disk view shows them (`blockJob`, with no
 * job id), reconciliation adopts them (`adopted: true`), and through the API
 * they are then pivoted or canceled like any other job; the chain is checked
 * against libvirt's live XML and `qemu-img info --backing-chain`, the data
 * read back through the resulting top. Reconciliation runs here at worker boot
 * (two worker processes at once adopt a job once), when a host's link comes
 * back, and as the service the worker exports (what Redis-loss recovery calls).
 */
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import request from 'supertest';
import { JobSignals } from '#jobs/job-signals.js';
import { LibvirtClient } from '#src/libvirt/index.js';
import { BlockJobReconciler, type ReconcileReport } from '#modules/block-jobs/index.js';
import { Forwarder } from '../support/forwarder.js';
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

const execFileAsync = promisify(execFile);
const ADMIN = 'block-jobs-adopt-admin-token-0123';
const TERMINAL = ['completed', 'failed', 'canceled'];

interface Job {
  id: string;
  type: string;
  state: string;
  host: string;
  domain: string;
  disk: string;
  adopted: boolean;
  requestedBy: string;
  cancelRequested: boolean;
  progress: { cur: number; end: number; percent: number } | null;
  resolved: Record<string, unknown>;
  result: {
    outcome: string;
    completionSeenIn: string | null;
    pivoted: boolean | null;
    reattached: boolean;
    chainBefore: string[];
    disk: { chain: { path: string }[] };
  } | null;
  error: { code: string; message: string } | null;
}

interface Disk {
  target: string;
  chain: { path: string }[];
  mirror: { path: string; job: string; ready: boolean } | null;
  blockJob: {
    type: string;
    progress: { cur: number; end: number; percent: number };
    ready: boolean;
    jobId: string | null;
  } | null;
}

/** `virsh` against the system libvirtd: the tests' way of acting outside the gateway. */
async function virsh(...args: string[]): Promise<string> {
  return (await execFileAsync('virsh', ['-c', 'qemu:///system', ...args])).stdout;
}

function gateway(getT: () => TestApp) {
  const auth = (r: request.Test) => r.set('authorization', `Bearer ${ADMIN}`);
  const http = {
    get: (url: string) => auth(request(getT().server).get(url)),
    post: (url: string, body: object = {}) => auth(request(getT().server).post(url)).send(body),
    del: (url: string) => auth(request(getT().server).delete(url)),
  };
  const job = async (id: string): Promise<Job> => (await http.get(`/v1/jobs/${id}`)).body as Job;
  const disk = async (host: string, d: TcgChainDomain): Promise<Disk> => {
    const res = await http.get(`/v1/hosts/${host}/domains/${d.name}/disks/vda`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as Disk;
  };
  const until = async (id: string, done: (j: Job) => boolean, what: string, ms = 30_000) => {
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
  };
  const ended = (id: string) => until(id, (j) => TERMINAL.includes(j.state), 'end');
  /** The jobs of domain `d` (newest first). */
  const jobsOf = async (d: TcgChainDomain): Promise<Job[]> => {
    const res = await http.get(`/v1/jobs?domain=${d.name}&limit=100`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return (res.body as { items: Job[] }).items;
  };
  return { http, job, disk, until, ended, jobsOf };
}

/** libvirt has a block job on `d`'s vda (asked directly, not through the gateway). */
async function libvirtHasJob(client: LibvirtClient, d: TcgChainDomain): Promise<boolean> {
  return (
    (await client.rpc.domainGetBlockJobInfo({ dom: d.dom, path: 'vda', flags: 0 })).found === 1
  );
}

/** The adoption of `d`'s vda in a report (exactly one), or a failure naming the report. */
function adoptionOf(report: ReconcileReport, d: TcgChainDomain) {
  const mine = report.adopted.filter((a) => a.domain === d.name && a.disk === 'vda');
  assert.equal(mine.length, 1, JSON.stringify(report));
  return mine[0]!;
}

describe('block jobs started outside the gateway, adopted', () => {
  const prefix = uniquePrefix(import.meta.url);
  let t: TestApp;
  let client: LibvirtClient;
  let reconciler: BlockJobReconciler;
  const run = randomUUID().slice(0, 6);
  const domains: TcgChainDomain[] = [];
  const g = gateway(() => t);
  /**
   * How many looks at job `id` the processor (in this process: ROLE=all) has
   * finished: each ends waiting for the next, through JobSignals.next, counted
   * by wrapping the app's own JobSignals.
   */
  let looks: (id: string) => number;

  async function domain(label: string, extraMiB?: Partial<Record<string, number>>) {
    const d = await TcgChainDomain.create(client, `vg-bja-${run}-${label}`, { extraMiB });
    domains.push(d);
    return d;
  }

  before(async () => {
    client = await LibvirtClient.connect('qemu:///system');
    t = await startApp(
      testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, BLOCK_JOB_ADOPT: 'true' }),
    );
    // ROLE=all: the worker's services are in the app.
    reconciler = t.app.get(BlockJobReconciler, { strict: false });
    const signals = t.app.get(JobSignals, { strict: false });
    const next = signals.next.bind(signals);
    const counts = new Map<string, number>();
    signals.next = (id, ms) => {
      counts.set(id, (counts.get(id) ?? 0) + 1);
      return next(id, ms);
    };
    looks = (id) => counts.get(id) ?? 0;
  });

  after(async () => {
    await closeAllApps();
    for (const d of domains) await d.remove();
    await client.close();
    await deleteKeys(prefix);
  });

  it('a virsh blockcopy shows on the disk view, is adopted ready, and is pivoted through the API', async () => {
    const d = await domain('copy');
    const { base, s1, s2, top } = d.paths;
    const copy = path.join(d.dir, 'copy.qcow2');
    await virsh('blockcopy', d.name, 'vda', copy, '--wait', '--transient-job', '--format', 'qcow2');
    assert.ok(await libvirtHasJob(client, d));

    const before = await g.disk('local', d);
    assert.equal(before.mirror?.path, copy);
    assert.equal(before.blockJob?.type, 'copy', JSON.stringify(before));
    assert.equal(before.blockJob.ready, true);
    assert.equal(before.blockJob.jobId, null, 'the gateway has no job for it yet');
    assert.equal(before.blockJob.progress.percent, 100);

    const report = await reconciler.reconcileHost('local');
    assert.equal(report.error, null, JSON.stringify(report));
    const adoption = adoptionOf(report, d);
    const job = await g.job(adoption.jobId);
    assert.equal(job.adopted, true);
    assert.equal(job.type, 'block.copy');
    assert.equal(job.state, 'ready', JSON.stringify(job));
    assert.equal(job.host, 'local');
    assert.equal(job.domain, d.name);
    assert.equal(job.disk, 'vda');
    assert.equal(job.resolved.destination, copy);
    assert.equal(job.progress?.percent, 100);
    assert.equal((await g.disk('local', d)).blockJob?.jobId, job.id, 'the disk names its job now');

    // A second look adopts nothing more: the disk is the adopted job's.
    const again = await reconciler.reconcileHost('local');
    assert.deepEqual(
      again.adopted.filter((a) => a.domain === d.name),
      [],
      JSON.stringify(again),
    );
    // The processor follows it: it stays ready, waiting for a pivot. Adopted ready, every
    // look it makes is one in ready; a pivot not asked for would be made in the first.
    const looked = await waitFor(async () => {
      const j = await g.job(job.id);
      return looks(job.id) >= 2 || j.state !== 'ready' ? j : null;
    }, `two looks of the processor at job ${job.id}`);
    assert.equal(looked.state, 'ready', 'it stays ready');
    assert.ok(await libvirtHasJob(client, d), 'nothing was pivoted unasked');

    const pivot = await g.http.post(`/v1/jobs/${job.id}/pivot`);
    assert.equal(pivot.status, 202, JSON.stringify(pivot.body));
    const done = await g.ended(job.id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(done.adopted, true);
    assert.equal(done.result?.outcome, 'applied');
    assert.equal(done.result?.pivoted, true);
    assert.equal(done.result?.reattached, true);
    assert.deepEqual(done.result?.chainBefore, [top, s2, s1, base]);
    await d.assertChain([copy], 'after the pivot of the adopted copy');
    assert.deepEqual(
      done.result?.disk.chain.map((m) => m.path),
      [copy],
    );
    assert.ok(!(await libvirtHasJob(client, d)));
    assert.equal((await g.disk('local', d)).blockJob, null);
    assert.equal(await d.persistentTop(), copy, 'the persistent definition follows the pivot');
    await d.assertPatterns(copy);
  });

  it('a virsh active blockcommit is adopted as an active commit and pivoted through the API', async () => {
    const d = await domain('commit');
    const { base, s1, s2, top } = d.paths;
    await virsh('blockcommit', d.name, 'vda', '--active', '--wait');
    const seen = await g.disk('local', d);
    assert.equal(seen.blockJob?.type, 'active-commit', JSON.stringify(seen));
    assert.equal(seen.blockJob.ready, true);
    assert.equal(seen.blockJob.jobId, null);

    const adoption = adoptionOf(await reconciler.reconcileHost('local'), d);
    const job = await g.job(adoption.jobId);
    assert.equal(job.adopted, true);
    assert.equal(job.type, 'block.commit');
    assert.equal(job.resolved.active, true);
    assert.equal((job.resolved.base as { path: string }).path, base);
    assert.equal(job.state, 'ready', JSON.stringify(job));

    assert.equal((await g.http.post(`/v1/jobs/${job.id}/pivot`)).status, 202);
    const done = await g.ended(job.id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(done.result?.pivoted, true);
    assert.deepEqual(done.result?.chainBefore, [top, s2, s1, base]);
    await d.assertChain([base], 'after the pivot of the adopted active commit');
    assert.ok(!(await libvirtHasJob(client, d)));
    await d.assertPatterns(base);
  });

  it('an adopted copy is canceled through the API: libvirt aborts it, the chain stays', async () => {
    const d = await domain('cancel');
    const { base, s1, s2, top } = d.paths;
    const copy = path.join(d.dir, 'copy.qcow2');
    await virsh('blockcopy', d.name, 'vda', copy, '--wait', '--transient-job');
    const adoption = adoptionOf(await reconciler.reconcileHost('local'), d);
    await g.until(adoption.jobId, (j) => j.state === 'ready', 'ready');

    const cancel = await g.http.del(`/v1/jobs/${adoption.jobId}`);
    assert.ok([200, 202].includes(cancel.status), JSON.stringify(cancel.body));
    const done = await g.ended(adoption.jobId);
    assert.equal(done.state, 'canceled', JSON.stringify(done));
    assert.equal(done.result?.outcome, 'unchanged');
    assert.ok(!(await libvirtHasJob(client, d)), 'libvirt aborted the copy');
    await d.assertChain([top, s2, s1, base], 'after the cancel of the adopted copy');
    await d.assertPatterns(top);
  });

  it('a virsh commit below the top is adopted and ends by itself, recognised from the chain', async () => {
    const d = await domain('below', { s2: 4 });
    const { base, s1, s2, top } = d.paths;
    const idx = Object.fromEntries((await d.liveChain()).map((m) => [m.path, m.index]));
    // 1 MiB/s over 5 MiB of s2: a few seconds, time enough to be adopted while it runs.
    await virsh(
      'blockcommit',
      d.name,
      'vda',
      '--top',
      `vda[${idx[s2]}]`,
      '--base',
      `vda[${idx[s1]}]`,
      '--bandwidth',
      '1',
    );
    const seen = await g.disk('local', d);
    assert.equal(seen.blockJob?.type, 'commit', JSON.stringify(seen));
    assert.equal(seen.blockJob.ready, false);
    assert.equal(seen.mirror, null, 'a commit below the top has no mirror in the XML');

    const adoption = adoptionOf(await reconciler.reconcileHost('local'), d);
    const job = await g.job(adoption.jobId);
    assert.equal(job.type, 'block.commit');
    assert.equal(job.resolved.active, false);
    assert.equal(job.state, 'running');
    const pivot = await g.http.post(`/v1/jobs/${job.id}/pivot`);
    assert.equal(pivot.status, 409, 'a commit below the top has no pivot');
    const done = await g.ended(job.id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(done.result?.outcome, 'applied');
    assert.equal(done.result?.pivoted, null);
    await d.assertChain([top, s1, base], 'after the adopted commit of s2 into s1');
    await d.assertPatterns(top);
  });

  it("a host whose link comes back has its block jobs adopted (under that host's name)", async () => {
    const forwarder = new Forwarder();
    await forwarder.open();
    const d = await domain('reconnect');
    const { base, s1, s2, top } = d.paths;
    try {
      const host = { name: `flaky-${run}`, uri: `qemu+tcp://127.0.0.1:${forwarder.port}/system` };
      assert.equal((await g.http.post('/v1/hosts', host)).status, 201);
      // Followed once (its link announced up), then lost.
      await g.disk(host.name, d);
      const linkKey = `${prefix}events:host-link:${host.name}`;
      const redis = new Redis(REDIS_URL);
      try {
        const waitLink = (want: string) =>
          waitFor(
            async () => (await redis.get(linkKey)) === want,
            `the host's link announced ${want}`,
          );
        await waitLink('up');
        await forwarder.cut();
        await waitLink('down');
        // While the host is away, a copy is started outside the gateway.
        const copy = path.join(d.dir, 'copy.qcow2');
        await virsh('blockcopy', d.name, 'vda', copy, '--wait', '--transient-job');
        await forwarder.open();
        await waitLink('up');
        const adopted = await waitFor(
          async () => (await g.jobsOf(d)).find((j) => j.adopted && j.host === host.name),
          'a job adopted after the reconnect',
          30_000,
        );
        assert.equal(adopted.type, 'block.copy');
        await g.until(adopted.id, (j) => j.state === 'ready', 'ready');
        assert.equal((await g.disk(host.name, d)).blockJob?.jobId, adopted.id);
        assert.equal((await g.http.del(`/v1/jobs/${adopted.id}`)).status, 202);
        assert.equal((await g.ended(adopted.id)).state, 'canceled');
        await d.assertChain([top, s2, s1, base], 'after the cancel');
      } finally {
        await redis.quit();
      }
    } finally {
      await forwarder.cut();
    }
  });
});

/** The worker role alone, in a process of its own. */
class WorkerProcess {
  private out = '';
  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk) => (this.out += String(chunk)));
  }

  static start(prefix: string, env: Record<string, string> = {}): WorkerProcess {
    const child = spawn(process.execPath, ['dist/src/main.js'], {
      env: {
        ...process.env,
        ROLE: 'worker',
        REDIS_URL,
        VIRTGATE_REDIS_PREFIX: prefix,
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return new WorkerProcess(child);
  }

  lines(text: string): string[] {
    return this.out.split('\n').filter((l) => l.includes(text));
  }

  /** Waits until it logged `text`; one that exits first fails at once. */
  async until(text: string, ms = 30_000): Promise<void> {
    const exited = () => this.child.exitCode !== null || this.child.signalCode !== null;
    try {
      await waitFor(
        () => this.lines(text).length > 0 || exited(),
        `the worker to log '${text}'`,
        ms,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${this.out}`, { cause: err });
    }
    assert.ok(this.lines(text).length > 0, `the worker exited: ${this.out}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await once(this.child, 'exit');
  }
}

describe('two workers booting at once with a block job to adopt', () => {
  const prefix = uniquePrefix(import.meta.url);
  let t: TestApp;
  let client: LibvirtClient;
  const run = randomUUID().slice(0, 6);
  const workers: WorkerProcess[] = [];
  let d: TcgChainDomain | null = null;
  const g = gateway(() => t);

  before(async () => {
    client = await LibvirtClient.connect('qemu:///system');
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }));
  });

  after(async () => {
    for (const w of workers) await w.stop();
    await closeAllApps();
    await d?.remove();
    await client.close();
    await deleteKeys(prefix);
  });

  it('adopt it once, and the adopted job is pivoted through the API', async () => {
    d = await TcgChainDomain.create(client, `vg-bja-${run}-twice`);
    const copy = path.join(d.dir, 'copy.qcow2');
    await virsh('blockcopy', d.name, 'vda', copy, '--wait', '--transient-job');
    assert.equal((await g.disk('local', d)).blockJob?.jobId, null);

    workers.push(WorkerProcess.start(prefix), WorkerProcess.start(prefix));
    for (const w of workers) await w.until("host 'local': block jobs reconciled");
    const adoptions = workers.flatMap((w) => w.lines(`on ${d!.name}/vda as job`));
    assert.equal(adoptions.length, 1, adoptions.join('\n'));
    const jobs = (await g.jobsOf(d)).filter((j) => j.adopted);
    assert.equal(jobs.length, 1, JSON.stringify(jobs));
    const job = jobs[0]!;
    assert.ok(adoptions[0]!.includes(job.id));
    assert.equal(job.type, 'block.copy');
    assert.equal(job.state, 'ready');
    assert.equal((await g.disk('local', d)).blockJob?.jobId, job.id);

    assert.equal((await g.http.post(`/v1/jobs/${job.id}/pivot`)).status, 202);
    const done = await g.ended(job.id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    await d.assertChain([copy], 'after the pivot');
    await d.assertPatterns(copy);
  });
});

describe('block jobs whose queue entries were lost while no worker ran', () => {
  const prefix = uniquePrefix(import.meta.url);
  let t: TestApp;
  let client: LibvirtClient;
  let queue: Queue;
  const run = randomUUID().slice(0, 6);
  const workers: WorkerProcess[] = [];
  const domains: TcgChainDomain[] = [];
  const g = gateway(() => t);

  before(async () => {
    client = await LibvirtClient.connect('qemu:///system');
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }));
    queue = new Queue('block-jobs', { connection: { url: REDIS_URL }, prefix: `${prefix}bull` });
  });

  after(async () => {
    for (const w of workers) await w.stop();
    await queue.close();
    await closeAllApps();
    for (const d of domains) await d.remove();
    await client.close();
    await deleteKeys(prefix);
  });

  it('are queued again while libvirt runs them, and finished from the live chain once it does not', async () => {
    const first = WorkerProcess.start(prefix, { JOB_LOCK_MS: '1000' });
    workers.push(first);
    await first.until('processing queues');
    const running = await TcgChainDomain.create(client, `vg-bja-${run}-lost1`);
    const pivoted = await TcgChainDomain.create(client, `vg-bja-${run}-lost2`);
    domains.push(running, pivoted);
    const ids: string[] = [];
    for (const d of [running, pivoted]) {
      const res = await g.http.post(`/v1/hosts/local/domains/${d.name}/disks/vda/block-jobs`, {
        type: 'commit',
        base: d.paths.s2,
        pivot: false,
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      ids.push((res.body as Job).id);
    }
    for (const id of ids) await g.until(id, (j) => j.state === 'ready', 'ready');
    const [runningId, pivotedId] = ids as [string, string];

    // The worker dies, and Redis loses the queue entries (the records stay).
    const redis = new Redis(REDIS_URL);
    const locks = ids.map((id) => `${queue.toKey(id)}:lock`);
    try {
      assert.equal(await redis.exists(...locks), ids.length, 'the worker holds both jobs');
      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      // Its job locks lapse (JOB_LOCK_MS): BullMQ removes no entry a worker holds.
      await waitFor(
        async () => (await redis.exists(...locks)) === 0,
        "the dead worker's job locks to lapse",
      );
    } finally {
      await redis.quit();
    }
    for (const id of ids) {
      const entry = await queue.getJob(id);
      assert.ok(entry, `job ${id} had a queue entry`);
      await entry.remove();
      assert.equal(await queue.getJob(id), undefined);
    }
    // Meanwhile one of the two commits is pivoted outside the gateway.
    await virsh('blockjob', pivoted.name, 'vda', '--pivot');
    assert.ok(!(await libvirtHasJob(client, pivoted)));
    assert.ok(await libvirtHasJob(client, running));

    const next = WorkerProcess.start(prefix, { JOB_LOCK_MS: '1000' });
    workers.push(next);
    await next.until("host 'local': block jobs reconciled");
    // (Of this test's domains: other test files' block jobs run on the same libvirtd.)
    const ours = (line: string) =>
      line.includes(`on ${running.name}/`) || line.includes(`on ${pivoted.name}/`);
    assert.equal(
      next.lines('adopted libvirt').filter(ours).length,
      0,
      'the records are the jobs: nothing adopted',
    );

    // Still run by libvirt: queued again; the worker re-attaches and it waits for its pivot.
    // (Once the dead worker's held mark lapsed: the host is looked at again then.)
    await next.until(`job ${runningId}: its queue entry was lost`);
    assert.equal(next.lines(`job ${runningId}: its queue entry was lost`).length, 1);
    await g.until(runningId, (j) => j.state === 'ready' && j.adopted === false, 'ready');
    assert.equal((await g.http.post(`/v1/jobs/${runningId}/pivot`)).status, 202);
    const done = await g.ended(runningId);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(done.result?.pivoted, true);
    const { base, s1, s2 } = running.paths;
    await running.assertChain([s2, s1, base], 'after the re-queued commit');
    await running.assertPatterns(s2);

    // Gone from libvirt: finished from the chain it left, never run again.
    const finished = await g.ended(pivotedId);
    assert.equal(finished.state, 'completed', JSON.stringify(finished.error));
    assert.equal(finished.result?.outcome, 'applied');
    assert.equal(finished.result?.pivoted, true);
    assert.equal(finished.result?.completionSeenIn, 'chain');
    assert.equal(next.lines(`job ${pivotedId}: re-attaching`).length, 0, 'not run again');
    assert.equal(await queue.getJob(pivotedId), undefined, 'not queued again');
    await pivoted.assertChain(
      [pivoted.paths.s2, pivoted.paths.s1, pivoted.paths.base],
      'after the commit pivoted outside the gateway',
    );
  });
});
