/**
 * Storage pools and volumes over REST against real Redis and libvirtd: a dir
 * pool made for the test outside the gateway (qcow2 volumes, one backed by
 * another, and a raw one), checked against libvirt, `virsh` and `qemu-img`;
 * an inactive pool; the test driver's default-pool; pagination; the errors.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import request from 'supertest';
import { LibvirtClient, type RemoteStoragePool } from '#src/libvirt/index.js';
import { buildXml } from '#src/xml/xml.js';
import { makeImageDir, qemuImg, writePattern } from '../support/qemu-images.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const run = promisify(execFile);
const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'storage-test-admin-token-0123456789';
const QEMU_URI = 'qemu:///system';
const TEST_URI = 'test+tcp://127.0.0.1/default';
const TEST_HOST = 'testdrv';
const tag = `vgtest-${process.pid}-${Date.now().toString(36)}`;
const POOL = `${tag}-dir`;
const INACTIVE_POOL = `${tag}-off`;
const TEST_VOLUME = `${tag}.img`;
const MiB = 1024 * 1024;

interface QemuImgInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'actual-size': number;
  'backing-filename'?: string;
  'backing-filename-format'?: string;
}

interface Volume {
  name: string;
  key: string;
  path: string | null;
  type: string | null;
  format: string | null;
  capacityBytes: number;
  allocationBytes: number;
  physicalBytes: number | null;
  backingStore: { path: string | null; format: string | null } | null;
}

function dirPoolXml(name: string, dir: string): string {
  return buildXml({
    name: 'pool',
    attrs: { type: 'dir' },
    children: [
      { name: 'name', text: name },
      { name: 'target', children: [{ name: 'path', text: dir }] },
    ],
  });
}

function testVolumeXml(name: string, capacityMiB: number): string {
  return buildXml({
    name: 'volume',
    children: [
      { name: 'name', text: name },
      { name: 'capacity', attrs: { unit: 'MiB' }, text: capacityMiB },
      { name: 'target', children: [{ name: 'format', attrs: { type: 'qcow2' } }] },
    ],
  });
}

async function qemuImgInfo(file: string): Promise<QemuImgInfo> {
  return JSON.parse(await qemuImg('info', '-U', '--output=json', file)) as QemuImgInfo;
}

describe('storage pools', () => {
  let t: TestApp;
  /** Read-write connections of the test's own, for what the gateway cannot do yet. */
  let qemu: LibvirtClient;
  let testDriver: LibvirtClient;
  let dir: string;
  let inactiveDir: string;
  let pool: RemoteStoragePool;
  /** Undo steps, run in reverse in after() whatever happened before. */
  const cleanups: Array<() => Promise<unknown>> = [];

  const get = (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`);

  before(async () => {
    qemu = await LibvirtClient.connect(QEMU_URI);
    cleanups.push(() => qemu.close());

    const images = await makeImageDir(POOL);
    dir = images.dir;
    cleanups.push(images.remove);
    ({ pool } = await qemu.rpc.storagePoolDefineXml({ xml: dirPoolXml(POOL, dir), flags: 0 }));
    cleanups.push(() => qemu.rpc.storagePoolUndefine({ pool }));
    await qemu.rpc.storagePoolCreate({ pool, flags: 0 });
    cleanups.push(() => qemu.rpc.storagePoolDestroy({ pool }));
    // base.qcow2 (16 MiB) <- top.qcow2 (32 MiB, 1 MiB written), and a raw image
    const base = path.join(dir, 'base.qcow2');
    const top = path.join(dir, 'top.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', base, '16M');
    await qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top, '32M');
    await writePattern(top, 0x5a, 3);
    await qemuImg('create', '-q', '-f', 'raw', path.join(dir, 'disk.raw'), '4M');
    await qemu.rpc.storagePoolRefresh({ pool, flags: 0 });

    const off = await makeImageDir(INACTIVE_POOL);
    inactiveDir = off.dir;
    cleanups.push(off.remove);
    const { pool: inactive } = await qemu.rpc.storagePoolDefineXml({
      xml: dirPoolXml(INACTIVE_POOL, inactiveDir),
      flags: 0,
    });
    cleanups.push(() => qemu.rpc.storagePoolUndefine({ pool: inactive }));

    // The test driver's state lives while a connection to it is open: this one holds it.
    testDriver = await LibvirtClient.connect(TEST_URI);
    cleanups.push(() => testDriver.close());
    const { pool: defaultPool } = await testDriver.rpc.storagePoolLookupByName({
      name: 'default-pool',
    });
    const { vol } = await testDriver.rpc.storageVolCreateXml({
      pool: defaultPool,
      xml: testVolumeXml(TEST_VOLUME, 8),
      flags: 0,
    });
    cleanups.push(() => testDriver.rpc.storageVolDelete({ vol, flags: 0 }));

    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    for (const [name, uri] of [
      [TEST_HOST, TEST_URI],
      ['closed-port', 'qemu+tcp://127.0.0.1:1/system'],
    ]) {
      const res = await request(t.server)
        .post('/v1/hosts')
        .set('authorization', `Bearer ${ADMIN}`)
        .send({ name, uri });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
    for (const undo of cleanups.reverse()) {
      await undo().catch((err: unknown) => console.error('cleanup:', err));
    }
  });

  it('lists the dir pool as libvirt and the filesystem see it, sorted by name', async () => {
    const res = await get('/v1/hosts/local/pools?limit=500');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const names: string[] = res.body.items.map((p: { name: string }) => p.name);
    assert.deepEqual(names, [...names].sort(), 'sorted by name');
    const listed = res.body.items.find((p: { name: string }) => p.name === POOL);
    assert.ok(listed, `${POOL} in ${names.join(', ')}`);

    const info = await qemu.rpc.storagePoolGetInfo({ pool });
    const uuid = (await run('virsh', ['-c', QEMU_URI, 'pool-uuid', POOL])).stdout.trim();
    const fs = await statfs(dir);
    assert.deepEqual(listed, {
      name: POOL,
      uuid,
      type: 'dir',
      state: 'running',
      persistent: true,
      autostart: false,
      path: dir,
      source: { hosts: [], devices: [], dir: null, name: null, format: null },
      capacityBytes: Number(info.capacity),
      allocationBytes: Number(info.allocation),
      availableBytes: Number(info.available),
    });
    assert.equal(listed.capacityBytes, fs.blocks * fs.bsize, 'the size of the filesystem');
    assert.ok(listed.availableBytes > 0 && listed.availableBytes < listed.capacityBytes);

    const one = await get(`/v1/hosts/local/pools/${POOL}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, listed);
  });

  it('shows an inactive pool, and refuses to list its volumes with 409', async () => {
    const res = await get(`/v1/hosts/local/pools/${INACTIVE_POOL}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.state, 'inactive');
    assert.equal(res.body.persistent, true);
    assert.equal(res.body.path, inactiveDir);
    assert.equal(res.body.capacityBytes, 0);
    for (const url of [
      `/v1/hosts/local/pools/${INACTIVE_POOL}/volumes`,
      `/v1/hosts/local/pools/${INACTIVE_POOL}/volumes/any.qcow2`,
    ]) {
      const refused = await get(url);
      assert.equal(refused.status, 409, `${url}: ${JSON.stringify(refused.body)}`);
      assert.match(refused.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(refused.body.code, 'INVALID_STATE');
      assert.match(refused.body.detail, new RegExp(`'${INACTIVE_POOL}' .*is not active`));
    }
  });

  it('lists the volumes with the sizes, formats and backing store qemu-img reports', async () => {
    const res = await get(`/v1/hosts/local/pools/${POOL}/volumes`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.nextCursor, null);
    const volumes = res.body.items as Volume[];
    assert.deepEqual(
      volumes.map((v) => v.name),
      ['base.qcow2', 'disk.raw', 'top.qcow2'],
    );
    for (const v of volumes) {
      const file = path.join(dir, v.name);
      const img = await qemuImgInfo(file);
      const st = await stat(file);
      assert.deepEqual(
        v,
        {
          name: v.name,
          key: file,
          path: file,
          type: 'file',
          format: img.format,
          capacityBytes: img['virtual-size'],
          allocationBytes: img['actual-size'],
          physicalBytes: st.size,
          backingStore: img['backing-filename']
            ? { path: img['backing-filename'], format: img['backing-filename-format'] ?? null }
            : null,
        },
        v.name,
      );
    }
    const [base, raw, top] = volumes;
    assert.equal(base!.format, 'qcow2');
    assert.equal(base!.capacityBytes, 16 * MiB);
    assert.equal(raw!.format, 'raw');
    assert.equal(raw!.capacityBytes, 4 * MiB);
    assert.equal(top!.capacityBytes, 32 * MiB);
    assert.ok(top!.allocationBytes > MiB, 'the 1 MiB written into top is allocated');
    assert.deepEqual(top!.backingStore, { path: path.join(dir, 'base.qcow2'), format: 'qcow2' });
    assert.equal(base!.backingStore, null);

    for (const v of volumes) {
      const one = await get(`/v1/hosts/local/pools/${POOL}/volumes/${v.name}`);
      assert.equal(one.status, 200, JSON.stringify(one.body));
      assert.deepEqual(one.body, v);
    }
  });

  it('walks every volume exactly once with limit=1', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: request.Response = await get(
        `/v1/hosts/local/pools/${POOL}/volumes?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.items.length, 1);
      seen.push(...res.body.items.map((v: { name: string }) => v.name));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    assert.deepEqual(seen, ['base.qcow2', 'disk.raw', 'top.qcow2']);
    assert.equal(pages, 3);
  });

  it('walks the pools with limit=1, each of them once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: request.Response = await get(
        `/v1/hosts/local/pools?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.ok(res.body.items.length <= 1);
      seen.push(...res.body.items.map((p: { name: string }) => p.name));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 200);
    assert.equal(new Set(seen).size, seen.length, `no pool twice: ${seen.join(', ')}`);
    assert.deepEqual(seen, [...seen].sort());
    assert.ok(seen.includes(POOL) && seen.includes(INACTIVE_POOL), seen.join(', '));
  });

  it("shows the test driver's default-pool and its volumes", async () => {
    const list = await get(`/v1/hosts/${TEST_HOST}/pools`);
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.ok(list.body.items.some((p: { name: string }) => p.name === 'default-pool'));

    const res = await get(`/v1/hosts/${TEST_HOST}/pools/default-pool`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const p = res.body;
    assert.equal(p.uuid, 'dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566');
    assert.equal(p.type, 'dir');
    assert.equal(p.state, 'running');
    assert.equal(p.persistent, true);
    assert.equal(p.autostart, false);
    assert.equal(p.path, '/default-pool');
    assert.equal(p.capacityBytes, 100 * 1024 * MiB);
    assert.ok(p.allocationBytes >= 8 * MiB, 'holds at least our 8 MiB volume');
    assert.equal(p.allocationBytes + p.availableBytes, p.capacityBytes);

    const vols = await get(`/v1/hosts/${TEST_HOST}/pools/default-pool/volumes?limit=500`);
    assert.equal(vols.status, 200, JSON.stringify(vols.body));
    const vol = (vols.body.items as Volume[]).find((v) => v.name === TEST_VOLUME);
    assert.deepEqual(vol, {
      name: TEST_VOLUME,
      key: `/default-pool/${TEST_VOLUME}`,
      path: `/default-pool/${TEST_VOLUME}`,
      type: 'file',
      format: 'qcow2',
      capacityBytes: 8 * MiB,
      allocationBytes: 8 * MiB,
      physicalBytes: null,
      backingStore: null,
    });
    const one = await get(`/v1/hosts/${TEST_HOST}/pools/default-pool/volumes/${TEST_VOLUME}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, vol);
  });

  it('answers 404 NOT_FOUND for an unknown host, pool or volume', async () => {
    for (const [url, detail] of [
      ['/v1/hosts/no-such-host/pools', /no-such-host/],
      ['/v1/hosts/no-such-host/pools/default', /no-such-host/],
      ['/v1/hosts/no-such-host/pools/default/volumes', /no-such-host/],
      ['/v1/hosts/no-such-host/pools/default/volumes/x.qcow2', /no-such-host/],
      [`/v1/hosts/local/pools/${tag}-none`, /no storage pool named '.*-none' on host 'local'/],
      [`/v1/hosts/local/pools/${tag}-none/volumes`, /no storage pool named/],
      [`/v1/hosts/local/pools/${tag}-none/volumes/x.qcow2`, /no storage pool named/],
      [
        `/v1/hosts/local/pools/${POOL}/volumes/none.qcow2`,
        new RegExp(`no volume named 'none.qcow2' in storage pool '${POOL}' on host 'local'`),
      ],
      [`/v1/hosts/${TEST_HOST}/pools/default-pool/volumes/${tag}-none`, /no volume named/],
    ] as const) {
      const res = await get(url);
      assert.equal(res.status, 404, `${url}: ${JSON.stringify(res.body)}`);
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, 'NOT_FOUND', url);
      assert.match(res.body.detail, detail, url);
    }
  });

  it('refuses a bad limit or cursor with 400, naming the field', async () => {
    for (const base of ['/v1/hosts/local/pools', `/v1/hosts/local/pools/${POOL}/volumes`]) {
      for (const query of [
        'limit=0',
        'limit=501',
        'limit=abc',
        'cursor=not-a-cursor!',
        'cursor=eyJ4IjoxfQ',
      ]) {
        const res = await get(`${base}?${query}`);
        assert.equal(res.status, 400, `${base}?${query}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, 'INVALID_ARGUMENT');
        assert.equal(res.body.errors[0].field, query.split('=')[0], `${base}?${query}`);
      }
    }
  });

  it('answers 503 with Retry-After for an unreachable host, from its open breaker', async () => {
    // Registered in before(): its connection was refused, which opened the breaker.
    const opened = (await get('/v1/hosts/closed-port')).body.connection;
    assert.equal(opened.state, 'unreachable');
    assert.match(opened.lastError, /ECONNREFUSED/);
    for (const url of [
      '/v1/hosts/closed-port/pools',
      '/v1/hosts/closed-port/pools/default',
      '/v1/hosts/closed-port/pools/default/volumes',
      '/v1/hosts/closed-port/pools/default/volumes/x.qcow2',
    ]) {
      const res = await get(url);
      assert.equal(res.status, 503, `${url}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'HOST_UNREACHABLE');
      assert.match(res.headers['retry-after'] ?? '', /^\d+$/);
      assert.match(res.body.detail, /host 'closed-port' is unreachable: .*ECONNREFUSED/);
    }
    // No request tried the host: an attempt would have passed through 'connecting',
    // renewing `since` (the probe's failures leave it as it was).
    const later = (await get('/v1/hosts/closed-port')).body.connection;
    assert.equal(later.state, 'unreachable');
    assert.equal(later.since, opened.since);
  });
});
