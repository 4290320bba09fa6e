/**
 * A silent host never stalls the API: hosts reached through a forwarder to
 * the real libvirtd that can freeze (keeps every socket open, accepts new
 * connections, moves no byte: the host fell silent after a real handshake)
 * and resume. The first request to a silent host fails within the keepalive
 * bound, the following ones answer 503 at once, removing such a host returns
 * at once, and the host comes back by itself once it answers again. A job on
 * a silent host ends, failed with HOST_UNREACHABLE, instead of hanging.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { AppError } from '#src/common/errors/app-error.js';
import { loadConfig } from '#src/config/config.js';
import { HostConnections } from '#src/hosts/host-connections.js';
import { HostCredentialStore } from '#src/hosts/host-credentials.js';
import { LibvirtClient, RpcConnection, type RemoteDomain } from '#src/libvirt/index.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { Forwarder } from '../support/forwarder.js';
import { waitFor } from '../support/wait.js';
import { graphql } from './graphql-helpers.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'host-breaker-admin-token-0123456789';
const KEEPALIVE_INTERVAL_MS = 500;
const KEEPALIVE_COUNT = 2;
const BOUND_MS = RpcConnection.keepaliveBoundMs(KEEPALIVE_INTERVAL_MS, KEEPALIVE_COUNT);
/** Timers and a loaded machine: the bound is the keepalive's, this is the test's allowance. */
const SLACK_MS = 1000;
/** The "at once". */
const AT_ONCE_MS = 250;

const ENV = {
  VIRTGATE_ADMIN_TOKEN: ADMIN,
  LIBVIRT_KEEPALIVE_INTERVAL_MS: String(KEEPALIVE_INTERVAL_MS),
  LIBVIRT_KEEPALIVE_COUNT: String(KEEPALIVE_COUNT),
  LIBVIRT_CONNECT_TIMEOUT_MS: '500',
};

interface Timed {
  res: request.Response;
  ms: number;
  at: number;
}

