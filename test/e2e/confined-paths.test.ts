/**
 * Confined paths and size caps, against real libvirtd (QEMU driver, TCG):
 * every path field (a domain's disk, a volume's backing image, a block copy's
 * destination, a snapshot's overlay, a pool's directory) given `/etc/...`,
 * `..` segments, a symlink out of a pool, and an existing file without
 * `reuseExisting`, by an operator whose scope covers one pool. Each is
 * refused, and the filesystem shows that nothing was created or changed
 * outside the roots. The same paths inside the pool are accepted (the check
 * refuses what it must, not everything). The worker checks again at job
 * start: a job whose path escapes through a symlink (as when one is swapped
 * in after the request), and a job queued without the requester's access (as
 * before jobs carried it), fail with PATH_NOT_ALLOWED and change nothing.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { LibvirtClient, uuidString, type RemoteStoragePool } from '#src/libvirt/index.js';
import { buildXml } from '#src/xml/xml.js';
import { JobStore, type JobRecord } from '#jobs/job-store.js';
import { JobQueues } from '#jobs/queues.js';
import { JobSubmitter } from '#jobs/job-submitter.js';
import { makeImageDir, qemuImg } from '../support/qemu-images.js';
import { TcgChainDomain } from '../support/tcg-chain.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  startApp,
  storeToken,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'confined-paths-admin-token-0123456789';
const OPERATOR = 'confined-paths-operator-token-0123456789';
/** An operator scoped to `<tag>-web-*` domains and the pool: it cannot see the other domains. */
const WEB_OPERATOR = 'confined-paths-web-operator-token-0123456789';
const tag = `vgcp-${randomUUID().slice(0, 6)}`;
/** Names under /etc that must never appear. */
const ETC = (name: string): string => `/etc/${tag}-${name}`;

interface Job {
  id: string;
  state: string;
  error: { code: string; message: string } | null;
}

