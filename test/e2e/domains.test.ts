/**
 * Domains over REST against real libvirtd: listings with filters and
 * pagination on the test driver, and a TCG domain on a 4-image qcow2 chain
 * whose reported chain must equal the live XML's indexes and
 * `qemu-img info --backing-chain`, entry by entry, before and after changes
 * made outside the gateway with virsh (an external snapshot, a block commit),
 * with persistent-vs-live drift reported when it exists.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import request from 'supertest';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { liveChain, tcgDomainXml, testDriverDomainXml } from '../support/domain-xml.js';
import { backingChain, createChain, makeImageDir, writePattern } from '../support/qemu-images.js';
import { waitFor } from '../support/wait.js';
import { countRpcs, total } from './graphql-helpers.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const run = promisify(execFile);
const virsh = (...args: string[]): Promise<{ stdout: string }> =>
  run('virsh', ['-q', '-c', 'qemu:///system', ...args]);

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'domains-test-admin-token-0123456789';

interface ChainImage {
  depth: number;
  index: number | null;
  ref: string | null;
  path: string | null;
  format: string | null;
  capacityBytes: number | null;
}

describe('domains', () => {
  let t: TestApp;
  const get = (url: string): request.Test =>
    request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`);

  before(async () => {
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    const res = await request(t.server)
      .post('/v1/hosts')
      .set('authorization', `Bearer ${ADMIN}`)
      .send({ name: 'test', uri: 'test+tcp://127.0.0.1/default' });
    assert.equal(res.status, 201);
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
  });

  describe('listings on the test driver', () => {
    let client: LibvirtClient;
    const name = `vg-dl-${randomUUID().slice(0, 6)}`;
    const defined: RemoteDomain[] = [];
    let transient: RemoteDomain;

    before(async () => {
      client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
      for (let i = 0; i < 23; i++) {
        const { dom } = await client.rpc.domainDefineXmlFlags({
          xml: testDriverDomainXml(`${name}-${String(i).padStart(2, '0')}`, 64 + i),
          flags: 0,
        });
        defined.push(dom);
      }
      // two of them running, one of those paused; one with autostart
      await client.rpc.domainCreateWithFlags({ dom: defined[0]!, flags: 0 });
      await client.rpc.domainCreateWithFlags({ dom: defined[1]!, flags: 0 });
      await client.rpc.domainSuspend({ dom: defined[1]! });
      await client.rpc.domainSetAutostart({ dom: defined[2]!, autostart: 1 });
      transient = (
        await client.rpc.domainCreateXml({
          xmlDesc: testDriverDomainXml(`${name}-transient`, 64),
          flags: 0,
        })
      ).dom;
    });

    after(async () => {
      await client.rpc.domainDestroyFlags({ dom: transient, flags: 0 }).catch(() => undefined);
      for (const dom of defined) {
        await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
        await client.rpc.domainUndefineFlags({ dom, flags: 0 });
      }
      await client.close();
    });

    async function walk(
      query: string,
      limit: number,
    ): Promise<{ names: string[]; pages: number; total: number }> {
      const names: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      let total: number;
      do {
        const res: request.Response = await get(
          `/v1/hosts/test/domains?limit=${limit}&${query}${cursor ? `&cursor=${cursor}` : ''}`,
        );
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.ok(res.body.items.length <= limit);
        names.push(...res.body.items.map((d: { name: string }) => d.name));
        total = res.body.totalCount;
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor && pages < 100);
      return { names, pages, total };
    }

    it('walks every domain exactly once across pages', async () => {
      const { names, pages, total } = await walk(`namePrefix=${name}-`, 5);
      const expected = [...defined.map((d) => d.name), `${name}-transient`].sort();
      assert.deepEqual(names, expected);
      assert.equal(total, 24);
      assert.equal(pages, 5);
    });

    it('shows state, sizing, autostart and persistence', async () => {
      const res = await get(`/v1/hosts/test/domains?namePrefix=${name}-0&limit=3`);
      const [d0, d1, d2] = res.body.items;
      assert.deepEqual(
        [d0.name, d0.state, d0.persistent, d0.autostart, d0.maxMemoryBytes, typeof d0.id],
        [`${name}-00`, 'running', true, false, 64 * 1024 ** 2, 'number'],
      );
      assert.deepEqual([d1.state, d1.stateReason], ['paused', 'user']);
      assert.deepEqual(
        [d2.state, d2.id, d2.autostart, d2.maxMemoryBytes],
        ['shutoff', null, true, 66 * 1024 ** 2],
      );
      assert.equal(d2.uuid, uuid(defined[2]!));
    });

    it('filters by state, persistence and name prefix', async () => {
      const names = async (q: string): Promise<string[]> =>
        (await walk(`namePrefix=${name}-&${q}`, 100)).names;
      assert.deepEqual(await names('state=running'), [`${name}-00`, `${name}-transient`]);
      assert.deepEqual(await names('state=paused'), [`${name}-01`]);
      assert.equal((await names('state=shutoff')).length, 21);
      assert.deepEqual(await names('persistent=false'), [`${name}-transient`]);
      assert.equal((await names('persistent=true')).length, 23);
      assert.deepEqual(await names('state=crashed'), []);
    });

    it('finds a domain by name and by UUID, with its disks and interfaces', async () => {
      const byName = await get(`/v1/hosts/test/domains/${name}-00`);
      assert.equal(byName.status, 200);
      const byUuid = await get(`/v1/hosts/test/domains/${uuid(defined[0]!)}`);
      assert.equal(byUuid.status, 200);
      assert.deepEqual(byUuid.body, byName.body);
      assert.ok(Array.isArray(byName.body.disks));
      const xml = await get(`/v1/hosts/test/domains/${name}-00/xml`);
      assert.match(xml.headers['content-type'] ?? '', /^application\/xml/);
      assert.match(xml.text, new RegExp(`<name>${name}-00</name>`));
      const inactive = await get(`/v1/hosts/test/domains/${name}-transient/xml?inactive=true`);
      assert.equal(inactive.status, 404, 'a transient domain has no persistent definition');
    });

    it('follows changes made outside the gateway as libvirt reports them', async () => {
      const list = async (): Promise<{ name: string; state: string; id: number | null }[]> =>
        (await get(`/v1/hosts/test/domains?namePrefix=${name}-x&limit=100`)).body.items;
      /** Lists until `ok` holds: the inventory follows libvirt's events. */
      const until = async (
        ok: (items: Awaited<ReturnType<typeof list>>) => boolean,
        what: string,
      ): Promise<void> => {
        await waitFor(async () => ok(await list()), `the listing to show ${what}`);
      };
      assert.deepEqual(await list(), []);
      const { dom } = await client.rpc.domainDefineXmlFlags({
        xml: testDriverDomainXml(`${name}-x1`, 64),
        flags: 0,
      });
      try {
        await until(
          (items) => items.length === 1 && items[0]!.state === 'shutoff',
          'the new domain, shut off',
        );
        const started = (await client.rpc.domainCreateWithFlags({ dom, flags: 0 })).dom;
        await until(
          (items) => items[0]?.state === 'running' && items[0].id === started.id,
          'it running',
        );
        await client.rpc.domainSuspend({ dom: started });
        await until((items) => items[0]?.state === 'paused', 'it paused');
        await client.rpc.domainDestroyFlags({ dom: started, flags: 0 });
        await until(
          (items) => items[0]?.state === 'shutoff' && items[0].id === null,
          'it shut off',
        );
      } finally {
        await client.rpc.domainUndefineFlags({ dom, flags: 0 });
      }
      await until((items) => items.length === 0, 'it gone');
    });

    it("reuses the domain list libvirt's events keep true: a listing again reads no list", async () => {
      const url = `/v1/hosts/test/domains?namePrefix=${name}-&limit=5`;
      assert.equal((await get(url)).status, 200); // the host's events are heard from now on
      const counts = await countRpcs(async () => {
        assert.equal((await get(url)).body.items.length, 5);
      });
      assert.equal(
        counts.get('connectListAllDomains') ?? 0,
        0,
        JSON.stringify(Object.fromEntries(counts)),
      );
    });

    it("hears a host's events again once it is unregistered and registered anew", async () => {
      const admin = (req: request.Test): request.Test =>
        req.set('authorization', `Bearer ${ADMIN}`);
      const host = { name: 'again', uri: 'test+tcp://127.0.0.1/default' };
      const url = `/v1/hosts/again/domains?namePrefix=${name}-&limit=5`;
      assert.equal((await admin(request(t.server).post('/v1/hosts')).send(host)).status, 201);
      assert.equal((await get(url)).status, 200);
      assert.equal((await admin(request(t.server).delete('/v1/hosts/again'))).status, 204);
      assert.equal((await admin(request(t.server).post('/v1/hosts')).send(host)).status, 201);
      assert.equal((await get(url)).status, 200);
      const counts = await countRpcs(async () => {
        assert.equal((await get(url)).body.items.length, 5);
      });
      assert.equal(
        counts.get('connectListAllDomains') ?? 0,
        0,
        JSON.stringify(Object.fromEntries(counts)),
      );
    });

    it('answers bad input with the documented codes, asking the host nothing it need not', async () => {
      // Whether the answer needs the host at all: an unknown host or invalid input is
      // answered before any call to libvirt (the lookups of a missing domain need it).
      const cases: [string, number, string, string | null, 'asks host' | 'no call'][] = [
        ['/v1/hosts/nope/domains', 404, 'NOT_FOUND', null, 'no call'],
        ['/v1/hosts/test/domains/no-such-domain', 404, 'NOT_FOUND', null, 'asks host'],
        ['/v1/hosts/test/domains/no-such-domain/disks', 404, 'NOT_FOUND', null, 'asks host'],
        [`/v1/hosts/test/domains/${name}-00/disks/vdz`, 404, 'NOT_FOUND', null, 'asks host'],
        [
          '/v1/hosts/test/domains/6695eb01-f6a4-8304-79aa-97f2502e193g',
          400,
          'INVALID_ARGUMENT',
          'domain',
          'no call',
        ],
        [
          '/v1/hosts/test/domains?cursor=bm90LWEtY3Vyc29y',
          400,
          'INVALID_ARGUMENT',
          'cursor',
          'no call',
        ],
        ['/v1/hosts/test/domains?limit=501', 400, 'INVALID_ARGUMENT', 'limit', 'no call'],
        ['/v1/hosts/test/domains?limit=0', 400, 'INVALID_ARGUMENT', 'limit', 'no call'],
        ['/v1/hosts/test/domains?state=on', 400, 'INVALID_ARGUMENT', 'state', 'no call'],
        ['/v1/hosts/test/domains?sort=name', 400, 'INVALID_ARGUMENT', 'sort', 'no call'],
      ];
      for (const [url, status, code, field, host] of cases) {
        let res!: request.Response;
        const counts = await countRpcs(async () => {
          res = await get(url);
        });
        assert.equal(res.status, status, `${url}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, code, url);
        if (field) assert.equal(res.body.errors?.[0]?.field, field, url);
        if (host === 'no call') {
          assert.equal(total(counts), 0, `${url}: ${JSON.stringify(Object.fromEntries(counts))}`);
        }
      }
    });

    it('answers 503 with Retry-After for a host that cannot be reached, the refusal its reason', async () => {
      await request(t.server)
        .post('/v1/hosts')
        .set('authorization', `Bearer ${ADMIN}`)
        .send({ name: 'closed', uri: 'qemu+tcp://127.0.0.1:1/system' })
        .expect(201);
      const since: string[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await get('/v1/hosts/closed/domains');
        assert.equal(res.status, 503);
        assert.equal(res.body.code, 'HOST_UNREACHABLE');
        assert.match(res.headers['retry-after'] ?? '', /^\d+$/);
        // Refused, not timed out: the answer waited on no deadline.
        assert.match(res.body.detail, /ECONNREFUSED/);
        const view = await get('/v1/hosts/closed');
        assert.equal(view.body.connection.state, 'unreachable');
        since.push(view.body.connection.since);
      }
      // The second request found the breaker open and did not try to connect (an attempt
      // would have moved the host through 'connecting', renewing `since`).
      assert.equal(since[1], since[0]);
    });

    it('lists snapshots with their disks', async () => {
      const dom = defined[3]!;
      await client.rpc.domainSnapshotCreateXml({
        dom,
        xmlDesc: '<domainsnapshot><name>s1</name><description>first</description></domainsnapshot>',
        flags: 0,
      });
      const res = await get(`/v1/hosts/test/domains/${dom.name}/snapshots`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.length, 1);
      assert.equal(res.body[0].name, 's1');
      assert.equal(res.body[0].description, 'first');
      assert.match(res.body[0].createdAt, /^\d{4}-\d\d-\d\dT/);
      const { snapshots } = await client.rpc.domainListAllSnapshots({
        dom,
        needResults: 1,
        flags: 0,
      });
      for (const snap of snapshots) await client.rpc.domainSnapshotDelete({ snap, flags: 0 });
    });
  });

  describe('a TCG domain on a 4-image qcow2 chain', () => {
    let client: LibvirtClient;
    let images: Awaited<ReturnType<typeof makeImageDir>>;
    let dom: RemoteDomain;
    const name = `vg-dc-${randomUUID().slice(0, 6)}`;
    let paths: string[];

    before(async () => {
      images = await makeImageDir(name);
      paths = await createChain(images.dir, ['base', 'l1', 'l2', 'top']);
      for (const [i, p] of paths.entries()) await writePattern(p, 0x10 + i, i);
      client = await LibvirtClient.connect('qemu:///system');
      dom = (
        await client.rpc.domainDefineXmlFlags({ xml: tcgDomainXml(name, paths.at(-1)!), flags: 0 })
      ).dom;
      dom = (await client.rpc.domainCreateWithFlags({ dom, flags: 0 })).dom;
    });

    after(async () => {
      try {
        await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
        await client.rpc.domainUndefineFlags({ dom, flags: 0 });
      } finally {
        await client.close();
        await images.remove();
      }
    });

    /** The API's chain of vda, checked entry by entry against the live XML and qemu-img. */
    async function assertChainIsTruth(): Promise<ChainImage[]> {
      const res = await get(`/v1/hosts/local/domains/${name}/disks/vda`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const chain = res.body.chain as ChainImage[];
      const live = liveChain((await client.rpc.domainGetXmlDesc({ dom, flags: 0 })).xml, 'vda');
      const qemu = await backingChain(live[0]!.path);
      assert.equal(chain.length, live.length);
      assert.equal(chain.length, qemu.length);
      chain.forEach((image, depth) => {
        assert.equal(image.depth, depth);
        assert.equal(image.index, live[depth]!.index, `index at depth ${depth}`);
        assert.equal(image.ref, `vda[${live[depth]!.index}]`);
        assert.equal(image.path, live[depth]!.path);
        assert.equal(image.path, qemu[depth]!.filename, `qemu-img at depth ${depth}`);
        assert.equal(image.format, qemu[depth]!.format);
        assert.equal(image.capacityBytes, qemu[depth]!['virtual-size']);
      });
      assert.equal(res.body.chainComplete, true);
      // GraphQL serves the very same disk.
      const gql = await request(t.server)
        .post('/graphql')
        .set('authorization', `Bearer ${ADMIN}`)
        .send({
          query: `query($n: String!) { host(name: "local") { domain(name: $n) { disks { target bus device readOnly
            chainComplete persistentChainDiffers
            chain { depth index ref type path network { protocol name hosts } format capacityBytes allocationBytes physicalBytes }
            persistentChain { depth index ref type path network { protocol name hosts } format capacityBytes allocationBytes physicalBytes }
            mirror { path format job ready }
            blockJob { type progress { cur end percent } ready jobId } } } } }`,
          variables: { n: name },
        });
      assert.equal(gql.body.errors, undefined, JSON.stringify(gql.body.errors));
      assert.deepEqual(
        gql.body.data.host.domain.disks.find((d: { target: string }) => d.target === 'vda'),
        res.body,
      );
      return chain;
    }

    it('reports the 4-image chain as libvirt and qemu-img see it', async () => {
      const chain = await assertChainIsTruth();
      assert.deepEqual(
        chain.map((c) => c.path),
        [...paths].reverse(),
      );
      const disks = await get(`/v1/hosts/local/domains/${name}/disks`);
      assert.equal(disks.body.length, 1);
      assert.equal(disks.body[0].persistentChainDiffers, false);
      const domain = await get(`/v1/hosts/local/domains/${name}`);
      assert.equal(domain.body.state, 'running');
      assert.equal(domain.body.maxMemoryBytes, 64 * 1024 ** 2);
      assert.deepEqual(domain.body.disks, disks.body);
    });

    it('follows an external disk-only snapshot made with virsh', async () => {
      const overlay = path.join(images.dir, 'snap1.qcow2');
      await virsh(
        'snapshot-create-as',
        name,
        'snap1',
        '--disk-only',
        '--no-metadata',
        '--diskspec',
        `vda,file=${overlay}`,
      );
      const chain = await assertChainIsTruth();
      assert.equal(chain.length, 5);
      assert.equal(chain[0]!.path, overlay);
    });

    it('follows a block commit made with virsh, naming images by their live indexes', async () => {
      const before = await assertChainIsTruth();
      // merge l2 (depth 2) into l1 (depth 3)
      await virsh(
        'blockcommit',
        name,
        'vda',
        '--top',
        before[2]!.ref!,
        '--base',
        before[3]!.ref!,
        '--wait',
      );
      const after = await assertChainIsTruth();
      assert.deepEqual(
        after.map((c) => c.path),
        [before[0]!.path, before[1]!.path, before[3]!.path, before[4]!.path],
      );
      assert.deepEqual(
        after.map((c) => c.index),
        [before[0]!.index, before[1]!.index, before[3]!.index, before[4]!.index],
        'libvirt kept every remaining index',
      );
    });

    it('reports drift between the persistent definition and the live chain', async () => {
      // Redefine the persistent definition (the running domain is untouched) to boot from the base.
      await client.rpc.domainDefineXmlFlags({
        xml: tcgDomainXml(name, paths[0]!, uuid(dom)),
        flags: 0,
      });
      const res = await get(`/v1/hosts/local/domains/${name}/disks/vda`);
      assert.equal(res.body.persistentChainDiffers, true);
      assert.equal(res.body.persistentChain[0].path, paths[0]);
      assert.equal(
        res.body.chain[0].path,
        path.join(images.dir, 'snap1.qcow2'),
        'the live chain is unchanged',
      );
      const inactiveXml = await get(`/v1/hosts/local/domains/${name}/xml?inactive=true`);
      assert.match(inactiveXml.text, new RegExp(paths[0]!.replaceAll('/', '\\/')));
    });
  });
});

function uuid(dom: RemoteDomain): string {
  const h = dom.uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
