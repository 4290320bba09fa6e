/**
 * External disk-only snapshots as jobs, over REST, on a TCG domain with two
 * qcow2 disks (one on a 2-image chain): overlays placed by default and where
 * asked, on a running and on a shut-off domain, with and without libvirt's
 * metadata. The chains the job reports are checked against the live XML and
 * `qemu-img info --backing-chain`, the data written into the layers before
 * against qemu-io reads through the new overlays; then every refusal, and an
 * Idempotency-Key replay (a snapshot's recovery through a killed worker:
 * job-recovery.test.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import {
  DomainBlockCommitFlags,
  DomainXmlFlags,
  LibvirtClient,
  type RemoteDomain,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import { parseDomainXml } from '#src/xml/domain-xml.js';
import { buildXml } from '#src/xml/xml.js';
import { liveChain } from '../support/domain-xml.js';
import {
  backingChain,
  createChain,
  hasPattern,
  makeImageDir,
  qemuImg,
  writePattern,
} from '../support/qemu-images.js';
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
const ADMIN = 'snapshots-test-admin-token-0123456789';
const tag = `vgsnap-${randomUUID().slice(0, 6)}`;

interface ChainImage {
  depth: number;
  index: number | null;
  ref: string | null;
  path: string | null;
  format: string | null;
}
interface Disk {
  target: string;
  chain: ChainImage[];
  persistentChainDiffers: boolean;
}
interface Job {
  id: string;
  type: string;
  state: string;
  disk: string | null;
  result: {
    name: string;
    metadata: boolean;
    changed: boolean;
    overlays: { target: string; path: string }[];
    disks: Disk[];
  } | null;
  error: { code: string; message: string; libvirtCode: string | null } | null;
}

function twoDiskDomainXml(name: string, vda: string, vdb: string): string {
  const disk = (file: string, dev: string) => ({
    name: 'disk',
    attrs: { type: 'file', device: 'disk' },
    children: [
      { name: 'driver', attrs: { name: 'qemu', type: 'qcow2' } },
      { name: 'source', attrs: { file } },
      { name: 'target', attrs: { dev, bus: 'virtio' } },
    ],
  });
  return buildXml({
    name: 'domain',
    attrs: { type: 'qemu' },
    children: [
      { name: 'name', text: name },
      { name: 'memory', attrs: { unit: 'MiB' }, text: 64 },
      { name: 'vcpu', text: 1 },
      {
        name: 'os',
        children: [{ name: 'type', attrs: { arch: 'x86_64', machine: 'pc' }, text: 'hvm' }],
      },
      {
        name: 'devices',
        children: [
          { name: 'emulator', text: '/usr/bin/qemu-system-x86_64' },
          disk(vda, 'vda'),
          disk(vdb, 'vdb'),
        ],
      },
    ],
  });
}

describe('domain snapshots', () => {
  let t: TestApp;
  let qemu: LibvirtClient;
  let images: { dir: string; remove(): Promise<void> };
  let volumes: { dir: string; remove(): Promise<void> };
  let pool: RemoteStoragePool | null = null;
  let dom: RemoteDomain;
  const name = `${tag}-vm`;
  let base: string;
  let top: string;
  let data: string;

  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object, headers: Record<string, string> = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).set(headers).send(body),
  };
  const snapshot = (body: object, headers: Record<string, string> = {}) =>
    http.post(`/v1/hosts/local/domains/${name}/snapshots`, body, headers);

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

  /** The chain a job reported for `target` equals the live XML's and qemu-img's. */
  async function checkChain(disk: Disk, expected: string[]): Promise<void> {
    const live = liveChain((await qemu.rpc.domainGetXmlDesc({ dom, flags: 0 })).xml, disk.target);
    assert.deepEqual(
      disk.chain.map((c) => c.path),
      expected,
    );
    assert.deepEqual(
      disk.chain.map((c) => [c.path, c.index, c.format]),
      live.map((c) => [c.path, c.index, c.format]),
      'the reported chain is the live one, with its indexes',
    );
    disk.chain.forEach((c, depth) => {
      assert.equal(c.depth, depth);
      assert.equal(c.ref, `${disk.target}[${c.index}]`);
    });
    assert.deepEqual(
      (await backingChain(expected[0]!)).map((i) => i.filename),
      expected,
      'qemu-img agrees',
    );
  }

  before(async () => {
    qemu = await LibvirtClient.connect('qemu:///system');
    images = await makeImageDir(tag);
    volumes = await makeImageDir(`${tag}-vols`);
    [base, top] = (await createChain(images.dir, ['base', 'top'])) as [string, string];
    [data] = (await createChain(images.dir, ['data'])) as [string];
    await writePattern(base, 0x11, 0);
    await writePattern(top, 0x22, 1);
    await writePattern(data, 0x33, 2);
    ({ dom } = await qemu.rpc.domainDefineXmlFlags({
      xml: twoDiskDomainXml(name, top, data),
      flags: 0,
    }));
    await qemu.rpc.domainCreateWithFlags({ dom, flags: 0 });
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
  });

  after(async () => {
    await closeAllApps();
    await qemu.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
    await qemu.rpc.domainUndefineFlags({ dom, flags: 2 }).catch(() => undefined);
    if (pool) {
      await qemu.rpc.storagePoolDestroy({ pool }).catch(() => undefined);
      await qemu.rpc.storagePoolUndefine({ pool }).catch(() => undefined);
    }
    await qemu.close();
    await images.remove();
    await volumes.remove();
    await deleteKeys(prefix);
  });

  it('snapshots every writable disk of a running domain next to its top image, without metadata by default', async () => {
    const res = await snapshot({ name: 's1' }, { prefer: 'wait=30' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
    const job = res.body as Job;
    assert.equal(job.type, 'domain.snapshot');
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    assert.equal(job.disk, null, 'two disks: no single disk on the job');
    const s1Top = path.join(images.dir, 'top.s1.qcow2');
    const s1Data = path.join(images.dir, 'data.s1.qcow2');
    assert.deepEqual(job.result!.overlays, [
      { target: 'vda', path: s1Top },
      { target: 'vdb', path: s1Data },
    ]);
    assert.equal(job.result!.metadata, false);
    assert.equal(job.result!.changed, true);
    const [vda, vdb] = job.result!.disks;
    assert.equal(vda!.target, 'vda');
    await checkChain(vda!, [s1Top, top, base]);
    await checkChain(vdb!, [s1Data, data]);
    assert.equal(vda!.persistentChainDiffers, false, 'libvirt updated the persistent definition');
    const def = parseDomainXml(
      (await qemu.rpc.domainGetXmlDesc({ dom, flags: DomainXmlFlags.INACTIVE })).xml,
    );
    assert.deepEqual(
      def.disks.map((d) => d.chain[0]?.source.path),
      [s1Top, s1Data],
    );
    // The disks view the API serves agrees with the job's result.
    const view = (await http.get(`/v1/hosts/local/domains/${name}/disks`)).body as Disk[];
    assert.deepEqual(
      view.map((d) => d.chain.map((c) => c.ref)),
      job.result!.disks.map((d) => d.chain.map((c) => c.ref)),
    );
    assert.deepEqual((await http.get(`/v1/hosts/local/domains/${name}/snapshots`)).body, []);
    // Nothing written before is lost: read it through the new tops (paused, so QEMU has flushed).
    await qemu.rpc.domainSuspend({ dom });
    try {
      assert.ok(await hasPattern(s1Top, 0x11, 0), 'base layer data through the overlay');
      assert.ok(await hasPattern(s1Top, 0x22, 1), 'top layer data through the overlay');
      assert.ok(await hasPattern(s1Data, 0x33, 2), 'data disk through its overlay');
    } finally {
      await qemu.rpc.domainResume({ dom });
    }
  });

  it("snapshots one disk where asked, into libvirt's metadata when asked", async () => {
    // A path with a detour: the gateway works with it normalized.
    const overlay = `${images.dir}/elsewhere/../vda-s2.qcow2`;
    const res = await snapshot(
      {
        name: 's2',
        description: 'only vda',
        metadata: true,
        disks: [{ target: 'vda', path: overlay }],
      },
      { prefer: 'wait=30' },
    );
    const job = res.body as Job;
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    assert.equal(job.disk, 'vda');
    assert.equal(job.result!.disks.length, 1);
    await checkChain(job.result!.disks[0]!, [
      path.join(images.dir, 'vda-s2.qcow2'),
      path.join(images.dir, 'top.s1.qcow2'),
      top,
      base,
    ]);
    const vdb = (await http.get(`/v1/hosts/local/domains/${name}/disks/vdb`)).body as Disk;
    assert.equal(vdb.chain[0]!.path, path.join(images.dir, 'data.s1.qcow2'), 'vdb untouched');
    const listed = (await http.get(`/v1/hosts/local/domains/${name}/snapshots`)).body;
    assert.deepEqual(
      listed.map((s: { name: string; description: string; state: string }) => [
        s.name,
        s.description,
        s.state,
      ]),
      [['s2', 'only vda', 'disk-snapshot']],
    );
  });

  it('refuses at once what cannot work, naming the field', async () => {
    const cases: [object, number, string, string?][] = [
      [{ disks: [{ target: 'vdz' }] }, 400, 'INVALID_ARGUMENT', 'disks.0.target'],
      [
        { disks: [{ target: 'vda' }, { target: 'vda' }] },
        400,
        'INVALID_ARGUMENT',
        'disks.1.target',
      ],
      [{ disks: [] }, 400, 'INVALID_ARGUMENT', 'disks'],
      [{ disks: [{ target: 'vda', path: 'rel.qcow2' }] }, 400, 'INVALID_ARGUMENT', 'disks.0.path'],
      [
        {
          disks: [
            { target: 'vda', path: '/tmp/same.qcow2' },
            { target: 'vdb', path: '/tmp/same.qcow2' },
          ],
        },
        400,
        'INVALID_ARGUMENT',
        'disks.1.path',
      ],
      [{ name: 'bad/name' }, 400, 'INVALID_ARGUMENT', 'name'],
      [{ metadata: 'yes' }, 400, 'INVALID_ARGUMENT', 'metadata'],
      [{ bogus: 1 }, 400, 'INVALID_ARGUMENT', 'bogus'],
      // An image the domain uses, or a name libvirt's metadata has already.
      [{ disks: [{ target: 'vdb', path: base }] }, 409, 'ALREADY_EXISTS'],
      [{ name: 's2', metadata: true, disks: [{ target: 'vdb' }] }, 409, 'ALREADY_EXISTS'],
    ];
    for (const [body, status, code, field] of cases) {
      const res = await snapshot(body);
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      expectProblem(res, status, code, field);
    }
    expectProblem(
      await http.post(`/v1/hosts/local/domains/${tag}-nope/snapshots`, {}),
      404,
      'NOT_FOUND',
    );
  });

  it('refuses an overlay path that is a storage volume at once', async () => {
    await qemuImg('create', '-q', '-f', 'qcow2', path.join(volumes.dir, 'taken.qcow2'), '1M');
    ({ pool } = await qemu.rpc.storagePoolDefineXml({
      xml: buildXml({
        name: 'pool',
        attrs: { type: 'dir' },
        children: [
          { name: 'name', text: `${tag}-pool` },
          { name: 'target', children: [{ name: 'path', text: volumes.dir }] },
        ],
      }),
      flags: 0,
    }));
    await qemu.rpc.storagePoolCreate({ pool, flags: 0 });
    const res = await snapshot({
      disks: [{ target: 'vdb', path: path.join(volumes.dir, 'taken.qcow2') }],
    });
    expectProblem(res, 409, 'ALREADY_EXISTS');
    assert.match(res.body.detail, /storage volume/);
  });

  it('fails the job, changing nothing, when a file libvirt does not know exists at the overlay path', async () => {
    const stray = path.join(images.dir, 'stray.qcow2');
    await writeFile(stray, 'not an image, and not to be overwritten');
    const before = (await http.get(`/v1/hosts/local/domains/${name}/disks`)).body as Disk[];
    const res = await snapshot(
      { name: 's3', disks: [{ target: 'vdb' }, { target: 'vda', path: stray }] },
      { prefer: 'wait=30' },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.state, 'failed');
    assert.equal(res.body.error.code, 'ALREADY_EXISTS', JSON.stringify(res.body.error));
    assert.equal(res.body.error.libvirtCode, 'VIR_ERR_CONFIG_UNSUPPORTED');
    const after = (await http.get(`/v1/hosts/local/domains/${name}/disks`)).body as Disk[];
    assert.deepEqual(
      after.map((d) => d.chain.map((c) => c.path)),
      before.map((d) => d.chain.map((c) => c.path)),
      'atomic: vdb did not get its overlay either',
    );
  });

  it('refuses a disk that has a block job running (409 CONFLICT)', async () => {
    // An active commit with nothing to pivot to stays in libvirt until it is aborted.
    await qemu.rpc.domainBlockCommit({
      dom,
      disk: 'vdb',
      base: null,
      top: null,
      bandwidth: 1n,
      flags: DomainBlockCommitFlags.ACTIVE | DomainBlockCommitFlags.SHALLOW,
    });
    try {
      const res = await snapshot({ disks: [{ target: 'vdb' }] });
      expectProblem(res, 409, 'CONFLICT');
      assert.match(res.body.detail, /block job/);
    } finally {
      await qemu.rpc.domainBlockJobAbort({ dom, path: 'vdb', flags: 0 });
      // The abort ends the job asynchronously: the next tests need vdb free of it.
      await waitFor(
        async () =>
          (await qemu.rpc.domainGetBlockJobInfo({ dom, path: 'vdb', flags: 0 })).found === 0,
        'libvirt to end the aborted block job on vdb',
      );
    }
  });

  it('snapshots a shut-off domain (libvirt makes the overlay and updates the definition)', async () => {
    await qemu.rpc.domainDestroyFlags({ dom, flags: 0 });
    const res = await snapshot({ name: 'off', disks: [{ target: 'vdb' }] }, { prefer: 'wait=30' });
    const job = res.body as Job;
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    const overlay = path.join(images.dir, 'data.s1.off.qcow2');
    assert.equal(job.result!.disks[0]!.chain[0]!.path, overlay);
    assert.deepEqual(
      (await backingChain(overlay)).map((i) => i.filename),
      [overlay, path.join(images.dir, 'data.s1.qcow2'), data],
    );
    assert.ok(await hasPattern(overlay, 0x33, 2), 'the data disk reads the same through it');
  });

  it('gives back the same job for an Idempotency-Key, and snapshots once', async () => {
    const key = `snap-${randomUUID()}`;
    const first = await snapshot(
      { name: 'idem', disks: [{ target: 'vdb' }] },
      { 'idempotency-key': key },
    );
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const done = await finished(first.body.id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const again = await snapshot(
      { name: 'idem', disks: [{ target: 'vdb' }] },
      { 'idempotency-key': key },
    );
    assert.equal(again.body.id, first.body.id);
    expectProblem(
      await snapshot({ name: 'idem2', disks: [{ target: 'vdb' }] }, { 'idempotency-key': key }),
      422,
      'IDEMPOTENCY_MISMATCH',
    );
    // The replay took no second snapshot: one overlay more on vdb, not two.
    const chain = (await http.get(`/v1/hosts/local/domains/${name}/disks/vdb`)).body as Disk;
    assert.equal(chain.chain[0]!.path, path.join(images.dir, 'data.s1.off.idem.qcow2'));
    assert.equal(
      (await backingChain(chain.chain[0]!.path!)).length,
      4,
      'the keyed request snapshotted once',
    );
  });
});
