/**
 * The RPC client against the real libvirtd started by scripts/services.sh,
 * over its UNIX socket and over TCP.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  ConnectListAllDomainsFlags,
  DomainState,
  DomainXmlFlags,
  ErrorNumber,
  LibvirtClient,
  LibvirtError,
  StoragePoolState,
  formatVersion,
} from '#src/libvirt/index.js';
import { testDriverDomainXml, volumeXml } from '../support/domain-xml.js';

const TEST_URIS = ['test+unix:///default', 'test+tcp://127.0.0.1/default'];
const QEMU_URIS = ['qemu:///system', 'qemu+tcp://127.0.0.1/system'];

async function withClient<T>(
  uri: string,
  body: (c: LibvirtClient) => Promise<T>,
  readOnly = false,
): Promise<T> {
  const c = await LibvirtClient.connect(uri, { readOnly });
  try {
    return await body(c);
  } finally {
    await c.close();
  }
}

for (const uri of TEST_URIS) {
  describe(`inventory of the test driver over ${uri}`, () => {
    it('opens with keepalive and event callbacks negotiated', () =>
      withClient(uri, async (c) => {
        assert.deepEqual(c.features, {
          keepalive: true,
          eventCallbacks: true,
          typedParamString: true,
        });
        assert.equal(c.uri.name, 'test:///default');
        assert.equal((await c.rpc.connectGetType()).type, 'TEST');
        assert.equal((await c.rpc.connectGetUri()).uri, 'test:///default');
        assert.match(formatVersion((await c.rpc.connectGetLibVersion()).libVer), /^\d+\.\d+\.\d+$/);
        const node = await c.rpc.nodeGetInfo();
        // The test driver's fixed node: 16 CPUs of model i686.
        assert.equal(node.model, 'i686');
        assert.equal(node.cpus, 16);
        assert.match((await c.rpc.connectGetCapabilities()).capabilities, /<capabilities>/);
        assert.ok((await c.rpc.connectGetHostname()).hostname.length > 0);
      }));

    it('lists, looks up and describes domains', () =>
      withClient(uri, async (c) => {
        const { domains, ret } = await c.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
        assert.equal(ret, domains.length);
        const test = domains.find((d) => d.name === 'test');
        assert.ok(test, 'the test driver always has a domain called test');
        const byName = (await c.rpc.domainLookupByName({ name: 'test' })).dom;
        const byUuid = (await c.rpc.domainLookupByUuid({ uuid: test.uuid })).dom;
        assert.deepEqual(byName, test);
        assert.deepEqual(byUuid, test);
        const info = await c.rpc.domainGetInfo({ dom: test });
        assert.equal(info.state, DomainState.RUNNING);
        assert.equal(info.nrVirtCpu, 2);
        assert.equal(typeof info.memory, 'bigint');
        assert.deepEqual(await c.rpc.domainGetState({ dom: test, flags: 0 }), {
          state: DomainState.RUNNING,
          reason: 0,
        });
        const { xml } = await c.rpc.domainGetXmlDesc({ dom: test, flags: 0 });
        assert.match(xml, /<name>test<\/name>/);
        const running = await c.rpc.connectListAllDomains({
          needResults: 1,
          flags: ConnectListAllDomainsFlags.RUNNING,
        });
        assert.ok(running.domains.some((d) => d.name === 'test'));
      }));

    it('defines, reads back and undefines a persistent domain', () =>
      withClient(uri, async (c) => {
        const name = `vg-inv-${randomUUID().slice(0, 8)}`;
        const { dom } = await c.rpc.domainDefineXmlFlags({
          xml: testDriverDomainXml(name, 96),
          flags: 0,
        });
        try {
          assert.equal(dom.name, name);
          assert.equal(dom.id, -1);
          assert.equal((await c.rpc.domainIsPersistent({ dom })).persistent, 1);
          assert.equal((await c.rpc.domainIsActive({ dom })).active, 0);
          const info = await c.rpc.domainGetInfo({ dom });
          assert.equal(info.maxMem, 96n * 1024n);
          await c.rpc.domainSetAutostart({ dom, autostart: 1 });
          assert.equal((await c.rpc.domainGetAutostart({ dom })).autostart, 1);
          const inactive = await c.rpc.domainGetXmlDesc({ dom, flags: DomainXmlFlags.INACTIVE });
          assert.match(inactive.xml, new RegExp(`<name>${name}</name>`));
          const started = (await c.rpc.domainCreateWithFlags({ dom, flags: 0 })).dom;
          assert.ok(started.id > 0, 'a started domain has an id');
          await c.rpc.domainDestroyFlags({ dom: started, flags: 0 });
        } finally {
          await c.rpc.domainUndefineFlags({ dom, flags: 0 });
        }
        await assert.rejects(
          c.rpc.domainLookupByName({ name }),
          (e: Error) => e instanceof LibvirtError && e.code === ErrorNumber.VIR_ERR_NO_DOMAIN,
        );
      }));

    it('lists pools and volumes, and creates and deletes a volume', () =>
      withClient(uri, async (c) => {
        const { pools } = await c.rpc.connectListAllStoragePools({ needResults: 1, flags: 0 });
        const pool = pools.find((p) => p.name === 'default-pool');
        assert.ok(pool, `pools: ${pools.map((p) => p.name).join(', ')}`);
        const info = await c.rpc.storagePoolGetInfo({ pool });
        assert.equal(info.state, StoragePoolState.RUNNING);
        assert.ok(info.capacity > 0n);
        assert.match((await c.rpc.storagePoolGetXmlDesc({ pool, flags: 0 })).xml, /<pool type=/);
        const name = `vg-${randomUUID().slice(0, 8)}.img`;
        const { vol } = await c.rpc.storageVolCreateXml({
          pool,
          xml: volumeXml(name, 8),
          flags: 0,
        });
        try {
          assert.equal(vol.name, name);
          const listed = await c.rpc.storagePoolListAllVolumes({ pool, needResults: 1, flags: 0 });
          assert.ok(listed.vols.some((v) => v.name === name));
          assert.equal((await c.rpc.storageVolGetInfo({ vol })).capacity, 8n * 1024n * 1024n);
          const { name: volPath } = await c.rpc.storageVolGetPath({ vol });
          assert.deepEqual((await c.rpc.storageVolLookupByPath({ path: volPath })).vol, vol);
          assert.deepEqual((await c.rpc.storageVolLookupByName({ pool, name })).vol, vol);
        } finally {
          await c.rpc.storageVolDelete({ vol, flags: 0 });
        }
      }));

    it('reports libvirt errors with their codes, and read-only connections refuse changes', async () => {
      await withClient(uri, async (c) => {
        await assert.rejects(c.rpc.domainLookupByName({ name: 'no-such-domain' }), (e: Error) => {
          assert.ok(e instanceof LibvirtError);
          assert.equal(e.codeName, 'VIR_ERR_NO_DOMAIN');
          assert.equal(e.procedure, 'domainLookupByName');
          return true;
        });
        await assert.rejects(
          c.rpc.storagePoolLookupByName({ name: 'no-such-pool' }),
          (e: Error) => e instanceof LibvirtError && e.codeName === 'VIR_ERR_NO_STORAGE_POOL',
        );
      });
      await withClient(
        uri,
        async (c) => {
          assert.equal(c.readOnly, true);
          const { domains } = await c.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
          assert.ok(domains.length > 0, 'reads work read-only');
          await assert.rejects(
            c.rpc.domainDefineXmlFlags({ xml: testDriverDomainXml('vg-ro-refused', 64), flags: 0 }),
            (e: Error) => e instanceof LibvirtError && e.codeName === 'VIR_ERR_OPERATION_DENIED',
          );
        },
        true,
      );
    });
  });
}

for (const uri of QEMU_URIS) {
  describe(`the QEMU driver over ${uri}`, () => {
    it('opens qemu:///system and reads the host', () =>
      withClient(uri, async (c) => {
        assert.equal(c.uri.name, 'qemu:///system');
        assert.equal((await c.rpc.connectGetType()).type, 'QEMU');
        assert.ok((await c.rpc.connectGetVersion()).hvVer > 0n);
        const node = await c.rpc.nodeGetInfo();
        assert.ok(node.cpus >= 1);
        assert.ok(node.memory > 0n);
        assert.match((await c.rpc.connectGetCapabilities()).capabilities, /<arch>x86_64<\/arch>/);
        await assert.rejects(
          c.rpc.domainLookupByName({ name: 'vg-missing' }),
          /no domain with matching name 'vg-missing'/,
        );
      }));

    it('opens read-only over the read-only socket', () =>
      withClient(
        uri,
        async (c) => {
          assert.equal(c.readOnly, true);
          if (c.uri.transport === 'unix')
            assert.equal(c.uri.socketPath, '/var/run/libvirt/libvirt-sock-ro');
          await c.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
        },
        true,
      ));
  });
}
