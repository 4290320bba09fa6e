/**
 * Block jobs through REST on real TCG domains, each on a 4-image qcow2 chain
 * (base <- s1 <- s2 <- top) whose layers carry data patterns: after every job
 * the chain is checked against libvirt's live XML and qemu-img, and every
 * pattern is read back through the resulting top image.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { Redis } from 'ioredis';
import { JobSignals } from '#jobs/job-signals.js';
import { LibvirtClient } from '#src/libvirt/index.js';
import { buildXml } from '#src/xml/xml.js';
import { tcgDomainXml } from '../support/domain-xml.js';
import { backingChain, makeImageDir, qemuImg } from '../support/qemu-images.js';
import { TcgChainDomain } from '../support/tcg-chain.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  REDIS_URL,
  scanKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'block-jobs-test-admin-token-0123';
const MiB = 1024 * 1024;
const TERMINAL = ['completed', 'failed', 'canceled'];

interface ChainImage {
  depth: number;
  index: number | null;
  ref: string | null;
  path: string | null;
}
interface Job {
  id: string;
  type: string;
  state: string;
  disk: string;
  progress: { cur: number; end: number; percent: number } | null;
  result: {
    outcome: string;
    libvirtStatus: string | null;
    completionSeenIn: string | null;
    pivoted: boolean | null;
    reattached: boolean;
    chainBefore: string[];
    disk: { target: string; chain: ChainImage[]; persistentChainDiffers: boolean };
    persistentChainDiffers: boolean | null;
  } | null;
  error: { code: string; message: string } | null;
  cancelRequested: boolean;
  resolved: Record<string, unknown>;
}

describe('block jobs', () => {
  let t: TestApp;
  let client: LibvirtClient;
  const run = randomUUID().slice(0, 6);
  const domains: TcgChainDomain[] = [];
  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object = {}, headers: Record<string, string> = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).set(headers).send(body),
    del: (url: string, headers: Record<string, string> = {}) =>
      request(t.server).delete(url).set('authorization', `Bearer ${ADMIN}`).set(headers),
  };
  const blockJob = (
    d: TcgChainDomain,
    body: object,
    headers: Record<string, string> = {},
    disk = 'vda',
  ) => http.post(`/v1/hosts/local/domains/${d.name}/disks/${disk}/block-jobs`, body, headers);

  async function domain(label: string, extraMiB?: Partial<Record<string, number>>) {
    const d = await TcgChainDomain.create(client, `vg-bj-${run}-${label}`, { extraMiB });
    domains.push(d);
    return d;
  }

  async function getJob(id: string): Promise<Job> {
    return (await http.get(`/v1/jobs/${id}`)).body as Job;
  }

  /** Waits until the job is in one of `states`; one that ends otherwise fails at once. */
  async function until(id: string, states: string[], ms = 30_000): Promise<Job> {
    const job = await waitFor(
      async () => {
        const j = await getJob(id);
        return states.includes(j.state) || TERMINAL.includes(j.state) ? j : null;
      },
      `job ${id} to be ${states.join('|')}`,
      ms,
    );
    assert.ok(
      states.includes(job.state),
      `job ${id} ended ${job.state} while waiting for ${states.join('|')}: ${JSON.stringify(job.error)}`,
    );
    return job;
  }

  /** Waits until libvirt's progress of the job shows in its record. */
  async function progressOf(id: string, what: (p: NonNullable<Job['progress']>) => boolean) {
    const job = await waitFor(async () => {
      const j = await getJob(id);
      return (j.progress && what(j.progress)) || TERMINAL.includes(j.state) ? j : null;
    }, `progress of job ${id} from libvirt`);
    assert.ok(job.progress && !TERMINAL.includes(job.state), `job ${id}: ${JSON.stringify(job)}`);
    return job.progress;
  }

  /**
   * How many times the processor (in this process: ROLE=all) has finished a
   * look at job `id`: each look ends waiting for the next one, through
   * JobSignals.next. Counted by wrapping the app's own JobSignals; a look
   * counted after a state was seen is a look that saw it.
   */
  let looks: (id: string) => number;

  /** The job's result chain equals the live chain (paths and indexes) and GET …/disks/vda. */
  async function assertResultChain(d: TcgChainDomain, job: Job, expected: string[]) {
    const live = await d.assertChain(expected, `after job ${job.type}`);
    assert.ok(job.result, `job ${job.id} has a result`);
    assert.deepEqual(
      job.result.disk.chain.map((m) => [m.path, m.index, m.ref]),
      live.map((m) => [m.path, m.index, `vda[${m.index}]`]),
      "the job's result is the chain libvirt reports, with its current indexes",
    );
    const disk = (await http.get(`/v1/hosts/local/domains/${d.name}/disks/vda`)).body as {
      chain: ChainImage[];
    };
    assert.deepEqual(
      disk.chain.map((m) => [m.path, m.index]),
      live.map((m) => [m.path, m.index]),
    );
    assert.equal(job.result.persistentChainDiffers, false, 'the persistent definition follows');
    assert.equal(await d.persistentTop(), expected[0], "the persistent definition's top");
  }

  /** Runs `body` with a started dir pool over `dir` (then stops and undefines it; its files stay). */
  async function withDirPool(name: string, dir: string, body: () => Promise<void>) {
    const { pool } = await client.rpc.storagePoolDefineXml({
      xml: buildXml({
        name: 'pool',
        attrs: { type: 'dir' },
        children: [
          { name: 'name', text: name },
          { name: 'target', children: [{ name: 'path', text: dir }] },
        ],
      }),
      flags: 0,
    });
    try {
      await client.rpc.storagePoolCreate({ pool, flags: 0 });
      await body();
    } finally {
      await client.rpc.storagePoolDestroy({ pool }).catch(() => undefined);
      await client.rpc.storagePoolUndefine({ pool });
    }
  }

  before(async () => {
    client = await LibvirtClient.connect('qemu:///system');
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
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

  it('the seed scenario: an active commit with pivot, then a commit by the new vda[N] indexes', async () => {
    const d = await domain('seed');
    const { base, s1, s2, top } = d.paths;
    const before = await d.assertChain([top, s2, s1, base], 'the fresh chain');
    const index = Object.fromEntries(before.map((m) => [m.path, m.index]));

    const res = await blockJob(
      d,
      { type: 'commit', base: `vda[${index[s2]}]` },
      { prefer: 'wait=30' },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const job = res.body as Job;
    assert.equal(job.type, 'block.commit');
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    assert.equal(job.disk, 'vda');
    assert.equal(job.resolved.active, true);
    assert.equal(job.result?.pivoted, true);
    assert.equal(job.result?.completionSeenIn, 'event+chain');
    assert.equal(job.result?.libvirtStatus, 'completed');
    assert.deepEqual(job.result?.chainBefore, [top, s2, s1, base]);
    assert.deepEqual(job.progress && job.progress.percent, 100);
    await assertResultChain(d, job, [s2, s1, base]);
    const after1 = await d.liveChain();
    // libvirt 9 keeps each image's index: the new top is still the image that was vda[index[s2]].
    assert.deepEqual(
      after1.map((m) => m.index),
      [index[s2], index[s1], index[base]],
    );
    await d.assertPatterns(s2);
    assert.ok(await d.holds(s2, 'top'), "top's data now lives in s2");

    // The index the top had names nothing any more: refused, not resolved to something else.
    const stale = await blockJob(d, { type: 'commit', top: `vda[${index[top]}]` });
    assert.equal(stale.status, 409, JSON.stringify(stale.body));
    assert.equal(stale.body.code, 'INVALID_STATE');
    assert.equal(stale.body.errors[0].field, 'top');

    // Named by the indexes of the chain libvirt reports now: s1 is merged into base, s2 stays.
    const byIndex = await blockJob(
      d,
      { type: 'commit', top: `vda[${after1[1]!.index}]`, base: `vda[${after1[2]!.index}]` },
      { prefer: 'wait=30' },
    );
    assert.equal(byIndex.status, 200, JSON.stringify(byIndex.body));
    const job2 = byIndex.body as Job;
    assert.equal(job2.state, 'completed', JSON.stringify(job2.error));
    assert.equal(job2.resolved.active, false);
    assert.equal(job2.result?.pivoted, null, 'a commit below the top has no pivot');
    assert.deepEqual((job2.resolved.top as { path: string }).path, s1);
    assert.deepEqual((job2.resolved.base as { path: string }).path, base);
    await assertResultChain(d, job2, [s2, base]);
    await d.assertPatterns(s2);
    assert.ok(await d.holds(base, 's1'), "s1's data was merged into base");
    assert.ok(!(await d.holds(base, 's2')), "s2's data was not: s2 was not part of the commit");
    assert.ok(!(await d.holds(base, 'top')), "nor top's, which lives in s2");
  });

  it('pivot: false waits in ready until POST /v1/jobs/{id}/pivot', async () => {
    const d = await domain('pivot');
    const { base, s1, s2, top } = d.paths;
    const res = await blockJob(d, { type: 'commit', pivot: false });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
    const ready = await until(res.body.id, ['ready']);
    assert.equal(ready.progress?.percent, 100);
    // The look that set ready decides on a pivot before it ends; two more ended looks are
    // looks made in ready: a pivot not asked for would have been made by then.
    const seen = looks(res.body.id);
    const after = await waitFor(async () => {
      const j = await getJob(res.body.id);
      return looks(res.body.id) >= seen + 2 || j.state !== 'ready' ? j : null;
    }, 'two looks at the ready job');
    assert.equal(after.state, 'ready', 'it stays ready');
    await d.assertChain([top, s2, s1, base], 'a ready active commit has not pivoted yet');

    const pivot = await http.post(`/v1/jobs/${res.body.id}/pivot`, {}, { prefer: 'wait=30' });
    assert.equal(pivot.status, 200, JSON.stringify(pivot.body));
    const job = pivot.body as Job;
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    assert.equal(job.result?.pivoted, true);
    await assertResultChain(d, job, [base]);
    await d.assertPatterns(base);
    const again = await http.post(`/v1/jobs/${res.body.id}/pivot`);
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'INVALID_STATE');
  });

  it('pivot: false then a cancel keeps the original image (copy)', async () => {
    const d = await domain('keep');
    const { base, s1, s2, top } = d.paths;
    const destination = path.join(d.dir, 'copy.qcow2');
    const res = await blockJob(d, { type: 'copy', destination, pivot: false });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await until(res.body.id, ['ready']);
    const canceled = await http.del(`/v1/jobs/${res.body.id}`, { prefer: 'wait=30' });
    assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
    const job = canceled.body as Job;
    assert.equal(job.state, 'canceled');
    assert.equal(job.cancelRequested, true);
    assert.equal(job.result?.outcome, 'unchanged');
    assert.equal(job.result?.pivoted, false);
    await assertResultChain(d, job, [top, s2, s1, base]);
    await d.assertPatterns(top);
    const noPivot = await http.post(`/v1/jobs/${res.body.id}/pivot`);
    assert.equal(noPivot.status, 409);
  });

  it('refuses a pivot before ready (409 NOT_READY) and a second job on the disk, and cancels mid-commit', async () => {
    const d = await domain('slow', { top: 4, s2: 4 });
    const { base, s1, s2, top } = d.paths;
    const res = await blockJob(d, { type: 'commit', bandwidth: 1 * MiB });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.id as string;
    const running = await until(id, ['running']);
    assert.equal(running.state, 'running');
    const progress = await progressOf(id, () => true);
    assert.ok(progress.end > 0, `progress from libvirt: ${JSON.stringify(progress)}`);
    assert.ok(progress.cur < progress.end, 'not ready: libvirt keeps cur below end');

    const early = await http.post(`/v1/jobs/${id}/pivot`);
    assert.equal(early.status, 409, JSON.stringify(early.body));
    assert.match(early.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.equal(early.body.code, 'NOT_READY');
    assert.equal((await http.get(`/v1/jobs/${id}`)).body.state, 'running', 'the job goes on');

    const second = await blockJob(d, { type: 'pull' });
    assert.equal(second.status, 409, JSON.stringify(second.body));
    assert.equal(second.body.code, 'CONFLICT');

    const cancel = await http.del(`/v1/jobs/${id}`);
    assert.ok([200, 202].includes(cancel.status), JSON.stringify(cancel.body));
    assert.equal(cancel.body.cancelRequested, true);
    const job = (await until(id, ['canceled'])) as Job;
    assert.equal(job.result?.outcome, 'unchanged');
    await assertResultChain(d, job, [top, s2, s1, base]);
    await d.assertPatterns(top);

    // A commit below the top, slowed, canceled half-way: the chain stays as it was.
    const below = await blockJob(d, {
      type: 'commit',
      top: d.paths.s2,
      base: d.paths.base,
      bandwidth: 1 * MiB,
    });
    assert.equal(below.status, 202, JSON.stringify(below.body));
    await until(below.body.id, ['running']);
    // Half-way: libvirt has copied some of it, not all.
    const partway = await progressOf(below.body.id, (p) => p.cur > 0);
    assert.ok(partway.cur < partway.end, `not done yet: ${JSON.stringify(partway)}`);
    const stop = await http.del(`/v1/jobs/${below.body.id}`, { prefer: 'wait=20' });
    assert.equal(stop.status, 200, JSON.stringify(stop.body));
    assert.equal(stop.body.state, 'canceled', JSON.stringify(stop.body.error));
    await assertResultChain(d, stop.body as Job, [top, s2, s1, base]);
    await d.assertPatterns(top);
    // Canceled jobs released the disk: a new job is accepted.
    const next = await blockJob(
      d,
      { type: 'pull', base: `vda[${(await d.liveChain())[2]!.index}]` },
      { prefer: 'wait=30' },
    );
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(next.body.state, 'completed', JSON.stringify(next.body.error));
  });

  it('refuses a job on a disk where libvirt already runs one, and bad references, with 4xx', async () => {
    const d = await domain('refs');
    const { base, s1, s2, top } = d.paths;
    const chain = await d.liveChain();
    const idx = Object.fromEntries(chain.map((m) => [m.path, m.index]));
    const cases: [object, number, string, string[]?][] = [
      [{ type: 'commit', top: 'vda[99]' }, 409, 'INVALID_STATE', ['top']],
      [{ type: 'commit', base: '/nowhere/base.qcow2' }, 409, 'INVALID_STATE', ['base']],
      [{ type: 'commit', top: 'sda[1]' }, 400, 'INVALID_ARGUMENT', ['top']],
      [{ type: 'commit', top: 'top.qcow2' }, 400, 'INVALID_ARGUMENT', ['top']],
      [
        { type: 'commit', top: `vda[${idx[s1]}]`, base: `vda[${idx[s2]}]` },
        400,
        'INVALID_ARGUMENT',
        ['top', 'base'],
      ],
      [{ type: 'commit', top: s1, base: s1 }, 400, 'INVALID_ARGUMENT', ['top', 'base']],
      [
        { type: 'commit', top: `vda[${idx[s2]}]`, pivot: false },
        400,
        'INVALID_ARGUMENT',
        ['pivot'],
      ],
      [{ type: 'commit', top: s2, base: base, shallow: true }, 400, 'INVALID_ARGUMENT', ['base']],
      [{ type: 'commit', top: base }, 409, 'INVALID_STATE', ['top']],
      [{ type: 'commit', bandwidth: -1 }, 400, 'INVALID_ARGUMENT', ['bandwidth']],
      [{ type: 'commit', destination: '/x.qcow2' }, 400, 'INVALID_ARGUMENT', ['destination']],
      [{ type: 'pull', base: `vda[${idx[top]}]` }, 400, 'INVALID_ARGUMENT', ['base']],
      [{ type: 'pull', base: s2 }, 400, 'INVALID_ARGUMENT', ['base']],
      [{ type: 'pull', top: s2 }, 400, 'INVALID_ARGUMENT', ['top']],
      [{ type: 'copy' }, 400, 'INVALID_ARGUMENT', ['destination']],
      [
        { type: 'copy', destination: 'relative/dir/copy.qcow2' },
        400,
        'INVALID_ARGUMENT',
        ['destination'],
      ],
      [{ type: 'copy', destination: s1, reuseExisting: true }, 409, 'CONFLICT', ['destination']],
      [
        { type: 'copy', destination: '/tmp/x.img', shallow: true, format: 'raw' },
        400,
        'INVALID_ARGUMENT',
        ['format'],
      ],
      [{ type: 'explode' }, 400, 'INVALID_ARGUMENT', ['type']],
      [{}, 400, 'INVALID_ARGUMENT', ['type']],
    ];
    for (const [body, status, code, fields] of cases) {
      const res = await blockJob(d, body);
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, code, JSON.stringify(body));
      if (fields) {
        assert.deepEqual(
          (res.body.errors as { field: string }[]).map((e) => e.field).sort(),
          [...fields].sort(),
          `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`,
        );
      }
    }
    assert.equal((await blockJob(d, { type: 'pull' }, {}, 'vdz')).status, 404);
    assert.equal(
      (
        await http.post(`/v1/hosts/local/domains/no-such-${run}/disks/vda/block-jobs`, {
          type: 'pull',
        })
      ).status,
      404,
    );
    await d.assertChain([top, s2, s1, base], 'refused requests changed nothing');

    // libvirt runs a job the gateway did not start: a block job on that disk is refused at once.
    await client.rpc.domainBlockPull({ dom: d.dom, path: 'vda', bandwidth: 1n, flags: 0 });
    try {
      const busy = await blockJob(d, { type: 'commit' });
      assert.equal(busy.status, 409, JSON.stringify(busy.body));
      assert.equal(busy.body.code, 'CONFLICT');
      assert.match(busy.body.detail, /already has a block job in libvirt/);
    } finally {
      await client.rpc.domainBlockJobAbort({ dom: d.dom, path: 'vda', flags: 0 });
    }
    const jobs = (await http.get(`/v1/jobs?domain=${d.name}`)).body.items as Job[];
    assert.equal(jobs.length, 0, 'no refused request left a job behind');

    // A stopped domain has no block jobs.
    await client.rpc.domainDestroyFlags({ dom: d.dom, flags: 0 });
    const stopped = await blockJob(d, { type: 'pull' });
    assert.equal(stopped.status, 409);
    assert.equal(stopped.body.code, 'INVALID_STATE');
    assert.match(stopped.body.detail, /not running/);
  });

  it('copies with pivot on a persistent domain (TRANSIENT_JOB), shallow then full', async () => {
    const d = await domain('copy');
    const { base, s1, s2 } = d.paths;
    const shallow = path.join(d.dir, 'shallow.qcow2');
    const res = await blockJob(
      d,
      { type: 'copy', destination: shallow, shallow: true },
      { prefer: 'wait=30' },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const job = res.body as Job;
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    assert.equal(job.type, 'block.copy');
    assert.equal(job.result?.pivoted, true);
    const live = await d.liveChain();
    await assertResultChain(d, job, [shallow, s2, s1, base]);
    assert.ok(
      !(job.result?.chainBefore ?? []).includes(shallow) && live[0]!.index !== null,
      'the copy is a new member with an index of its own',
    );
    await d.assertPatterns(shallow);

    const full = path.join(d.dir, 'full.qcow2');
    const res2 = await blockJob(
      d,
      { type: 'copy', destination: full, format: 'qcow2' },
      { prefer: 'wait=30' },
    );
    assert.equal(res2.body.state, 'completed', JSON.stringify(res2.body));
    await assertResultChain(d, res2.body as Job, [full]);
    assert.equal((await backingChain(full)).length, 1, 'a full copy has no backing file');
    await d.assertPatterns(full);

    // Into a storage volume that exists already, named pool/volume.
    const poolName = `vg-bj-${run}-pool`;
    const vol = path.join(d.dir, 'vol.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', vol, '16M');
    await withDirPool(poolName, d.dir, async () => {
      const refused = await blockJob(d, { type: 'copy', destination: `${poolName}/vol.qcow2` });
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.errors[0].field, 'destination');
      const res3 = await blockJob(
        d,
        { type: 'copy', destination: `${poolName}/vol.qcow2`, reuseExisting: true },
        { prefer: 'wait=30' },
      );
      assert.equal(res3.body.state, 'completed', JSON.stringify(res3.body));
      assert.equal(res3.body.resolved.destination, vol);
      await assertResultChain(d, res3.body as Job, [vol]);
      await d.assertPatterns(vol);
    });
  });

  it("refuses to copy over another domain's image, or a volume's backing image, even with reuseExisting", async () => {
    const d = await domain('over');
    const other = await domain('other');
    const copyOnto = (destination: string) =>
      blockJob(d, { type: 'copy', destination, reuseExisting: true });
    const refused = async (destination: string, what: RegExp) => {
      const res = await copyOnto(destination);
      assert.equal(res.status, 409, `${destination}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'CONFLICT');
      assert.equal(res.body.errors[0].field, 'destination');
      assert.match(res.body.detail, what);
    };
    // A backing image of a running domain's chain, and the top image a shut-off one is defined with.
    await refused(other.paths.s1, new RegExp(`disk 'vda' of domain '${other.name}'`));
    await client.rpc.domainDestroyFlags({ dom: other.dom, flags: 0 });
    await refused(other.paths.top, new RegExp(`domain '${other.name}'`));

    // The backing image of a pool volume no domain uses.
    const poolName = `vg-bj-${run}-opool`;
    const backing = path.join(d.dir, 'backing.qcow2');
    const overlay = path.join(d.dir, 'overlay.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', backing, '16M');
    await qemuImg('create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'qcow2', overlay);
    await withDirPool(poolName, d.dir, async () => {
      await refused(backing, /the backing image of volume 'overlay.qcow2'/);
    });
    await d.assertChain([d.paths.top, d.paths.s2, d.paths.s1, d.paths.base], 'nothing started');
    assert.deepEqual(
      (await backingChain(other.paths.top)).map((i) => i.filename),
      [other.paths.top, other.paths.s2, other.paths.s1, other.paths.base],
      "the other domain's chain is whole",
    );
  });

  it('refuses a commit into an image another domain or volume reads, or deleting one a domain names', async () => {
    const d = await domain('shared');
    const { base, s1, s2, top } = d.paths;
    const refused = async (body: object, field: string, what: RegExp) => {
      const res = await blockJob(d, { type: 'commit', ...body });
      assert.equal(res.status, 409, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'CONFLICT');
      assert.deepEqual(
        (res.body.errors as { field: string }[]).map((e) => e.field),
        [field],
      );
      assert.match(res.body.detail, what);
    };
    // Another (shut-off) domain is defined on s1, the image in the middle of d's chain.
    const otherName = `vg-bj-${run}-on-s1`;
    const { dom: other } = await client.rpc.domainDefineXmlFlags({
      xml: tcgDomainXml(otherName, s1),
      flags: 0,
    });
    try {
      await refused({ top: s2, base: s1 }, 'base', new RegExp(`domain '${otherName}'`));
      await refused(
        { top: s1, base, deleteCommittedImages: true },
        'deleteCommittedImages',
        new RegExp(`${s1} is also an image of disk 'vda' of domain '${otherName}'`),
      );
    } finally {
      await client.rpc.domainUndefineFlags({ dom: other, flags: 0 });
    }

    // A volume outside the chain is backed by base; the chain's own images are volumes too.
    const outside = path.join(d.dir, 'outside.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', outside);
    await withDirPool(`vg-bj-${run}-spool`, d.dir, async () => {
      await refused({ top: s1, base }, 'base', /backing image of volume 'outside.qcow2'/);
      // Into s2, which only the chain's own top reads: allowed.
      const res = await blockJob(d, { type: 'commit', base: s2 }, { prefer: 'wait=30' });
      assert.equal(res.body.state, 'completed', JSON.stringify(res.body));
      await assertResultChain(d, res.body as Job, [s2, s1, base]);
      await d.assertPatterns(s2);
    });
    assert.ok(existsSync(top), 'nothing deleted');
    assert.ok(existsSync(s1));
  });

  it('refuses to delete the volume a copy writes to while the copy runs', async () => {
    const d = await domain('mirror');
    const poolName = `vg-bj-${run}-mpool`;
    const vol = path.join(d.dir, 'dest.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', vol, '16M');
    await withDirPool(poolName, d.dir, async () => {
      const res = await blockJob(d, {
        type: 'copy',
        destination: `${poolName}/dest.qcow2`,
        reuseExisting: true,
        pivot: false,
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      await until(res.body.id, ['ready']);
      const diskUrl = `/v1/hosts/local/domains/${d.name}/disks/vda`;
      assert.deepEqual(
        (await http.get(diskUrl)).body.mirror,
        { path: vol, format: 'qcow2', job: 'copy', ready: true },
        'the disk shows what the copy writes to',
      );
      const volumeUrl = `/v1/hosts/local/pools/${poolName}/volumes/dest.qcow2`;
      const busy = await http.del(volumeUrl);
      assert.equal(busy.status, 409, JSON.stringify(busy.body));
      assert.match(busy.body.detail, new RegExp(`in use by domain '${d.name}' \\(disk vda\\)`));
      assert.ok(existsSync(vol));

      const canceled = await http.del(`/v1/jobs/${res.body.id}`, { prefer: 'wait=30' });
      assert.equal(canceled.body.state, 'canceled', JSON.stringify(canceled.body));
      assert.equal((await http.get(diskUrl)).body.mirror, null);
      const deleted = await http.del(volumeUrl, { prefer: 'wait=30' });
      assert.equal(deleted.body.state, 'completed', JSON.stringify(deleted.body));
      assert.ok(!existsSync(vol), 'deleted once no copy writes to it');
    });
    await d.assertChain([d.paths.top, d.paths.s2, d.paths.s1, d.paths.base], 'the original chain');
    await d.assertPatterns(d.paths.top);
  });

  it('copies into a new volume of a dir pool, which the pool then lists', async () => {
    const d = await domain('newvol');
    const poolName = `vg-bj-${run}-npool`;
    const images = await makeImageDir(`vg-bj-${run}-npool`);
    try {
      await withDirPool(poolName, images.dir, async () => {
        const bad: [object, number, string][] = [
          [{ destination: `${poolName}/.hidden` }, 400, 'INVALID_ARGUMENT'],
          [{ destination: `${poolName}/absent.qcow2`, reuseExisting: true }, 404, 'NOT_FOUND'],
          [{ destination: `no-such-pool-${run}/x.qcow2` }, 404, 'NOT_FOUND'],
        ];
        for (const [body, status, code] of bad) {
          const res = await blockJob(d, { type: 'copy', ...body });
          assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
          assert.equal(res.body.code, code);
        }
        const res = await blockJob(
          d,
          { type: 'copy', destination: `${poolName}/fresh.qcow2` },
          { prefer: 'wait=30' },
        );
        assert.equal(res.body.state, 'completed', JSON.stringify(res.body));
        const fresh = path.join(images.dir, 'fresh.qcow2');
        assert.equal(res.body.resolved.destination, fresh);
        assert.equal(res.body.resolved.newVolumeIn, poolName);
        await assertResultChain(d, res.body as Job, [fresh]);
        await d.assertPatterns(fresh);
        const listed = await http.get(`/v1/hosts/local/pools/${poolName}/volumes/fresh.qcow2`);
        assert.equal(listed.status, 200, JSON.stringify(listed.body));
        assert.equal(listed.body.path, fresh);
        assert.equal(listed.body.format, 'qcow2');
      });
      // A pool that is not active takes no new volume.
      const { pool } = await client.rpc.storagePoolDefineXml({
        xml: buildXml({
          name: 'pool',
          attrs: { type: 'dir' },
          children: [
            { name: 'name', text: poolName },
            { name: 'target', children: [{ name: 'path', text: images.dir }] },
          ],
        }),
        flags: 0,
      });
      try {
        const res = await blockJob(d, { type: 'copy', destination: `${poolName}/other.qcow2` });
        assert.equal(res.status, 409, JSON.stringify(res.body));
        assert.equal(res.body.code, 'INVALID_STATE');
      } finally {
        await client.rpc.storagePoolUndefine({ pool });
      }
    } finally {
      await images.remove();
    }
  });

  it('pulls down to a base, then the whole chain', async () => {
    const d = await domain('pull');
    const { base, s1, s2, top } = d.paths;
    const chain = await d.liveChain();
    const res = await blockJob(
      d,
      { type: 'pull', base: `vda[${chain[2]!.index}]` },
      { prefer: 'wait=30' },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.state, 'completed', JSON.stringify(res.body.error));
    assert.equal(res.body.type, 'block.pull');
    await assertResultChain(d, res.body as Job, [top, s1, base]);
    await d.assertPatterns(top);
    assert.ok(await d.holds(top, 's2'), "s2's data was pulled into top");
    assert.ok(existsSync(s2), 'a pull deletes nothing');

    const all = await blockJob(d, { type: 'pull', bandwidth: 64 * MiB }, { prefer: 'wait=30' });
    assert.equal(all.body.state, 'completed', JSON.stringify(all.body.error));
    await assertResultChain(d, all.body as Job, [top]);
    await d.assertPatterns(top);
  });

  it('gives back the same job for the same Idempotency-Key, even once the chain changed', async () => {
    const d = await domain('idem');
    const { base, s1, s2, top } = d.paths;
    const key = `bj-${randomUUID()}`;
    const body = { type: 'commit', top: s2, base: s1, deleteCommittedImages: true };
    const first = await blockJob(d, body, { 'idempotency-key': key, prefer: 'wait=30' });
    assert.equal(first.body.state, 'completed', JSON.stringify(first.body));
    await d.assertChain([top, s1, base], 'after the commit');
    assert.ok(!existsSync(s2), 'deleteCommittedImages deleted the merged image');
    await d.assertPatterns(top);
    // s2 is gone from the chain: a new request naming it would be refused, but this is a replay.
    const again = await blockJob(d, body, { 'idempotency-key': key });
    assert.equal(again.status, 202, JSON.stringify(again.body));
    assert.equal(again.body.id, first.body.id);
    const fresh = await blockJob(d, body);
    assert.equal(fresh.status, 409);
    const other = await blockJob(d, { ...body, bandwidth: 1 }, { 'idempotency-key': key });
    assert.equal(other.status, 422);
  });

  it('does the same through GraphQL: startBlockJob, pivotBlockJob, with REST error codes', async () => {
    const d = await domain('gql');
    const { base, s1 } = d.paths;
    const gql = async (query: string, variables: object = {}) =>
      (
        await request(t.server)
          .post('/graphql')
          .set('authorization', `Bearer ${ADMIN}`)
          .send({ query, variables })
      ).body;
    const start = `mutation($d: String!, $input: StartBlockJobInput!, $wait: Int) {
      startBlockJob(host: "local", domain: $d, disk: "vda", input: $input, wait: $wait) {
        id type state disk result { __typename } error { code } } }`;
    const bad = await gql(start, { d: d.name, input: { type: 'commit', top: 'vda[99]' } });
    assert.equal(bad.errors?.[0]?.extensions?.code, 'INVALID_STATE', JSON.stringify(bad));
    const started = await gql(start, {
      d: d.name,
      input: { type: 'commit', base: s1, pivot: false, top: null },
    });
    assert.equal(started.errors, undefined, JSON.stringify(started.errors));
    const id = started.data.startBlockJob.id as string;
    assert.equal(started.data.startBlockJob.type, 'block_commit');
    await until(id, ['ready']);
    const pivot = `mutation($id: ID!) { pivotBlockJob(id: $id, wait: 30) {
      id state result { __typename ... on CommitResult { persistentChainDiffers disk { chain { path index ref } } } } } }`;
    const done = await gql(pivot, { id });
    assert.equal(done.errors, undefined, JSON.stringify(done.errors));
    assert.equal(done.data.pivotBlockJob.state, 'completed');
    assert.equal(done.data.pivotBlockJob.result.__typename, 'CommitResult');
    await assertResultChain(d, { ...(done.data.pivotBlockJob as Job), type: 'block.commit' }, [
      s1,
      base,
    ]);
    await d.assertPatterns(s1);
    const again = await gql(pivot, { id });
    assert.equal(again.errors?.[0]?.extensions?.code, 'INVALID_STATE');
  });

  it('fails a job whose domain stops under it, and lets go of the disk', async () => {
    const d = await domain('stop', { top: 4 });
    const res = await blockJob(d, { type: 'commit', bandwidth: 1 * MiB });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.id as string;
    await until(id, ['running']);
    await progressOf(id, (p) => p.end > 0);
    await client.rpc.domainDestroyFlags({ dom: d.dom, flags: 0 });
    const job = await waitFor(
      async () => {
        const j = await getJob(id);
        return TERMINAL.includes(j.state) ? j : null;
      },
      `job ${id} to end once its domain stopped`,
      30_000,
    );
    assert.equal(job.state, 'failed');
    assert.equal(job.error?.code, 'INVALID_STATE');
    assert.match(job.error?.message ?? '', /stopped while the block job ran/);
    assert.equal(await d.persistentTop(), d.paths.top, 'nothing was pivoted');
    const redis = new Redis(REDIS_URL);
    try {
      assert.deepEqual(await scanKeys(redis, `${prefix}disk-block-job:`), []);
    } finally {
      await redis.quit();
    }
  });

  it('leaves no disk claimed and no job unfinished behind', async () => {
    const jobs = (await http.get('/v1/jobs?limit=100')).body.items as Job[];
    assert.ok(jobs.length >= 10, `${jobs.length} jobs`);
    assert.deepEqual(
      jobs
        .filter(
          (j) => !['completed', 'canceled'].includes(j.state) && j.error?.code !== 'INVALID_STATE',
        )
        .map((j) => [j.id, j.state]),
      [],
    );
    const redis = new Redis(REDIS_URL);
    try {
      assert.deepEqual(await scanKeys(redis, `${prefix}disk-block-job:`), []);
    } finally {
      await redis.quit();
    }
  });
});
