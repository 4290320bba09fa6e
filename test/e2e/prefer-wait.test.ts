/**
 * `Prefer: wait` over REST, at its edges: the wait is capped at 60 s (the
 * server says what it applied), and a wait that runs out before the job ends
 * answers 202 with the job as it stands, never 200. The job that outlasts the
 * wait is real: a graceful shutdown of a TCG guest with no OS, which ignores
 * ACPI, so the job runs its whole timeout before it forces the power off.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { TcgChainDomain } from '../support/tcg-chain.js';
import { waitFor } from '../support/wait.js';
import {
  as,
  closeAllApps,
  deleteKeys,
  registerTestDriverHost,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'prefer-wait-test-admin-token-0123';

describe('Prefer: wait over REST', () => {
  let t: TestApp;
  let client: LibvirtClient;
  const name = `vg-wait-${randomUUID().slice(0, 6)}`;
  let dom: RemoteDomain;
  const post = (url: string, body: object, headers: Record<string, string> = {}) =>
    as(t, ADMIN).post(url, body, headers);
  const get = (url: string) => as(t, ADMIN).get(url);

  before(async () => {
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    dom = (await client.rpc.domainDefineXmlFlags({ xml: testDriverDomainXml(name, 64), flags: 0 }))
      .dom;
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    await registerTestDriverHost(t, ADMIN);
  });

  after(async () => {
    await closeAllApps();
    await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
    await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    await client.close();
    await deleteKeys(prefix);
  });

  it('caps a longer wait at 60 s and says so in Preference-Applied', async () => {
    for (const [asked, applied] of [
      ['wait=600', 'wait=60'],
      ['wait=61', 'wait=60'],
      ['respond-async, wait=60', 'wait=60'],
      ['wait=7', 'wait=7'],
    ] as const) {
      const res = await post(
        `/v1/hosts/test/domains/${name}/actions/autostart`,
        { enabled: asked !== 'wait=7' },
        { prefer: asked },
      );
      assert.equal(res.status, 200, `${asked}: ${JSON.stringify(res.body)}`);
      assert.equal(res.headers['preference-applied'], applied, asked);
      assert.equal(res.body.state, 'completed');
    }
    // Without Prefer: no wait, no Preference-Applied.
    const plain = await post(`/v1/hosts/test/domains/${name}/actions/autostart`, {
      enabled: false,
    });
    assert.equal(plain.status, 202);
    assert.equal(plain.headers['preference-applied'], undefined);
  });

  it('answers 202 with the unfinished job when the wait runs out, and the job ends afterwards', async () => {
    // A TCG guest with no OS ignores ACPI: the shutdown runs its whole timeout, then forces.
    const local = await LibvirtClient.connect('qemu:///system');
    const guest = await TcgChainDomain.create(local, `vg-wait-tcg-${randomUUID().slice(0, 6)}`);
    try {
      const res = await post(
        `/v1/hosts/local/domains/${guest.name}/actions/shutdown`,
        { timeoutSeconds: 3, force: true },
        { prefer: 'wait=1' },
      );
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.headers['preference-applied'], 'wait=1');
      assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
      assert.ok(['queued', 'running'].includes(res.body.state), res.body.state);
      assert.equal(res.body.result, null);

      const job = await waitFor(async () => {
        const now = (await get(`/v1/jobs/${res.body.id}`)).body;
        return ['completed', 'failed', 'canceled'].includes(now.state) ? now : null;
      }, 'the shutdown job to end');
      assert.equal(job.state, 'completed', JSON.stringify(job.error));
      assert.equal(job.result.forced, true, 'it ran out its timeout, so it outlasted the wait');
      assert.equal((await local.rpc.domainGetState({ dom: guest.dom, flags: 0 })).state, 5);
    } finally {
      await guest.remove();
      await local.close();
    }
  });
});
