/**
 * The lifecycle actions on a real QEMU domain under TCG. The guest has no OS,
 * so it ignores ACPI: a graceful shutdown can only time out, which is how the
 * timeout and `force` after it are proven.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { DomainState, LibvirtClient, uuidString, type RemoteDomain } from '#src/libvirt/index.js';
import { tcgDomainXml } from '../support/domain-xml.js';
import { withLibvirtdApiLog } from '../support/libvirtd-api-log.js';
import { createChain, makeImageDir } from '../support/qemu-images.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'domain-lifecycle-test-admin-token-0';

interface Job {
  id: string;
  type: string;
  state: string;
  result: Record<string, unknown> | null;
  error: { code: string; message: string; libvirtCode?: number | null } | null;
}

describe('domain lifecycle on QEMU (TCG)', () => {
  let t: TestApp;
  let client: LibvirtClient;
  let dom: RemoteDomain;
  let removeDir: () => Promise<void>;
  const name = `vg-life-${randomUUID().slice(0, 6)}`;

  const act = async (action: string, body: object = {}, wait = 30): Promise<Job> => {
    const res = await request(t.server)
      .post(`/v1/hosts/local/domains/${name}/actions/${action}`)
      .set('authorization', `Bearer ${ADMIN}`)
      .set('prefer', `wait=${wait}`)
      .send(body);
    assert.ok(
      [200, 202].includes(res.status),
      `${action}: ${res.status} ${JSON.stringify(res.body)}`,
    );
    return res.body as Job;
  };
  const state = async () => (await client.rpc.domainGetState({ dom, flags: 0 })).state;

  before(async () => {
    client = await LibvirtClient.connect('qemu:///system');
    const images = await makeImageDir(name);
    removeDir = images.remove;
    const [disk] = await createChain(images.dir, ['disk']);
    dom = (await client.rpc.domainDefineXmlFlags({ xml: tcgDomainXml(name, disk!), flags: 0 })).dom;
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
  });

  after(async () => {
    await closeAllApps();
    await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
    await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    await client.close();
    await removeDir();
    await deleteKeys(prefix);
  });

  it('starts paused, resumes, reboots, and destroys', async () => {
    const started = await act('start', { paused: true });
    assert.equal(started.state, 'completed', JSON.stringify(started));
    assert.deepEqual(started.result, { state: 'paused', changed: true });
    assert.equal(await state(), DomainState.PAUSED);

    assert.deepEqual((await act('resume')).result, { state: 'running', changed: true });
    assert.equal(await state(), DomainState.RUNNING);

    const rebooted = await act('reboot');
    assert.equal(rebooted.state, 'completed', JSON.stringify(rebooted));
    assert.equal(await state(), DomainState.RUNNING);

    assert.deepEqual((await act('destroy')).result, { state: 'shutoff', changed: true });
    assert.equal(await state(), DomainState.SHUTOFF);
    const again = await request(t.server)
      .post(`/v1/hosts/local/domains/${name}/actions/destroy`)
      .set('authorization', `Bearer ${ADMIN}`)
      .send({});
    assert.equal(again.status, 409, 'destroying a shut-off domain is refused at once');
    assert.equal(again.body.code, 'INVALID_STATE');
  });

  it('destroys with GRACEFUL only when asked to (libvirtd logs the flags of the call it served)', async () => {
    // A QEMU that honours SIGTERM ends the same either way: what differs is the call.
    const uuid = uuidString(dom.uuid);
    const destroyFlags = (lines: string[]) =>
      lines
        .filter((l) => l.includes('virDomainDestroyFlags'))
        .map((l) => /flags=(0x[0-9a-f]+)/.exec(l)?.[1]);
    await withLibvirtdApiLog(async (log) => {
      assert.equal((await act('start')).state, 'completed');
      assert.deepEqual((await act('destroy', { graceful: true })).result, {
        state: 'shutoff',
        changed: true,
      });
      assert.deepEqual(destroyFlags(await log.lines(uuid)), ['0x1'], 'VIR_DOMAIN_DESTROY_GRACEFUL');
      assert.equal((await act('start')).state, 'completed');
      assert.deepEqual((await act('destroy')).result, { state: 'shutoff', changed: true });
      assert.deepEqual(
        destroyFlags(await log.lines(uuid)),
        ['0x1', '0x0'],
        'then a destroy without graceful: no flag',
      );
    });
  });

  it('fails a graceful shutdown the guest ignores after its timeout, leaving the domain running', async () => {
    await act('start');
    const uuid = uuidString(dom.uuid);
    // libvirtd's own log of the calls it served: the job asked the guest, then kept
    // watching its state until its deadline passed, and forced nothing.
    const calls = await withLibvirtdApiLog(async (log) => {
      const job = await act('shutdown', { timeoutSeconds: 2 });
      assert.equal(job.state, 'failed', JSON.stringify(job));
      assert.equal(job.error?.code, 'TIMEOUT');
      assert.match(job.error?.message ?? '', /did not shut down within 2 s/);
      assert.match(job.error?.message ?? '', /force/);
      return (await log.lines(uuid))
        .map((l) => /\b(virDomain\w+)/.exec(l)?.[1])
        .filter(
          (c) =>
            c === 'virDomainShutdownFlags' ||
            c === 'virDomainGetState' ||
            c === 'virDomainDestroyFlags',
        );
    });
    const asked = calls.indexOf('virDomainShutdownFlags');
    assert.ok(asked >= 0, `the guest was asked to shut down: ${JSON.stringify(calls)}`);
    const watched = calls.slice(asked + 1).filter((c) => c === 'virDomainGetState').length;
    assert.ok(watched >= 2, `its state was watched until the deadline: ${JSON.stringify(calls)}`);
    assert.ok(!calls.includes('virDomainDestroyFlags'), 'nothing was forced');
    assert.equal(await state(), DomainState.RUNNING, 'still running');
  });

  it('powers the domain off after the timeout with force: true', async () => {
    const job = await act('shutdown', { timeoutSeconds: 1, force: true });
    assert.equal(job.state, 'completed', JSON.stringify(job));
    assert.deepEqual(job.result, { state: 'shutoff', changed: true, forced: true });
    assert.equal(await state(), DomainState.SHUTOFF);
  });
});
