/**
 * Defining and undefining domains as jobs, over REST, against real libvirtd:
 * a spec built into XML on the QEMU driver (disks from a pool volume and from
 * paths, interfaces, defaults from the host's capabilities) and booted under
 * TCG; raw XML (admins) on the test driver; the refusals at request time
 * (400 naming fields, 403, 404, 409) and libvirt's at job time; undefine's
 * options and refusals; Idempotency-Key replays (also of an undefine whose
 * domain is gone). (Define and undefine run again after a worker crash:
 * job-recovery.test.ts, through a killed worker.)
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import {
  DomainXmlFlags,
  LibvirtClient,
  LibvirtError,
  type RemoteDomain,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import { parseDomainXml } from '#src/xml/domain-xml.js';
import { attr, buildXml, child, parseXml, path as xpath, text } from '#src/xml/xml.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { makeImageDir, qemuImg } from '../support/qemu-images.js';
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
import { waitFor } from '../support/wait.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'definitions-test-admin-token-0123456789';
const USER = 'definitions-test-user-token-0123456789';
const QEMU_URI = 'qemu:///system';
const TEST_URI = 'test+tcp://127.0.0.1/default';
const tag = `vgdef-${randomUUID().slice(0, 6)}`;

interface Job {
  id: string;
  type: string;
  state: string;
  domain: string | null;
  domainUuid: string | null;
  resolved: Record<string, unknown>;
  result: Record<string, unknown> | null;
  error: { code: string; message: string; libvirtCode: string | null } | null;
}

describe('domain definitions', () => {
  let t: TestApp;
  let qemu: LibvirtClient;
  let testdrv: LibvirtClient;
  let images: { dir: string; remove(): Promise<void> };
  let pool: RemoteStoragePool;
  let offPool: RemoteStoragePool;
  const POOL = `${tag}-pool`;
  const OFF_POOL = `${tag}-off`;

  const as = (token: string) => ({
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${token}`),
    post: (url: string, body: object, headers: Record<string, string> = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${token}`).set(headers).send(body),
    del: (url: string, headers: Record<string, string> = {}) =>
      request(t.server).delete(url).set('authorization', `Bearer ${token}`).set(headers),
  });
  const http = as(ADMIN);

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

  function expectProblem(
    res: request.Response,
    status: number,
    code: string,
    field?: string,
  ): void {
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

  async function lookup(client: LibvirtClient, name: string): Promise<RemoteDomain | null> {
    try {
      return (await client.rpc.domainLookupByName({ name })).dom;
    } catch (err) {
      if (err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_DOMAIN') return null;
      throw err;
    }
  }

  before(async () => {
    await storeToken(prefix, USER, { id: 'user-1', role: 'operator' });
    qemu = await LibvirtClient.connect(QEMU_URI);
    testdrv = await LibvirtClient.connect(TEST_URI);
    images = await makeImageDir(tag);
    const poolXml = (name: string, dir: string): string =>
      buildXml({
        name: 'pool',
        attrs: { type: 'dir' },
        children: [
          { name: 'name', text: name },
          { name: 'target', children: [{ name: 'path', text: dir }] },
        ],
      });
    await qemuImg('create', '-q', '-f', 'qcow2', path.join(images.dir, 'boot.qcow2'), '16M');
    await qemuImg('create', '-q', '-f', 'raw', path.join(images.dir, 'data.raw'), '8M');
    ({ pool } = await qemu.rpc.storagePoolDefineXml({ xml: poolXml(POOL, images.dir), flags: 0 }));
    await qemu.rpc.storagePoolCreate({ pool, flags: 0 });
    ({ pool: offPool } = await qemu.rpc.storagePoolDefineXml({
      xml: poolXml(OFF_POOL, path.join(images.dir, 'off')),
      flags: 0,
    }));
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    await http.post('/v1/hosts', { name: 'test', uri: TEST_URI }).expect(201);
  });

  after(async () => {
    await closeAllApps();
    for (const client of [qemu, testdrv]) {
      const { domains } = await client.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
      for (const dom of domains.filter((d) => d.name.startsWith(tag))) {
        await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
        await client.rpc.domainUndefineFlags({ dom, flags: 2 }).catch(() => undefined);
      }
    }
    for (const p of [pool, offPool]) {
      if (!p) continue;
      await qemu.rpc.storagePoolDestroy({ pool: p }).catch(() => undefined);
      await qemu.rpc.storagePoolUndefine({ pool: p }).catch(() => undefined);
    }
    await qemu.close();
    await testdrv.close();
    await images.remove();
    await deleteKeys(prefix);
  });

  describe('from a spec (QEMU driver)', () => {
    const full = `${tag}-full`;
    const small = `${tag}-small`;

    it('builds the XML from the spec, the volume and the host capabilities, and defines it', async () => {
      const caps = (await http.get('/v1/hosts/local')).body.capabilities as {
        hostArch: string;
        guests: {
          arch: string;
          osType: string;
          domainTypes: string[];
          machines: string[];
          emulator: string;
        }[];
      };
      const res = await http.post(
        '/v1/hosts/local/domains',
        {
          name: full,
          memoryMiB: 64,
          vcpus: 2,
          description: 'made by the definitions test',
          disks: [
            { pool: POOL, volume: 'boot.qcow2' },
            { path: path.join(images.dir, 'data.raw'), format: 'raw', bus: 'sata' },
            {
              path: path.join(images.dir, 'boot.qcow2'),
              device: 'cdrom',
              readOnly: true,
              format: 'raw',
            },
          ],
          interfaces: [
            { network: 'default' },
            { bridge: 'br-vgtest', model: 'e1000', mac: '52:54:00:AB:CD:EF' },
          ],
        },
        { prefer: 'wait=30' },
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
      const job = res.body as Job;
      assert.equal(job.type, 'domain.define');
      assert.equal(job.state, 'completed', JSON.stringify(job.error));
      assert.equal(job.domain, full);
      assert.deepEqual(job.result, { uuid: job.domainUuid, name: full, changed: true });

      const dom = await lookup(qemu, full);
      assert.ok(dom, 'libvirt has the domain');
      const { xml } = await qemu.rpc.domainGetXmlDesc({ dom, flags: DomainXmlFlags.INACTIVE });
      const root = parseXml(xml);
      const parsed = parseDomainXml(xml);
      const x86 = caps.guests.find((g) => g.osType === 'hvm' && g.arch === caps.hostArch)!;
      assert.equal(parsed.type, x86.domainTypes.includes('kvm') ? 'kvm' : 'qemu');
      assert.equal(parsed.uuid, job.domainUuid);
      assert.equal(parsed.memoryBytes, 64 * 1024 * 1024);
      assert.equal(parsed.vcpus, 2);
      const osType = xpath(root, 'os', 'type');
      assert.equal(attr(osType, 'arch'), caps.hostArch);
      assert.equal(attr(osType, 'machine'), x86.machines[0]);
      assert.equal(text(xpath(root, 'devices', 'emulator')), x86.emulator);
      assert.ok(
        xpath(root, 'features', 'acpi'),
        'ACPI, so that a graceful shutdown reaches the guest',
      );
      assert.equal(text(child(root, 'description')), 'made by the definitions test');
      assert.deepEqual(
        parsed.disks.map((d) => [
          d.target,
          d.bus,
          d.device,
          d.chain[0]?.source.path,
          d.chain[0]?.format,
          d.readOnly,
        ]),
        [
          ['vda', 'virtio', 'disk', path.join(images.dir, 'boot.qcow2'), 'qcow2', false],
          ['sda', 'sata', 'disk', path.join(images.dir, 'data.raw'), 'raw', false],
          ['sdb', 'sata', 'cdrom', path.join(images.dir, 'boot.qcow2'), 'raw', true],
        ],
      );
      assert.deepEqual(
        parsed.interfaces.map((i) => [i.type, i.source, i.model]),
        [
          ['network', 'default', 'virtio'],
          ['bridge', 'br-vgtest', 'e1000'],
        ],
      );
      assert.equal(parsed.interfaces[1]!.mac, '52:54:00:ab:cd:ef');

      const view = (await http.get(`/v1/hosts/local/domains/${full}`)).body;
      assert.equal(view.state, 'shutoff');
      assert.equal(view.persistent, true);
    });

    it('defines a domain that boots under TCG (started with the lifecycle action)', async () => {
      await qemuImg('create', '-q', '-f', 'qcow2', path.join(images.dir, 'small.qcow2'), '16M');
      await qemu.rpc.storagePoolRefresh({ pool, flags: 0 });
      const res = await http.post(
        '/v1/hosts/local/domains',
        {
          name: small,
          type: 'qemu',
          memoryMiB: 64,
          vcpus: 1,
          disks: [{ pool: POOL, volume: 'small.qcow2' }],
        },
        { prefer: 'wait=30' },
      );
      assert.equal(res.body.state, 'completed', JSON.stringify(res.body));
      const start = await http.post(
        `/v1/hosts/local/domains/${small}/actions/start`,
        {},
        { prefer: 'wait=30' },
      );
      assert.equal(start.body.state, 'completed', JSON.stringify(start.body));
      assert.deepEqual(start.body.result, { state: 'running', changed: true });
      const disk = (await http.get(`/v1/hosts/local/domains/${small}/disks/vda`)).body;
      assert.equal(disk.chain[0].path, path.join(images.dir, 'small.qcow2'));
      assert.equal(disk.chain[0].format, 'qcow2');
    });

    it('refuses to undefine a running domain (it would become transient), then undefines it once stopped', async () => {
      const refused = await http.del(`/v1/hosts/local/domains/${small}`);
      expectProblem(refused, 409, 'INVALID_STATE');
      assert.match(refused.body.detail, /not shut off/);
      const stop = await http.post(
        `/v1/hosts/local/domains/${small}/actions/destroy`,
        {},
        { prefer: 'wait=30' },
      );
      assert.equal(stop.body.state, 'completed');
      const res = await http.del(`/v1/hosts/local/domains/${small}`);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
      assert.equal(res.body.type, 'domain.undefine');
      const job = await finished(res.body.id);
      assert.equal(job.state, 'completed', JSON.stringify(job.error));
      assert.equal(job.result?.changed, true);
      assert.equal(await lookup(qemu, small), null, 'libvirt no longer has it');
      expectProblem(await http.get(`/v1/hosts/local/domains/${small}`), 404, 'NOT_FOUND');
    });

    it('refuses a spec the host cannot satisfy, naming the field', async () => {
      const base = { name: `${tag}-bad`, memoryMiB: 64, vcpus: 1 };
      const cases: [object, number, string, string?][] = [
        [{ memoryMiB: 64 }, 400, 'INVALID_ARGUMENT', 'name'],
        [{ name: `${tag}-x` }, 400, 'INVALID_ARGUMENT', 'memoryMiB'],
        [{ ...base, name: 'bad/name' }, 400, 'INVALID_ARGUMENT', 'name'],
        [{ ...base, vcpus: 0 }, 400, 'INVALID_ARGUMENT', 'vcpus'],
        [{ ...base, type: 'xen' }, 400, 'INVALID_ARGUMENT', 'type'],
        [{ ...base, arch: 'sparc64' }, 400, 'INVALID_ARGUMENT', 'arch'],
        [{ ...base, machine: 'no-such-machine' }, 400, 'INVALID_ARGUMENT', 'machine'],
        [{ ...base, bogus: true }, 400, 'INVALID_ARGUMENT', 'bogus'],
        [{ ...base, disks: [{ bus: 'virtio' }] }, 400, 'INVALID_ARGUMENT', 'disks.0'],
        [
          { ...base, disks: [{ pool: POOL, volume: 'boot.qcow2', path: '/x' }] },
          400,
          'INVALID_ARGUMENT',
          'disks.0',
        ],
        [{ ...base, disks: [{ pool: POOL }] }, 400, 'INVALID_ARGUMENT', 'disks.0.volume'],
        [{ ...base, disks: [{ path: 'relative.img' }] }, 400, 'INVALID_ARGUMENT', 'disks.0.path'],
        [
          { ...base, disks: [{ path: '/nowhere/x.img' }] },
          400,
          'INVALID_ARGUMENT',
          'disks.0.format',
        ],
        [
          { ...base, disks: [{ pool: 'no-such-pool', volume: 'v' }] },
          400,
          'INVALID_ARGUMENT',
          'disks.0.pool',
        ],
        [
          { ...base, disks: [{ pool: POOL, volume: 'nope.qcow2' }] },
          400,
          'INVALID_ARGUMENT',
          'disks.0.volume',
        ],
        [{ ...base, disks: [{ pool: OFF_POOL, volume: 'boot.qcow2' }] }, 409, 'INVALID_STATE'],
        [
          {
            ...base,
            disks: [
              { path: '/a.img', format: 'raw', target: 'vdb' },
              { path: '/b.img', format: 'raw', target: 'vdb' },
            ],
          },
          400,
          'INVALID_ARGUMENT',
          'disks.1.target',
        ],
        [
          { ...base, disks: [{ path: '/a.img', format: 'vmdk' }] },
          400,
          'INVALID_ARGUMENT',
          'disks.0.format',
        ],
        [{ ...base, interfaces: [{ model: 'virtio' }] }, 400, 'INVALID_ARGUMENT', 'interfaces.0'],
        [
          { ...base, interfaces: [{ network: 'a', bridge: 'b' }] },
          400,
          'INVALID_ARGUMENT',
          'interfaces.0',
        ],
        [
          { ...base, interfaces: [{ network: 'default', mac: 'nope' }] },
          400,
          'INVALID_ARGUMENT',
          'interfaces.0.mac',
        ],
        [{ ...base, name: full }, 409, 'ALREADY_EXISTS'],
      ];
      for (const [body, status, code, field] of cases) {
        const res = await http.post('/v1/hosts/local/domains', body);
        assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
        expectProblem(res, status, code, field);
      }
      const fullUuid = (await http.get(`/v1/hosts/local/domains/${full}`)).body.uuid as string;
      expectProblem(
        await http.post('/v1/hosts/local/domains', { ...base, uuid: fullUuid }),
        409,
        'ALREADY_EXISTS',
      );
      expectProblem(await http.post('/v1/hosts/nohost/domains', base), 404, 'NOT_FOUND');
      // The test driver offers neither kvm nor qemu domains.
      expectProblem(
        await http.post('/v1/hosts/test/domains', { ...base, type: 'qemu' }),
        400,
        'INVALID_ARGUMENT',
        'type',
      );
      assert.equal(await lookup(qemu, `${tag}-bad`), null, 'nothing was defined');
    });
  });

  describe('from raw XML (test driver)', () => {
    it('defines it for an admin, adding a UUID when it has none', async () => {
      const name = `${tag}-raw`;
      const res = await http.post(
        '/v1/hosts/test/domains',
        { xml: testDriverDomainXml(name, 96) },
        { prefer: 'wait=10' },
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'completed', JSON.stringify(res.body.error));
      assert.equal(res.body.resolved.source, 'xml');
      const dom = await lookup(testdrv, name);
      assert.ok(dom);
      const uuid = parseDomainXml((await testdrv.rpc.domainGetXmlDesc({ dom, flags: 0 })).xml).uuid;
      assert.equal(res.body.domainUuid, uuid);
      assert.deepEqual(res.body.result, { uuid, name, changed: true });
    });

    it('keeps the UUID the XML gives', async () => {
      const name = `${tag}-rawid`;
      const uuid = randomUUID();
      const xml = buildXml({
        name: 'domain',
        attrs: { type: 'test' },
        children: [
          { name: 'name', text: name },
          { name: 'uuid', text: uuid.toUpperCase() },
          { name: 'memory', attrs: { unit: 'MiB' }, text: 64 },
          { name: 'os', children: [{ name: 'type', text: 'hvm' }] },
        ],
      });
      const res = await http.post('/v1/hosts/test/domains', { xml }, { prefer: 'wait=10' });
      assert.equal(res.body.state, 'completed', JSON.stringify(res.body));
      assert.equal(res.body.domainUuid, uuid);
      assert.equal((await http.get(`/v1/hosts/test/domains/${uuid}`)).body.name, name);
    });

    it('refuses raw XML to a non-admin, and malformed or incomplete XML, at once', async () => {
      const name = `${tag}-rawbad`;
      expectProblem(
        await as(USER).post('/v1/hosts/test/domains', { xml: testDriverDomainXml(name, 64) }),
        403,
        'FORBIDDEN',
      );
      const cases: [object, string][] = [
        [{ xml: '<domain type="test"><name>x</name>' }, 'xml'],
        [{ xml: 'not xml at all' }, 'xml'],
        [{ xml: '<pool type="dir"><name>x</name></pool>' }, 'xml'],
        [{ xml: '<domain type="test"><memory>1</memory></domain>' }, 'xml'],
        [{ xml: '<domain type="test"><name>x</name><uuid>nope</uuid></domain>' }, 'xml'],
        [{ xml: testDriverDomainXml(name, 64), memoryMiB: 64 }, 'memoryMiB'],
      ];
      for (const [body, field] of cases) {
        expectProblem(
          await http.post('/v1/hosts/test/domains', body),
          400,
          'INVALID_ARGUMENT',
          field,
        );
      }
      expectProblem(
        await http.post('/v1/hosts/test/domains', { xml: testDriverDomainXml(`${tag}-raw`, 64) }),
        409,
        'ALREADY_EXISTS',
      );
      assert.equal(await lookup(testdrv, name), null);
    });

    it("fails the job with libvirt's code when libvirt refuses the XML", async () => {
      const name = `${tag}-invalid`;
      const xml = buildXml({
        name: 'domain',
        attrs: { type: 'test' },
        children: [
          { name: 'name', text: name },
          { name: 'memory', text: 'lots' },
          { name: 'os', children: [{ name: 'type', text: 'hvm' }] },
        ],
      });
      const res = await http.post('/v1/hosts/test/domains', { xml }, { prefer: 'wait=10' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'failed');
      assert.equal(res.body.error.code, 'INVALID_ARGUMENT', JSON.stringify(res.body.error));
      assert.match(
        res.body.error.libvirtCode,
        /^VIR_ERR_(XML_INVALID_SCHEMA|XML_DETAIL|XML_ERROR|INTERNAL_ERROR)$/,
      );
      assert.equal(await lookup(testdrv, name), null);
    });
  });

  describe('undefine (test driver)', () => {
    it('refuses a transient domain, and snapshot metadata unless told to remove it', async () => {
      const transient = `${tag}-transient`;
      const { dom: tdom } = await testdrv.rpc.domainCreateXml({
        xmlDesc: testDriverDomainXml(transient, 64),
        flags: 0,
      });
      const refused = await http.del(`/v1/hosts/test/domains/${transient}`);
      expectProblem(refused, 409, 'INVALID_STATE');
      assert.match(refused.body.detail, /transient/);
      await testdrv.rpc.domainDestroyFlags({ dom: tdom, flags: 0 });

      const snapped = `${tag}-snapped`;
      const { dom } = await testdrv.rpc.domainDefineXmlFlags({
        xml: testDriverDomainXml(snapped, 64),
        flags: 0,
      });
      await testdrv.rpc.domainSnapshotCreateXml({
        dom,
        xmlDesc: buildXml({ name: 'domainsnapshot', children: [{ name: 'name', text: 's1' }] }),
        flags: 0,
      });
      const needsFlag = await http.del(`/v1/hosts/test/domains/${snapped}`);
      expectProblem(needsFlag, 409, 'INVALID_STATE');
      assert.match(needsFlag.body.detail, /snapshotsMetadata=true/);
      expectProblem(
        await http.del(`/v1/hosts/test/domains/${snapped}?snapshotsMetadata=maybe`),
        400,
        'INVALID_ARGUMENT',
        'snapshotsMetadata',
      );
      const res = await http.del(`/v1/hosts/test/domains/${snapped}?snapshotsMetadata=true`, {
        prefer: 'wait=10',
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'completed', JSON.stringify(res.body.error));
      assert.deepEqual(res.body.resolved.snapshotsMetadata, true);
      assert.equal(await lookup(testdrv, snapped), null);
      expectProblem(await http.del(`/v1/hosts/test/domains/${tag}-nope`), 404, 'NOT_FOUND');
    });
  });

  describe('Idempotency-Key', () => {
    it('gives back the same define job for the same key and body, 422 for another body', async () => {
      const name = `${tag}-idem`;
      const key = `def-${randomUUID()}`;
      const body = { xml: testDriverDomainXml(name, 64) };
      const first = await http.post('/v1/hosts/test/domains', body, { 'idempotency-key': key });
      assert.equal(first.status, 202, JSON.stringify(first.body));
      const done = await finished(first.body.id);
      assert.equal(done.state, 'completed', JSON.stringify(done.error));
      // The domain exists now: a new request would be 409, the replay is the same job.
      const again = await http.post('/v1/hosts/test/domains', body, { 'idempotency-key': key });
      assert.equal(again.body.id, first.body.id, JSON.stringify(again.body));
      const other = await http.post(
        '/v1/hosts/test/domains',
        { xml: testDriverDomainXml(name, 128) },
        { 'idempotency-key': key },
      );
      expectProblem(other, 422, 'IDEMPOTENCY_MISMATCH');

      const delKey = `undef-${randomUUID()}`;
      const del = await http.del(`/v1/hosts/test/domains/${name}`, { 'idempotency-key': delKey });
      assert.equal(del.status, 202);
      assert.equal((await finished(del.body.id)).state, 'completed');
      // The domain is gone: the retry still gets its job, not a 404.
      const retry = await http.del(`/v1/hosts/test/domains/${name}`, { 'idempotency-key': delKey });
      assert.equal(retry.status, 202, JSON.stringify(retry.body));
      assert.equal(retry.body.id, del.body.id);
      const otherDel = await http.del(`/v1/hosts/test/domains/${name}?managedSave=true`, {
        'idempotency-key': delKey,
      });
      expectProblem(otherDel, 404, 'NOT_FOUND');
    });
  });
});
