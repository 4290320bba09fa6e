/**
 * Storage changes as jobs, over REST, against the real libvirtd (QEMU driver,
 * dir pools in temp dirs): define, start (building the directory), stop,
 * refresh and undefine a pool; create raw, qcow2 and backed qcow2 volumes and
 * delete them, checked against the file system and qemu-img; every refusal
 * at request time; Idempotency-Key replays of deletes whose target is gone;
 * and the pool and volume-delete handlers run twice, as after a worker crash
 * (a volume create's recovery through a killed worker: job-recovery.test.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { LibvirtClient, LibvirtError } from '#src/libvirt/index.js';
import { buildXml } from '#src/xml/xml.js';
import { PathConfinement } from '#src/hosts/path-confinement.js';
import { StorageProcessor } from '#modules/storage-pools/storage-pools.processor.js';
import type { JobContext } from '#jobs/processor.js';
import type { JobType, QueuedJob } from '#jobs/job-types.js';
import { makeImageDir, qemuImg } from '../support/qemu-images.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';
import { waitFor } from '../support/wait.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'storage-ops-test-admin-token-0123456789';
const tag = `vgsto-${randomUUID().slice(0, 6)}`;
const MiB = 1024 * 1024;

interface Job {
  id: string;
  type: string;
  state: string;
  domain: string | null;
  resolved: Record<string, unknown>;
  result: Record<string, unknown> & {
    changed: boolean;
    pool?: { name: string; state: string; path: string; persistent: boolean } | string | null;
    volume?: {
      name: string;
      path: string;
      format: string;
      capacityBytes: number;
      backingStore: { path: string; format: string } | null;
    };
  };
  error: { code: string; message: string; libvirtCode: string | null } | null;
}

interface ImgInfo {
  format: string;
  'virtual-size': number;
  'backing-filename'?: string;
  'backing-filename-format'?: string;
}

async function imgInfo(file: string): Promise<ImgInfo> {
  return JSON.parse(await qemuImg('info', '-U', '--output=json', file)) as ImgInfo;
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

describe('storage operations', () => {
  let t: TestApp;
  let qemu: LibvirtClient;
  let tmp: { dir: string; remove(): Promise<void> };
  let pooldir: string;
  const POOL = `${tag}-pool`;

  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object = {}, headers: Record<string, string> = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).set(headers).send(body),
    del: (url: string, headers: Record<string, string> = {}) =>
      request(t.server).delete(url).set('authorization', `Bearer ${ADMIN}`).set(headers),
  };
  const pools = '/v1/hosts/local/pools';
  const WAIT = { prefer: 'wait=30' };

  /** The job once it ended (completed, failed or canceled), as GET /v1/jobs/{id} shows it. */
  async function finished(id: string, ms = 30_000): Promise<Job> {
    return waitFor(
      async () => {
        const job = (await http.get(`/v1/jobs/${id}`)).body as Job;
        return ['completed', 'failed', 'canceled'].includes(job.state) ? job : null;
      },
      `job ${id} to end`,
      ms,
    );
  }

  /** A job that finished under Prefer: wait, completed. */
  function completed(res: request.Response, type: string): Job {
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
    const job = res.body as Job;
    assert.equal(job.type, type);
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    assert.equal(job.domain, null, 'a storage job has no domain');
    return job;
  }

  function expectProblem(res: request.Response, status: number, code: string, field?: string) {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.equal(res.body.code, code, JSON.stringify(res.body));
    if (field !== undefined) {
      assert.ok(
        (res.body.errors as { field: string }[]).some((e) => e.field === field),
        `a field error for ${field}: ${JSON.stringify(res.body.errors)}`,
      );
    }
  }

  before(async () => {
    qemu = await LibvirtClient.connect('qemu:///system');
    tmp = await makeImageDir(tag);
    pooldir = path.join(tmp.dir, 'pool');
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
  });

  after(async () => {
    await closeAllApps();
    const { domains } = await qemu.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
    for (const dom of domains.filter((d) => d.name.startsWith(tag))) {
      await qemu.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    const { pools: all } = await qemu.rpc.connectListAllStoragePools({ needResults: 1, flags: 0 });
    for (const pool of all.filter((p) => p.name.startsWith(tag))) {
      await qemu.rpc.storagePoolDestroy({ pool }).catch(() => undefined);
      await qemu.rpc.storagePoolUndefine({ pool }).catch(() => undefined);
    }
    await qemu.close();
    await tmp.remove();
    await deleteKeys(prefix);
  });

  describe('pools', () => {
    it('defines a dir pool whose directory does not exist yet', async () => {
      const res = await http.post(pools, { name: POOL, path: `${pooldir}/` }, WAIT);
      const job = completed(res, 'pool.define');
      assert.equal(job.result.changed, true);
      const pool = job.result.pool as {
        name: string;
        state: string;
        path: string;
        persistent: boolean;
      };
      assert.equal(pool.name, POOL);
      assert.equal(pool.state, 'inactive');
      assert.equal(pool.path, pooldir);
      assert.equal(pool.persistent, true);
      assert.equal((await http.get(`${pools}/${POOL}`)).body.state, 'inactive');
      assert.equal(await exists(pooldir), false, 'defining creates nothing on disk');
    });

    it('refuses a pool it cannot define, at once', async () => {
      const cases: [object, number, string, string?][] = [
        [{ name: POOL, path: path.join(tmp.dir, 'other') }, 409, 'ALREADY_EXISTS'],
        [{ name: `${tag}-twin`, path: pooldir }, 409, 'ALREADY_EXISTS'],
        [{ name: 'a/b', path: '/srv/x' }, 400, 'INVALID_ARGUMENT', 'name'],
        [{ name: `${tag}-x`, path: 'relative' }, 400, 'INVALID_ARGUMENT', 'path'],
        [{ name: `${tag}-x`, path: '/srv/x', type: 'logical' }, 400, 'INVALID_ARGUMENT', 'type'],
        [{ name: `${tag}-x` }, 400, 'INVALID_ARGUMENT', 'path'],
      ];
      for (const [body, status, code, field] of cases) {
        expectProblem(await http.post(pools, body), status, code, field);
      }
      expectProblem(
        await http.post('/v1/hosts/nohost/pools', { name: `${tag}-x`, path: '/x' }),
        404,
        'NOT_FOUND',
      );
    });

    it('starts it, building its directory; stops it; refuses what the state does not allow', async () => {
      const started = completed(
        await http.post(`${pools}/${POOL}/actions/start`, { build: true }, WAIT),
        'pool.start',
      );
      assert.equal((started.result.pool as { state: string }).state, 'running');
      assert.ok((await stat(pooldir)).isDirectory(), 'build created the directory');
      expectProblem(await http.post(`${pools}/${POOL}/actions/start`), 409, 'INVALID_STATE');
      const stopped = completed(
        await http.post(`${pools}/${POOL}/actions/stop`, {}, WAIT),
        'pool.stop',
      );
      assert.equal((stopped.result.pool as { state: string }).state, 'inactive');
      expectProblem(await http.post(`${pools}/${POOL}/actions/stop`), 409, 'INVALID_STATE');
      expectProblem(await http.post(`${pools}/${POOL}/actions/refresh`), 409, 'INVALID_STATE');
      expectProblem(
        await http.post(`${pools}/${POOL}/actions/stop`, { build: true }),
        400,
        'INVALID_ARGUMENT',
        'build',
      );
      expectProblem(
        await http.post(`${pools}/${POOL}/actions/explode`),
        400,
        'INVALID_ARGUMENT',
        'action',
      );
      expectProblem(await http.post(`${pools}/${tag}-nope/actions/start`), 404, 'NOT_FOUND');
      const again = completed(
        await http.post(`${pools}/${POOL}/actions/start`, {}, WAIT),
        'pool.start',
      );
      assert.equal((again.result.pool as { state: string }).state, 'running');
    });
  });

  describe('volumes', () => {
    const vols = () => `${pools}/${POOL}/volumes`;

    it('creates a qcow2, a raw and a backed qcow2 volume, as qemu-img sees them', async () => {
      const qcow2 = completed(
        await http.post(vols(), { name: 'base.qcow2', capacityBytes: 16 * MiB }, WAIT),
        'volume.create',
      );
      const base = qcow2.result.volume!;
      assert.equal(base.path, path.join(pooldir, 'base.qcow2'));
      assert.equal(base.format, 'qcow2');
      assert.equal(base.capacityBytes, 16 * MiB);
      assert.deepEqual(
        [(await imgInfo(base.path)).format, (await imgInfo(base.path))['virtual-size']],
        ['qcow2', 16 * MiB],
      );

      const raw = completed(
        await http.post(
          vols(),
          { name: 'scratch.img', format: 'raw', capacityBytes: 8 * MiB + 1 },
          WAIT,
        ),
        'volume.create',
      );
      assert.equal(raw.result.volume!.format, 'raw');
      const rawInfo = await imgInfo(raw.result.volume!.path);
      assert.equal(rawInfo.format, 'raw');
      assert.ok(rawInfo['virtual-size'] >= 8 * MiB + 1);

      const top = completed(
        await http.post(vols(), { name: 'top.qcow2', backing: { volume: 'base.qcow2' } }, WAIT),
        'volume.create',
      );
      const topInfo = await imgInfo(top.result.volume!.path);
      assert.equal(topInfo['backing-filename'], base.path);
      assert.equal(topInfo['backing-filename-format'], 'qcow2');
      assert.equal(topInfo['virtual-size'], 16 * MiB, "the backing image's size by default");
      assert.deepEqual(top.result.volume!.backingStore, { path: base.path, format: 'qcow2' });

      const outside = path.join(tmp.dir, 'outside.img');
      await qemuImg('create', '-q', '-f', 'raw', outside, '4M');
      expectProblem(
        await http.post(vols(), { name: 'ov.qcow2', backing: { path: outside } }),
        400,
        'INVALID_ARGUMENT',
        'backing.format',
      );
      const ov = completed(
        await http.post(
          vols(),
          { name: 'ov.qcow2', capacityBytes: 32 * MiB, backing: { path: outside, format: 'raw' } },
          WAIT,
        ),
        'volume.create',
      );
      const ovInfo = await imgInfo(ov.result.volume!.path);
      assert.deepEqual(
        [ovInfo['backing-filename'], ovInfo['backing-filename-format'], ovInfo['virtual-size']],
        [outside, 'raw', 32 * MiB],
      );
    });

    it('refuses a volume it cannot create, at once', async () => {
      const cases: [object, number, string, string?][] = [
        [{ name: 'base.qcow2', capacityBytes: MiB }, 409, 'ALREADY_EXISTS'],
        [
          { name: 'r.img', format: 'raw', backing: { volume: 'base.qcow2' } },
          400,
          'INVALID_ARGUMENT',
          'backing',
        ],
        [{ name: 'n.qcow2' }, 400, 'INVALID_ARGUMENT', 'capacityBytes'],
        [{ name: 'n.qcow2', capacityBytes: 0 }, 400, 'INVALID_ARGUMENT', 'capacityBytes'],
        [{ name: 'n.qcow2', capacityBytes: 1.5 }, 400, 'INVALID_ARGUMENT', 'capacityBytes'],
        [
          { name: 'n.qcow2', format: 'vmdk', capacityBytes: MiB },
          400,
          'INVALID_ARGUMENT',
          'format',
        ],
        [{ name: 'a/b', capacityBytes: MiB }, 400, 'INVALID_ARGUMENT', 'name'],
        [
          { name: 'n.qcow2', backing: { volume: 'nope.qcow2' } },
          400,
          'INVALID_ARGUMENT',
          'backing.volume',
        ],
        [
          { name: 'n.qcow2', backing: { pool: `${tag}-nope`, volume: 'x' } },
          400,
          'INVALID_ARGUMENT',
          'backing.pool',
        ],
        [{ name: 'n.qcow2', backing: {} }, 400, 'INVALID_ARGUMENT', 'backing'],
        [
          { name: 'n.qcow2', backing: { volume: 'base.qcow2', path: '/x' } },
          400,
          'INVALID_ARGUMENT',
          'backing',
        ],
      ];
      for (const [body, status, code, field] of cases) {
        const res = await http.post(vols(), body);
        assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
        expectProblem(res, status, code, field);
      }
      expectProblem(
        await http.post(`${pools}/${tag}-nope/volumes`, { name: 'x.qcow2', capacityBytes: MiB }),
        404,
        'NOT_FOUND',
      );
      assert.equal(await exists(path.join(pooldir, 'n.qcow2')), false);
    });

    it("shows files added behind libvirt's back after a refresh", async () => {
      await qemuImg('create', '-q', '-f', 'qcow2', path.join(pooldir, 'sideload.qcow2'), '2M');
      const before = (await http.get(`${vols()}?limit=100`)).body.items.map(
        (v: { name: string }) => v.name,
      );
      assert.ok(!before.includes('sideload.qcow2'));
      completed(await http.post(`${pools}/${POOL}/actions/refresh`, {}, WAIT), 'pool.refresh');
      const after = (await http.get(`${vols()}?limit=100`)).body.items.map(
        (v: { name: string }) => v.name,
      );
      assert.ok(after.includes('sideload.qcow2'), JSON.stringify(after));
    });

    it('refuses to delete a volume in use by a domain or backing another volume', async () => {
      const backing = await http.del(`${vols()}/base.qcow2`);
      expectProblem(backing, 409, 'INVALID_STATE');
      assert.match(backing.body.detail, /backing image of volume 'top.qcow2'/);
      const domain = `${tag}-user`;
      const { dom } = await qemu.rpc.domainDefineXmlFlags({
        xml: buildXml({
          name: 'domain',
          attrs: { type: 'qemu' },
          children: [
            { name: 'name', text: domain },
            { name: 'memory', attrs: { unit: 'MiB' }, text: 64 },
            { name: 'os', children: [{ name: 'type', attrs: { arch: 'x86_64' }, text: 'hvm' }] },
            {
              name: 'devices',
              children: [
                {
                  name: 'disk',
                  attrs: { type: 'file', device: 'disk' },
                  children: [
                    { name: 'driver', attrs: { name: 'qemu', type: 'raw' } },
                    { name: 'source', attrs: { file: path.join(pooldir, 'scratch.img') } },
                    { name: 'target', attrs: { dev: 'vda', bus: 'virtio' } },
                  ],
                },
              ],
            },
          ],
        }),
        flags: 0,
      });
      const used = await http.del(`${vols()}/scratch.img`);
      expectProblem(used, 409, 'INVALID_STATE');
      assert.match(used.body.detail, new RegExp(`in use by domain '${domain}' \\(disk vda\\)`));
      await qemu.rpc.domainUndefineFlags({ dom, flags: 0 });
      completed(await http.del(`${vols()}/scratch.img`, WAIT), 'volume.delete');
      assert.equal(await exists(path.join(pooldir, 'scratch.img')), false);
    });

    it('deletes a volume and its file; a retry with the same Idempotency-Key gets the job back', async () => {
      const key = `del-${randomUUID()}`;
      const res = await http.del(`${vols()}/top.qcow2`, { 'idempotency-key': key });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
      const job = await finished(res.body.id);
      assert.equal(job.state, 'completed', JSON.stringify(job.error));
      assert.deepEqual(job.result, {
        changed: true,
        pool: POOL,
        volume: 'top.qcow2',
        path: path.join(pooldir, 'top.qcow2'),
      });
      assert.equal(await exists(path.join(pooldir, 'top.qcow2')), false);
      assert.equal(await exists(path.join(pooldir, 'base.qcow2')), true, 'its backing image stays');
      const retry = await http.del(`${vols()}/top.qcow2`, { 'idempotency-key': key });
      assert.equal(retry.status, 202);
      assert.equal(retry.body.id, res.body.id);
      expectProblem(await http.del(`${vols()}/top.qcow2`), 404, 'NOT_FOUND');
      // Now nothing is backed by base.qcow2: it may go.
      completed(await http.del(`${vols()}/base.qcow2`, WAIT), 'volume.delete');
    });
  });

  describe('undefine', () => {
    it('refuses an active pool, then undefines it stopped; its files stay', async () => {
      expectProblem(await http.del(`${pools}/${POOL}`), 409, 'INVALID_STATE');
      completed(await http.post(`${pools}/${POOL}/actions/stop`, {}, WAIT), 'pool.stop');
      const key = `undef-${randomUUID()}`;
      const res = await http.del(`${pools}/${POOL}`, { ...WAIT, 'idempotency-key': key });
      const job = completed(res, 'pool.undefine');
      assert.equal(job.result.changed, true);
      expectProblem(await http.get(`${pools}/${POOL}`), 404, 'NOT_FOUND');
      assert.equal(await exists(path.join(pooldir, 'sideload.qcow2')), true, 'files stay');
      assert.equal(
        (await http.del(`${pools}/${POOL}`, { 'idempotency-key': key })).body.id,
        job.id,
      );
      expectProblem(await http.del(`${pools}/${POOL}`), 404, 'NOT_FOUND');
    });
  });

  describe('handlers run again, as after a crash (each handler twice, in this process)', () => {
    const processor = new StorageProcessor(new PathConfinement(testConfig(prefix)));
    const run = async <T extends JobType>(type: T, params: QueuedJob<T>['params']) =>
      (
        processor.handlers as unknown as Record<
          string,
          (ctx: JobContext<T>) => Promise<Record<string, unknown>>
        >
      )[type]!({
        job: {
          jobId: randomUUID(),
          type,
          target: { host: 'local', uuid: null, name: null },
          params,
          requestId: 't',
          access: { role: 'admin', scopes: null },
        },
        host: { name: 'local', uri: 'qemu:///system' },
        client: qemu,
        dom: null,
      } as unknown as JobContext<T>);

    it('finds what the first run did and does not apply it twice', async () => {
      const name = `${tag}-rerun`;
      const uuid = randomUUID();
      const dir = path.join(tmp.dir, 'rerun');
      const xml = buildXml({
        name: 'pool',
        attrs: { type: 'dir' },
        children: [
          { name: 'name', text: name },
          { name: 'uuid', text: uuid },
          { name: 'target', children: [{ name: 'path', text: dir }] },
        ],
      });
      assert.equal((await run('pool.define', { pool: name, uuid, xml })).changed, true);
      assert.equal((await run('pool.define', { pool: name, uuid, xml })).changed, false);
      assert.equal((await run('pool.start', { pool: name, uuid, build: true })).changed, true);
      assert.equal((await run('pool.start', { pool: name, uuid, build: true })).changed, false);
      const { pool } = await qemu.rpc.storagePoolLookupByName({ name });
      const create = {
        pool: name,
        poolUuid: uuid,
        volume: 'v.qcow2',
        xml: buildXml({
          name: 'volume',
          children: [
            { name: 'name', text: 'v.qcow2' },
            { name: 'capacity', attrs: { unit: 'bytes' }, text: MiB },
            { name: 'target', children: [{ name: 'format', attrs: { type: 'qcow2' } }] },
          ],
        }),
        format: 'qcow2' as const,
        capacityBytes: MiB,
        backing: null,
      };
      // (A volume.create run again after a crash: job-recovery.test.ts, through a killed worker.)
      assert.equal((await run('volume.create', create)).changed, true);
      // A volume of that name that is not what was asked for is someone else's.
      await assert.rejects(run('volume.create', { ...create, capacityBytes: 2 * MiB }), /already/);
      const del = {
        pool: name,
        poolUuid: uuid,
        volume: 'v.qcow2',
        path: path.join(dir, 'v.qcow2'),
      };
      assert.equal((await run('volume.delete', del)).changed, true);
      assert.equal((await run('volume.delete', del)).changed, false);
      assert.equal((await run('pool.stop', { pool: name, uuid })).changed, true);
      assert.equal((await run('pool.stop', { pool: name, uuid })).changed, false);
      assert.equal((await run('pool.undefine', { pool: name, uuid })).changed, true);
      assert.equal((await run('pool.undefine', { pool: name, uuid })).changed, false);
      await assert.rejects(
        qemu.rpc.storagePoolGetInfo({ pool }),
        (err: unknown) => err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_STORAGE_POOL',
      );
    });
  });
});