describe('a host that falls silent', () => {
  let t: TestApp;
  const silent = new Forwarder();
  const doomed = new Forwarder();
  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).send(body),
    del: (url: string) => request(t.server).delete(url).set('authorization', `Bearer ${ADMIN}`),
  };
  const timed = async (req: PromiseLike<request.Response>): Promise<Timed> => {
    const started = Date.now();
    const res = await req;
    return { res, ms: Date.now() - started, at: Date.now() };
  };
  /** One domain's view: always read from libvirt, never from a cache. */
  const domain = (host: string) => http.get(`/v1/hosts/${host}/domains/test`);

  before(async () => {
    await silent.open();
    await doomed.open();
    t = await startApp(testConfig(prefix, { ...ENV, ROLE: 'api' }));
    for (const [name, fwd] of [
      ['silent', silent],
      ['doomed', doomed],
    ] as const) {
      const added = await http.post('/v1/hosts', {
        name,
        uri: `test+tcp://127.0.0.1:${fwd.port}/default`,
      });
      assert.equal(added.status, 201, JSON.stringify(added.body));
      assert.equal(added.body.connection.state, 'connected');
    }
  });

  after(async () => {
    await silent.cut();
    await doomed.cut();
    await closeAllApps();
    await deleteKeys(prefix);
  });

  it('is found dead within the bound of the default keepalive settings, under 10 s', () => {
    const defaults = loadConfig({});
    const bound = RpcConnection.keepaliveBoundMs(
      defaults.libvirtKeepaliveIntervalMs,
      defaults.libvirtKeepaliveCount,
    );
    assert.ok(bound < 10_000, `default keepalive bound ${bound} ms`);
    assert.ok(bound < defaults.libvirtCallTimeoutMs, 'found dead before a call times out');
  });

  it('fails the first request within the keepalive bound, then answers 503 at once', async () => {
    assert.equal((await domain('silent')).status, 200);
    const frozenAt = Date.now();
    silent.freeze();

    const first = await timed(domain('silent'));
    assert.equal(first.res.status, 503, JSON.stringify(first.res.body));
    assert.equal(first.res.body.code, 'HOST_UNREACHABLE');
    assert.match(first.res.headers['retry-after'] ?? '', /^[1-9]\d*$/);
    assert.match(first.res.body.detail, /keepalive/);
    const detectedMs = first.at - frozenAt;
    assert.ok(detectedMs < BOUND_MS + SLACK_MS, `first 503 after ${detectedMs} ms`);

    for (let i = 0; i < 5; i++) {
      const next = await timed(domain('silent'));
      assert.equal(next.res.status, 503);
      assert.equal(next.res.body.code, 'HOST_UNREACHABLE');
      assert.match(next.res.headers['retry-after'] ?? '', /^[1-9]\d*$/);
      assert.match(next.res.body.detail, /host 'silent' is unreachable: ./);
      assert.ok(next.ms < AT_ONCE_MS, `503 number ${i + 2} took ${next.ms} ms`);
    }
    // A listing as well: nothing waits on the host.
    const list = await timed(http.get('/v1/hosts/silent/domains'));
    assert.equal(list.res.status, 503);
    assert.ok(list.ms < AT_ONCE_MS, `the listing took ${list.ms} ms`);

    // The host's view says so, at once: state, why, since when, next attempt.
    const view = await timed(http.get('/v1/hosts/silent'));
    assert.equal(view.res.status, 200);
    assert.ok(view.ms < AT_ONCE_MS, `the host's view took ${view.ms} ms`);
    const connection = view.res.body.connection;
    assert.equal(connection.state, 'unreachable');
    // The keepalive's verdict, or a later probe's failure (its handshake got no answer).
    assert.match(connection.lastError, /keepalive|got no reply|timed out/);
    assert.ok(Date.parse(connection.since) >= frozenAt - 10, connection.since);
    assert.ok(Date.parse(connection.retryAt) > Date.parse(connection.since), connection.retryAt);
    assert.equal(view.res.body.hostname, null);
    const gql = await graphql(
      t,
      ADMIN,
      '{ host(name: "silent") { connection { state lastError since retryAt } } }',
    );
    assert.equal(gql.status, 200);
    assert.equal(gql.body.data.host.connection.state, 'unreachable');
    assert.match(gql.body.data.host.connection.retryAt, /^\d{4}-\d\d-\d\dT/);
  });

  it('returns at once from the removal of a silent host, letting go of its requests', async () => {
    assert.equal((await domain('doomed')).status, 200);
    const frozenAt = Date.now();
    doomed.freeze();
    // A request on its way to the silent host, not yet found dead by the keepalive.
    const pending = timed(domain('doomed'));
    await new Promise((r) => setTimeout(r, 100));
    const removal = await timed(http.del('/v1/hosts/doomed'));
    assert.equal(removal.res.status, 204, JSON.stringify(removal.res.body));
    assert.ok(removal.ms < AT_ONCE_MS, `DELETE took ${removal.ms} ms`);
    const { res, at } = await pending;
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.ok(
      at - removal.at < AT_ONCE_MS,
      `the pending request ended ${at - removal.at} ms later`,
    );
    assert.ok(at - frozenAt < BOUND_MS, 'let go by the removal, not by the keepalive');
    assert.equal((await http.get('/v1/hosts/doomed')).status, 404);
    assert.ok(
      t.logs.raw.every((l) => !l.includes('Unhandled')),
      'nothing left unhandled',
    );
  });

  it('comes back by itself once the host answers again', async () => {
    silent.resume();
    await waitFor(async () => (await domain('silent')).status === 200, 'the host to be served');
    const view = await http.get('/v1/hosts/silent');
    assert.equal(view.body.connection.state, 'connected');
    assert.equal(view.body.connection.lastError, null);
    assert.equal(view.body.connection.retryAt, null);
    assert.ok(
      t.logs.lines.some((l) => /host 'silent': reachable again/.test(String(l.msg))),
      'the recovery is logged',
    );
  });
});

