/**
 * Several real libvirt daemons behind one gateway: the system daemon and a
 * session-mode libvirtd run as an unprivileged user (scripts/services.sh),
 * plus the system daemon again through a forwarder the test can freeze.
 * Each host lists its own domains, runs its own jobs, and a host that falls
 * silent mid-listing does not fail the requests to the others (how their
 * latency holds is measured by `npm run bench:hosts`, not asserted here).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { DomainState, LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { Forwarder } from '../support/forwarder.js';
import { SESSION_URI } from '../support/services.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'multi-host-test-admin-token-01234';

/** A domain with no disk: enough to list, start under TCG and destroy. */
function bareDomainXml(name: string): string {
  return `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`;
}

describe('several hosts at once', () => {
  let t: TestApp;
  const fwd = new Forwarder();
  const suffix = randomUUID().slice(0, 6);
  const onSystem = `vg-mh-sys-${suffix}`;
  const onSession = `vg-mh-sess-${suffix}`;
  const defined: Array<{ client: LibvirtClient; dom: RemoteDomain }> = [];
  const api = () => ({
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object, wait?: number) => {
      const r = request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`);
      return (wait === undefined ? r : r.set('prefer', `wait=${wait}`)).send(body);
    },
  });
  const names = async (host: string): Promise<string[]> => {
    const res = await api().get(`/v1/hosts/${host}/domains?limit=500`);
    assert.equal(res.status, 200, `${host}: ${JSON.stringify(res.body)}`);
    return (res.body.items as { name: string }[]).map((d) => d.name);
  };

  before(async () => {
    for (const [uri, name] of [
      ['qemu:///system', onSystem],
      [SESSION_URI, onSession],
    ] as const) {
      const client = await LibvirtClient.connect(uri);
      const { dom } = await client.rpc.domainDefineXmlFlags({ xml: bareDomainXml(name), flags: 0 });
      defined.push({ client, dom });
    }
    await fwd.open();
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        LIBVIRT_KEEPALIVE_INTERVAL_MS: '500',
        LIBVIRT_KEEPALIVE_COUNT: '2',
        LIBVIRT_CALL_TIMEOUT_MS: '3000',
      }),
    );
    for (const [name, uri] of [
      ['session', SESSION_URI],
      ['remote', `qemu+tcp://127.0.0.1:${fwd.port}/system`],
    ]) {
      const res = await api().post('/v1/hosts', { name, uri });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
  });

  after(async () => {
    await closeAllApps();
    await fwd.cut();
    for (const { client, dom } of defined) {
      await client.rpc.domainDestroy({ dom }).catch(() => undefined);
      await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
      await client.close();
    }
    await deleteKeys(prefix);
  });

  it('shows each host with its own daemon: system and session', async () => {
    const local = await api().get('/v1/hosts/local');
    const session = await api().get('/v1/hosts/session');
    assert.equal(local.status, 200);
    assert.equal(session.status, 200);
    assert.equal(session.body.connection.state, 'connected');
    assert.equal(session.body.hypervisor.type, 'QEMU');
    assert.equal(session.body.credentials.kind, 'none');
  });

  it('lists on each host its own domains only', async () => {
    const [local, session, remote] = await Promise.all([
      names('local'),
      names('session'),
      names('remote'),
    ]);
    assert.ok(local.includes(onSystem));
    assert.ok(!local.includes(onSession));
    assert.ok(session.includes(onSession));
    assert.ok(!session.includes(onSystem), 'the session daemon has its own domains');
    assert.ok(remote.includes(onSystem), 'the forwarded host is the system daemon');
  });

  it("runs a job on the session host, which changes that host's domain and no other", async () => {
    const started = await api().post(
      `/v1/hosts/session/domains/${onSession}/actions/start`,
      {},
      30,
    );
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.equal(started.body.state, 'completed', JSON.stringify(started.body));
    const [sys, sess] = defined;
    assert.equal(
      (await sess!.client.rpc.domainGetState({ dom: sess!.dom, flags: 0 })).state,
      DomainState.RUNNING,
    );
    assert.equal(
      (await sys!.client.rpc.domainGetState({ dom: sys!.dom, flags: 0 })).state,
      DomainState.SHUTOFF,
      'the system domain is untouched',
    );
    const detail = await api().get(`/v1/hosts/session/domains/${onSession}`);
    assert.equal(detail.body.state, 'running');
    const destroyed = await api().post(
      `/v1/hosts/session/domains/${onSession}/actions/destroy`,
      {},
      30,
    );
    assert.equal(destroyed.body.state, 'completed', JSON.stringify(destroyed.body));
  });

  it('keeps serving the other hosts while one falls silent mid-listing', async () => {
    assert.ok((await names('remote')).includes(onSystem), 'the remote host answers first');
    // The other hosts are listed over and over from before the remote host falls silent
    // until the gateway has found it out (its keepalive: 0.5 s x 3) and answers 503 for it.
    const listings: { host: string; status: number; afterFreeze: boolean }[] = [];
    let frozen = false;
    let silentFound = false;
    const afterFreeze = (host: string) => listings.filter((l) => l.host === host && l.afterFreeze);
    const load = async (host: string): Promise<void> => {
      // Until the silent host is found out, and at least once while it is silent.
      while (!silentFound || afterFreeze(host).length === 0) {
        const startedFrozen = frozen;
        const res = await api().get(`/v1/hosts/${host}/domains?limit=50`);
        listings.push({ host, status: res.status, afterFreeze: startedFrozen });
      }
    };
    const others = [load('session'), load('local')];
    await waitFor(
      () => ['session', 'local'].every((h) => listings.some((l) => l.host === h)),
      'both other hosts to be listed',
    );
    fwd.freeze();
    frozen = true;
    try {
      const found = await waitFor(
        async () => {
          const res = await api().get('/v1/hosts/remote/domains?limit=50');
          return res.status === 503 ? res : null;
        },
        'the silent host to be found out',
        20_000,
        100,
      );
      assert.equal(found.body.code, 'HOST_UNREACHABLE');
    } finally {
      silentFound = true;
    }
    await Promise.all(others);
    const remote = await api().get('/v1/hosts/remote/domains');
    assert.equal(remote.status, 503, 'the silent host was found out');
    for (const host of ['session', 'local']) {
      assert.ok(
        afterFreeze(host).length >= 1,
        `${host} was listed while the remote host was silent`,
      );
    }
    assert.deepEqual(
      listings.filter((l) => l.status !== 200),
      [],
      'every listing of the hosts that answer succeeds',
    );
    fwd.resume();
  });
});