describe('confined paths', () => {
  let t: TestApp;
  let qemu: LibvirtClient;
  let work: { dir: string; remove(): Promise<void> };
  /** The configured root (VIRTGATE_PATH_ROOTS). */
  let roots: string;
  /** The pool the operator's scope covers, and one it does not. */
  let pooldir: string;
  let otherdir: string;
  /** Outside every pool and root: stands for /etc where a test must write a file to compare. */
  let outside: string;
  let victim: string;
  const POOL = `${tag}-pool`;
  const OTHER = `${tag}-other`;
  const pools: RemoteStoragePool[] = [];
  let vm: TcgChainDomain;

  const as = (token: string) => ({
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${token}`),
    post: (url: string, body: object, headers: Record<string, string> = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${token}`).set(headers).send(body),
    del: (url: string, headers: Record<string, string> = {}) =>
      request(t.server).delete(url).set('authorization', `Bearer ${token}`).set(headers),
  });
  const admin = as(ADMIN);
  const operator = as(OPERATOR);
  const webOperator = as(WEB_OPERATOR);

  function expectProblem(res: request.Response, status: number, code: string, field: string) {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.equal(res.body.code, code, JSON.stringify(res.body));
    assert.ok(
      ((res.body.errors ?? []) as { field: string }[]).some((e) => e.field === field),
      `a field error for ${field}: ${JSON.stringify(res.body)}`,
    );
  }

  /** The job once it is final (completed, failed or canceled). */
  function finished(id: string, ms = 30_000): Promise<Job> {
    return waitFor(
      async () => {
        const job = (await admin.get(`/v1/jobs/${id}`)).body as Job;
        return ['completed', 'failed', 'canceled'].includes(job.state) ? job : null;
      },
      `job ${id} to finish`,
      ms,
    );
  }

  /** What is outside the roots and pools that a request could have touched: listings and contents. */
  async function outsideState(): Promise<string> {
    const etc = (await readdir('/etc')).filter((n) => n.startsWith(tag));
    const files = (await readdir(outside)).sort();
    const contents = await Promise.all(
      files.map(async (f) => {
        const p = path.join(outside, f);
        const s = await lstat(p);
        return [f, s.size, s.mtimeMs, s.isFile() ? await readFile(p, 'utf8') : null];
      }),
    );
    const shadow = await stat('/etc/shadow');
    const vmdir = (await readdir(vm.dir)).sort();
    return JSON.stringify({
      etc,
      contents,
      shadow: [shadow.size, shadow.mtimeMs],
      vmdir,
      other: (await readdir(otherdir)).sort(),
    });
  }

  async function definePool(name: string, dir: string): Promise<void> {
    const { pool } = await qemu.rpc.storagePoolDefineXml({
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
    await qemu.rpc.storagePoolCreate({ pool, flags: 0 });
    pools.push(pool);
  }

  before(async () => {
    qemu = await LibvirtClient.connect('qemu:///system');
    work = await makeImageDir(tag);
    roots = path.join(work.dir, 'roots');
    pooldir = path.join(work.dir, 'pool');
    otherdir = path.join(work.dir, 'other');
    outside = path.join(work.dir, 'outside');
    for (const d of [roots, pooldir, otherdir, outside]) await mkdir(d);
    victim = path.join(outside, 'victim.img');
    await writeFile(victim, 'not to be overwritten');
    // Symlinks placed in the pool and in the root, leading out.
    await symlink(outside, path.join(pooldir, 'escape'));
    await symlink(victim, path.join(pooldir, 'victim.qcow2'));
    await symlink('/etc/shadow', path.join(pooldir, 'shadow.img'));
    await symlink(path.join(outside, 'absent.qcow2'), path.join(pooldir, 'dangling.qcow2'));
    await symlink(outside, path.join(roots, 'escape'));
    await qemuImg('create', '-q', '-f', 'qcow2', path.join(pooldir, 'base.qcow2'), '16M');
    await qemuImg('create', '-q', '-f', 'qcow2', path.join(otherdir, 'theirs.qcow2'), '16M');
    await definePool(POOL, pooldir);
    await definePool(OTHER, otherdir);
    // A file in the pool libvirt does not list (made after the pool's refresh).
    await writeFile(path.join(pooldir, 'stray.qcow2'), 'not an image, not to be overwritten');
    vm = await TcgChainDomain.create(qemu, `${tag}-vm`);

    await storeToken(prefix, OPERATOR, {
      id: 'operator-1',
      role: 'operator',
      scopes: [{ host: 'local', domains: ['*'], pools: [POOL] }],
    });
    await storeToken(prefix, WEB_OPERATOR, {
      id: 'web-operator-1',
      role: 'operator',
      scopes: [{ host: 'local', domains: [`${tag}-web-*`], pools: [POOL] }],
    });
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        VIRTGATE_PATH_ROOTS: roots,
        VIRTGATE_MAX_MEMORY_MIB: '1024',
        VIRTGATE_MAX_VCPUS: '4',
        VIRTGATE_MAX_DISKS: '2',
        VIRTGATE_MAX_DISK_GIB: '1',
      }),
    );
  });

  after(async () => {
    await closeAllApps();
    const { domains } = await qemu.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
    for (const dom of domains.filter((d) => d.name.startsWith(tag) && d.name !== vm?.name)) {
      await qemu.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await qemu.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await vm?.remove().catch(() => undefined);
    const { pools: all } = await qemu.rpc.connectListAllStoragePools({ needResults: 1, flags: 0 });
    for (const pool of all.filter((p) => p.name.startsWith(tag))) {
      await qemu.rpc.storagePoolDestroy({ pool }).catch(() => undefined);
      await qemu.rpc.storagePoolUndefine({ pool }).catch(() => undefined);
    }
    await qemu.close();
    await work.remove();
    await deleteKeys(prefix);
  });

  it('refuses a disk path outside the pools in scope and the roots, and takes one inside', async () => {
    const before = await outsideState();
    const spec = (disk: object) => ({
      name: `${tag}-d${randomUUID().slice(0, 4)}`,
      memoryMiB: 64,
      vcpus: 1,
      disks: [{ format: 'raw', ...disk }],
    });
    const refused: [object, string][] = [
      [{ path: '/etc/shadow' }, 'disks.0.path'],
      [{ path: `${pooldir}/../outside/victim.img` }, 'disks.0.path'],
      [{ path: `${pooldir}/shadow.img` }, 'disks.0.path'], // a symlink to /etc/shadow
      [{ path: `${pooldir}/escape/victim.img` }, 'disks.0.path'], // through a symlinked directory
      [{ path: path.join(otherdir, 'theirs.qcow2') }, 'disks.0.path'], // a pool outside the scope
      [{ path: vm.paths.top }, 'disks.0.path'], // no pool, no root
    ];
    for (const [disk, field] of refused) {
      const res = await operator.post('/v1/hosts/local/domains', spec(disk));
      expectProblem(res, 403, 'PATH_NOT_ALLOWED', field);
    }
    // A volume of a pool outside the scope is one the operator cannot know of.
    expectProblem(
      await operator.post('/v1/hosts/local/domains', spec({ pool: OTHER, volume: 'theirs.qcow2' })),
      400,
      'INVALID_ARGUMENT',
      'disks.0.pool',
    );
    assert.equal(await outsideState(), before);

    const ok = await operator.post(
      '/v1/hosts/local/domains',
      spec({ path: path.join(pooldir, 'base.qcow2'), format: 'qcow2' }),
      { prefer: 'wait=30' },
    );
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.state, 'completed', JSON.stringify(ok.body.error));
    // That image is now the disk of a domain the web operator cannot see: it may not take it over.
    const takeover = await webOperator.post('/v1/hosts/local/domains', {
      ...spec({ path: path.join(pooldir, 'base.qcow2'), format: 'qcow2' }),
      name: `${tag}-web-1`,
    });
    assert.equal(takeover.status, 409, JSON.stringify(takeover.body));
    assert.equal(takeover.body.code, 'CONFLICT');
    assert.doesNotMatch(takeover.body.detail, new RegExp(ok.body.domain as string));
    // Admins may give any path (as in raw XML).
    const byAdmin = await admin.post('/v1/hosts/local/domains', spec({ path: vm.paths.base }), {
      prefer: 'wait=30',
    });
    assert.equal(byAdmin.body.state, 'completed', JSON.stringify(byAdmin.body));
  });

  it('caps sizes and counts, and takes only the networks and interfaces the host offers', async () => {
    const base = { name: `${tag}-caps`, memoryMiB: 64, vcpus: 1 };
    const cases: [object, string][] = [
      [{ memoryMiB: 2048 }, 'memoryMiB'],
      [{ vcpus: 5 }, 'vcpus'],
      [
        {
          disks: [1, 2, 3].map(() => ({ path: path.join(pooldir, 'base.qcow2'), format: 'qcow2' })),
        },
        'disks',
      ],
      [{ interfaces: [{ network: `${tag}-nonet` }] }, 'interfaces.0.network'],
      [{ interfaces: [{ bridge: 'vgnobr0' }] }, 'interfaces.0.bridge'],
    ];
    for (const [extra, field] of cases) {
      const res = await operator.post('/v1/hosts/local/domains', { ...base, ...extra });
      expectProblem(res, 400, 'INVALID_ARGUMENT', field);
    }
    const tooBig = await operator.post(`/v1/hosts/local/pools/${POOL}/volumes`, {
      name: 'big.qcow2',
      capacityBytes: 2 * 1024 ** 3,
    });
    expectProblem(tooBig, 400, 'INVALID_ARGUMENT', 'capacityBytes');
    assert.ok(!existsSync(path.join(pooldir, 'big.qcow2')));
  });

  it('refuses a backing image outside the pools in scope and the roots', async () => {
    const before = await outsideState();
    const url = `/v1/hosts/local/pools/${POOL}/volumes`;
    const refused: [object, string][] = [
      [{ path: '/etc/shadow', format: 'raw' }, 'backing.path'],
      [{ path: `${pooldir}/../outside/victim.img`, format: 'raw' }, 'backing.path'],
      [{ path: `${pooldir}/victim.qcow2`, format: 'raw' }, 'backing.path'], // a symlink out
      [{ path: `${pooldir}/escape/victim.img`, format: 'raw' }, 'backing.path'],
      [{ path: path.join(otherdir, 'theirs.qcow2'), format: 'qcow2' }, 'backing.path'],
    ];
    for (const [backing, field] of refused) {
      const res = await operator.post(url, { name: `${tag}-b.qcow2`, backing });
      expectProblem(res, 403, 'PATH_NOT_ALLOWED', field);
    }
    expectProblem(
      await operator.post(url, {
        name: `${tag}-b.qcow2`,
        backing: { pool: OTHER, volume: 'theirs.qcow2' },
      }),
      400,
      'INVALID_ARGUMENT',
      'backing.pool',
    );
    assert.equal(await outsideState(), before);
    assert.ok(!existsSync(path.join(pooldir, `${tag}-b.qcow2`)), 'no volume made');

    const ok = await operator.post(
      url,
      { name: `${tag}-ok.qcow2`, backing: { path: path.join(pooldir, 'base.qcow2') } },
      { prefer: 'wait=30' },
    );
    assert.equal(ok.body.state, 'completed', JSON.stringify(ok.body));
  });

  it('refuses a block copy outside, through a symlink, or over a file, and takes one into the pool', async () => {
    const before = await outsideState();
    const pool = await readdir(pooldir);
    const url = `/v1/hosts/local/domains/${vm.name}/disks/vda/block-jobs`;
    const refused: [object, number, string][] = [
      [{ destination: ETC('copy.qcow2') }, 403, 'PATH_NOT_ALLOWED'],
      [{ destination: `${pooldir}/../outside/copy.qcow2` }, 403, 'PATH_NOT_ALLOWED'],
      [{ destination: `${pooldir}/escape/copy.qcow2` }, 403, 'PATH_NOT_ALLOWED'],
      [{ destination: `${pooldir}/dangling.qcow2` }, 403, 'PATH_NOT_ALLOWED'],
      [{ destination: `${OTHER}/new.qcow2` }, 403, 'PATH_NOT_ALLOWED'],
      // An existing file: never without reuseExisting; with it, only a volume in scope.
      [{ destination: path.join(pooldir, 'stray.qcow2') }, 409, 'ALREADY_EXISTS'],
      [
        { destination: path.join(pooldir, 'stray.qcow2'), reuseExisting: true },
        403,
        'PATH_NOT_ALLOWED',
      ],
      [{ destination: `${pooldir}/victim.qcow2`, reuseExisting: true }, 403, 'PATH_NOT_ALLOWED'],
      [{ destination: victim, reuseExisting: true }, 403, 'PATH_NOT_ALLOWED'],
      [
        { destination: path.join(otherdir, 'theirs.qcow2'), reuseExisting: true },
        403,
        'PATH_NOT_ALLOWED',
      ],
    ];
    for (const [body, status, code] of refused) {
      const res = await operator.post(url, { type: 'copy', ...body });
      expectProblem(res, status, code, 'destination');
    }
    assert.equal(await outsideState(), before);
    assert.deepEqual(await readdir(pooldir), pool, 'nothing made in the pool either');
    assert.equal(
      await readFile(path.join(pooldir, 'stray.qcow2'), 'utf8'),
      'not an image, not to be overwritten',
    );

    const ok = await operator.post(url, {
      type: 'copy',
      destination: path.join(pooldir, 'copy.qcow2'),
      pivot: false,
    });
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    const canceled = await admin.del(`/v1/jobs/${ok.body.id}`, { prefer: 'wait=30' });
    assert.ok(['canceled', 'failed', 'completed'].includes(canceled.body.state));
    assert.equal((await finished(ok.body.id)).state, 'canceled');
    await vm.assertChain(
      [vm.paths.top, vm.paths.s2, vm.paths.s1, vm.paths.base],
      'the original chain',
    );
  });

  it('refuses a snapshot overlay outside, through a symlink, or over a file', async () => {
    const before = await outsideState();
    const url = `/v1/hosts/local/domains/${vm.name}/snapshots`;
    const refused: [object, number, string, string][] = [
      [{ path: ETC('overlay.qcow2') }, 403, 'PATH_NOT_ALLOWED', 'disks.0.path'],
      [{ path: `${pooldir}/../outside/ov.qcow2` }, 403, 'PATH_NOT_ALLOWED', 'disks.0.path'],
      [{ path: `${pooldir}/escape/ov.qcow2` }, 403, 'PATH_NOT_ALLOWED', 'disks.0.path'],
      [{ path: `${pooldir}/dangling.qcow2` }, 403, 'PATH_NOT_ALLOWED', 'disks.0.path'],
      [{ path: path.join(pooldir, 'stray.qcow2') }, 409, 'ALREADY_EXISTS', 'disks.0.path'],
      // No path: the default overlay goes beside the top image, outside every pool.
      [{}, 403, 'PATH_NOT_ALLOWED', 'disks.0.path'],
    ];
    for (const [disk, status, code, field] of refused) {
      const res = await operator.post(url, { name: 'snap', disks: [{ target: 'vda', ...disk }] });
      expectProblem(res, status, code, field);
    }
    assert.equal(await outsideState(), before);
    await vm.assertChain([vm.paths.top, vm.paths.s2, vm.paths.s1, vm.paths.base], 'no overlay');
  });

  it("keeps pools' directories inside the roots, and pool definitions to admins", async () => {
    const before = await outsideState();
    const url = '/v1/hosts/local/pools';
    const refused: [string, string][] = [
      ['/etc', 'etc'],
      [ETC('pool'), 'etcnew'],
      [`${roots}/../outside`, 'dotdot'],
      [`${roots}/escape`, 'link'],
      [`${roots}/escape/sub`, 'linksub'],
      [pooldir, 'pooldir'],
    ];
    for (const [dir, name] of refused) {
      const res = await admin.post(url, { name: `${tag}-${name}`, path: dir });
      expectProblem(res, 403, 'PATH_NOT_ALLOWED', 'path');
    }
    const byOperator = await operator.post(url, { name: `${tag}-op`, path: `${roots}/op` });
    assert.equal(byOperator.status, 403, JSON.stringify(byOperator.body));
    const { pools: all } = await qemu.rpc.connectListAllStoragePools({ needResults: 1, flags: 0 });
    assert.deepEqual(
      all
        .map((p) => p.name)
        .filter((n) => n.startsWith(tag))
        .sort(),
      [OTHER, POOL].sort(),
      'no pool defined',
    );
    assert.equal(await outsideState(), before);

    const ok = await admin.post(
      url,
      { name: `${tag}-ok`, path: `${roots}/new/deeper` },
      {
        prefer: 'wait=30',
      },
    );
    assert.equal(ok.body.state, 'completed', JSON.stringify(ok.body));
  });

  it('refuses to start a pool of the roots whose directory leads out of them by then', async () => {
    const name = `${tag}-swap`;
    const dir = path.join(roots, 'swap');
    const defined = await admin.post(
      '/v1/hosts/local/pools',
      { name, path: dir },
      { prefer: 'wait=30' },
    );
    assert.equal(defined.body.state, 'completed', JSON.stringify(defined.body));
    await symlink(outside, dir); // put in the directory's place after the definition
    const before = await outsideState();
    const start = `/v1/hosts/local/pools/${name}/actions/start`;
    expectProblem(await admin.post(start, { build: true }), 403, 'PATH_NOT_ALLOWED', 'pool');
    // The worker looks again: a start that reached it all the same changes nothing.
    const { pool } = await qemu.rpc.storagePoolLookupByName({ name });
    const { record } = await t.app.get(JobSubmitter).submit(
      { id: 'admin', role: 'admin', scopes: null, requestId: 'test' },
      {
        type: 'pool.start',
        target: { host: 'local', uuid: null, name: null },
        params: { pool: name, uuid: uuidString(pool.uuid), build: true },
        request: { direct: true },
      },
    );
    const job = await finished(record.id);
    assert.equal(job.state, 'failed');
    assert.equal(job.error?.code, 'PATH_NOT_ALLOWED', JSON.stringify(job.error));
    assert.equal((await qemu.rpc.storagePoolIsActive({ pool })).active, 0);
    assert.equal(await outsideState(), before);
  });

  describe('at job start, in the worker', () => {
    it('fails a job whose path leads out of the pool by then, and creates nothing', async () => {
      // As after a symlink swapped in between the request and the job's start:
      // the job reaches the worker with a path the api did not see escape.
      const link = path.join(pooldir, `${tag}-swapped.qcow2`);
      await symlink(victim, link);
      const before = await outsideState();
      const submitter = t.app.get(JobSubmitter);
      const caller = {
        id: 'operator-1',
        role: 'operator' as const,
        scopes: [{ host: 'local', domains: ['*'], pools: [POOL] }],
        requestId: 'test',
      };
      const { record } = await submitter.submit(caller, {
        type: 'volume.create',
        target: { host: 'local', uuid: null, name: null },
        params: {
          pool: POOL,
          poolUuid: uuidString((await qemu.rpc.storagePoolLookupByName({ name: POOL })).pool.uuid),
          volume: `${tag}-w.qcow2`,
          xml: buildXml({
            name: 'volume',
            children: [
              { name: 'name', text: `${tag}-w.qcow2` },
              { name: 'capacity', attrs: { unit: 'bytes' }, text: 16 * 1024 * 1024 },
              { name: 'target', children: [{ name: 'format', attrs: { type: 'qcow2' } }] },
              {
                name: 'backingStore',
                children: [
                  { name: 'path', text: link },
                  { name: 'format', attrs: { type: 'raw' } },
                ],
              },
            ],
          }),
          format: 'qcow2',
          capacityBytes: 16 * 1024 * 1024,
          backing: { path: link, format: 'raw' },
        },
        request: { direct: true },
      });
      const job = await finished(record.id);
      assert.equal(job.state, 'failed');
      assert.equal(job.error?.code, 'PATH_NOT_ALLOWED', JSON.stringify(job.error));
      assert.ok(!existsSync(path.join(pooldir, `${tag}-w.qcow2`)), 'no volume made');
      assert.equal(await outsideState(), before);
    });

    it("takes a job queued without the requester's access as the least privileged", async () => {
      const before = await outsideState();
      const id = randomUUID();
      const name = `${tag}-old`;
      const uuid = randomUUID();
      const dir = path.join(roots, 'old');
      const now = new Date().toISOString();
      const params = {
        pool: name,
        uuid,
        xml: buildXml({
          name: 'pool',
          attrs: { type: 'dir' },
          children: [
            { name: 'name', text: name },
            { name: 'uuid', text: uuid },
            { name: 'target', children: [{ name: 'path', text: dir }] },
          ],
        }),
      };
      const record: JobRecord = {
        id,
        type: 'pool.define',
        host: 'local',
        domain: null,
        domainUuid: null,
        disk: null,
        request: { name, path: dir },
        resolved: { ...params, domainUuid: null },
        state: 'queued',
        progress: null,
        result: null,
        error: null,
        requestedBy: 'admin',
        requestId: 'test',
        createdAt: now,
        startedAt: null,
        finishedAt: null,
        updatedAt: now,
        attempts: 0,
        cancelRequested: false,
        adopted: false,
      };
      await t.app.get(JobStore).create(record);
      // What a gateway of before queued: no `access`.
      await t.app.get(JobQueues).add({
        jobId: id,
        type: 'pool.define',
        target: { host: 'local', uuid: null, name: null },
        params,
        requestId: 'test',
      });
      const job = await finished(id);
      assert.equal(job.state, 'failed');
      assert.equal(job.error?.code, 'PATH_NOT_ALLOWED', JSON.stringify(job.error));
      const { pools: all } = await qemu.rpc.connectListAllStoragePools({
        needResults: 1,
        flags: 0,
      });
      assert.ok(!all.some((p) => p.name === name), 'no pool defined');
      assert.equal(await outsideState(), before);
    });
  });
});