describe('a job on a host that falls silent', () => {
  const jobPrefix = uniquePrefix(import.meta.url) + 'job:';
  const fwd = new Forwarder();
  const name = `vg-brk-${randomUUID().slice(0, 6)}`;
  let t: TestApp;
  let client: LibvirtClient;
  let dom: RemoteDomain;
  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).send(body),
  };

  before(async () => {
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    ({ dom } = await client.rpc.domainDefineXmlFlags({
      xml: testDriverDomainXml(name, 64),
      flags: 0,
    }));
    await fwd.open();
  });

  after(async () => {
    await fwd.cut();
    await closeAllApps();
    await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
    await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    await client.close();
    await deleteKeys(jobPrefix);
  });

  it('fails with HOST_UNREACHABLE after its retries instead of hanging', async () => {
    // Queued by an api process while the host answers, with no worker running yet.
    t = await startApp(testConfig(jobPrefix, { ...ENV, ROLE: 'api' }));
    const added = await http.post('/v1/hosts', {
      name: 'jobhost',
      uri: `test+tcp://127.0.0.1:${fwd.port}/default`,
    });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const queued = await http.post(`/v1/hosts/jobhost/domains/${name}/actions/start`, {});
    assert.equal(queued.status, 202, JSON.stringify(queued.body));
    await t.close();
    // The host falls silent; then a worker takes the job.
    fwd.freeze();
    const startedAt = Date.now();
    t = await startApp(testConfig(jobPrefix, { ...ENV, ROLE: 'all' }));
    const job = await waitFor(
      async () => {
        const body = (await http.get(`/v1/jobs/${queued.body.id}`)).body;
        return ['completed', 'failed', 'canceled'].includes(body.state) ? body : null;
      },
      'the job to end',
      30_000,
      100,
    );
    assert.equal(job.state, 'failed', JSON.stringify(job));
    assert.equal(job.error.code, 'HOST_UNREACHABLE');
    assert.equal(job.attempts, 3, 'retried as a transient failure');
    // Three attempts, each bounded by the connect deadline, 1 s and 2 s apart (±20 %).
    assert.ok(Date.now() - startedAt < 15_000, `ended after ${Date.now() - startedAt} ms`);
    const state = await client.rpc.domainGetState({ dom, flags: 0 });
    assert.equal(state.state, 5, 'never started: shut off');
  });
});

describe('a call that times out on a host', () => {
  const fwd = new Forwarder();
  let connections: HostConnections;

  before(async () => {
    await fwd.open();
    // A call deadline shorter than the keepalive's bound: the timeout trips the breaker first.
    const config = testConfig(uniquePrefix(import.meta.url) + 'timeout:', {
      LIBVIRT_CALL_TIMEOUT_MS: '300',
      LIBVIRT_KEEPALIVE_INTERVAL_MS: '2000',
      LIBVIRT_KEEPALIVE_COUNT: '3',
      LIBVIRT_CONNECT_TIMEOUT_MS: '500',
    });
    connections = new HostConnections(config, new HostCredentialStore(config));
  });

  after(async () => {
    await connections.onApplicationShutdown();
    await fwd.cut();
  });

  it('marks the host unreachable: the next caller fails at once, the probe brings it back', async () => {
    const host = {
      name: 'slow',
      uri: `test+tcp://127.0.0.1:${fwd.port}/default`,
      createdAt: new Date().toISOString(),
      createdBy: 'test',
    };
    const version = () => connections.withClient(host, (c) => c.rpc.connectGetLibVersion());
    assert.ok((await version()).libVer > 0n);
    fwd.freeze();
    const timedOut = await version().then(
      () => assert.fail('a frozen host cannot answer'),
      (e: unknown) => e,
    );
    assert.ok(
      timedOut instanceof AppError && timedOut.code === 'HOST_UNREACHABLE',
      String(timedOut),
    );
    assert.match(timedOut.message, /got no reply within 300 ms/);
    const status = connections.status('slow');
    assert.equal(status.state, 'unreachable');
    assert.ok(status.retryAt instanceof Date);
    const started = Date.now();
    await assert.rejects(
      version(),
      (e: unknown) => e instanceof AppError && e.code === 'HOST_UNREACHABLE',
    );
    assert.ok(Date.now() - started < AT_ONCE_MS, `failed after ${Date.now() - started} ms`);
    fwd.resume();
    await waitFor(() => connections.status('slow').state === 'connected', 'the probe to succeed');
    assert.ok((await version()).libVer > 0n);
  });
});
