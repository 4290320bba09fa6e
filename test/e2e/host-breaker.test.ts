/**
 * A silent host never stalls the API: hosts reached through a forwarder to
 * the real libvirtd that can freeze (keeps every socket open, accepts new
 * connections, moves no byte: the host fell silent after a real handshake)
 * and resume. The first request to a silent host is failed by the keepalive,
 * the following ones answer 503 without a connection or a call to the host,
 * removing such a host returns while the host stays silent, letting go of its
 * requests, and the host comes back by itself once it answers again. A job on
 * a silent host ends, failed with HOST_UNREACHABLE, instead of hanging.
 *
 * No duration is asserted: what the forwarder saw (connections accepted, calls
 * forwarded) and the host's state say whether a request waited on the host.
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
/**
 * Longer than any test here: a connection attempt to a frozen host (the
 * probe's) is held open by the forwarder for the whole test instead of ending
 * by its deadline, so a connection the forwarder accepted can only be the
 * probe's or a request's.
 */
const HELD_CONNECT_TIMEOUT_MS = '120000';

const ENV = {
  VIRTGATE_ADMIN_TOKEN: ADMIN,
  LIBVIRT_KEEPALIVE_INTERVAL_MS: '500',
  LIBVIRT_KEEPALIVE_COUNT: '2',
  LIBVIRT_CONNECT_TIMEOUT_MS: '500',
};

const adminHttp = (app: () => TestApp) => ({
  get: (url: string) => request(app().server).get(url).set('authorization', `Bearer ${ADMIN}`),
  post: (url: string, body: object) =>
    request(app().server).post(url).set('authorization', `Bearer ${ADMIN}`).send(body),
  del: (url: string) => request(app().server).delete(url).set('authorization', `Bearer ${ADMIN}`),
});

describe('a host that falls silent', () => {
  let t: TestApp;
  const silent = new Forwarder();
  const http = adminHttp(() => t);
  /** One domain's view: always read from libvirt, never from a cache. */
  const domain = (host: string) => http.get(`/v1/hosts/${host}/domains/test`);

  before(async () => {
    await silent.open();
    t = await startApp(
      testConfig(prefix, {
        ...ENV,
        LIBVIRT_CONNECT_TIMEOUT_MS: HELD_CONNECT_TIMEOUT_MS,
        ROLE: 'api',
      }),
    );
    const added = await http.post('/v1/hosts', {
      name: 'silent',
      uri: `test+tcp://127.0.0.1:${silent.port}/default`,
    });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    assert.equal(added.body.connection.state, 'connected');
  });

  after(async () => {
    await silent.cut();
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

  it('fails the first request by the keepalive, then answers 503 without touching the host', async () => {
    assert.equal((await domain('silent')).status, 200);
    const acceptedBeforeFreeze = silent.accepted;
    const frozenAt = Date.now();
    silent.freeze();

    // The call in flight waits on a host that never answers: the keepalive ends it
    // (the call's own deadline is far off), which opens the breaker.
    const first = await domain('silent');
    assert.equal(first.status, 503, JSON.stringify(first.body));
    assert.equal(first.body.code, 'HOST_UNREACHABLE');
    assert.match(first.headers['retry-after'] ?? '', /^[1-9]\d*$/);
    assert.match(first.body.detail, /keepalive/);

    // The breaker's probe connects (and, the host frozen, hangs there): one attempt at a
    // time, so from now on any connection the forwarder accepts would be a request's.
    await waitFor(() => silent.accepted > acceptedBeforeFreeze, "the probe's connection");
    const opened = await http.get('/v1/hosts/silent');
    assert.equal(opened.body.connection.state, 'unreachable');
    const openedSince = opened.body.connection.since;
    const accepted = silent.accepted;

    for (let i = 0; i < 5; i++) {
      const next = await domain('silent');
      assert.equal(next.status, 503);
      assert.equal(next.body.code, 'HOST_UNREACHABLE');
      assert.match(next.headers['retry-after'] ?? '', /^[1-9]\d*$/);
      assert.match(next.body.detail, /host 'silent' is unreachable: ./);
    }
    // A listing as well: nothing waits on the host.
    const list = await http.get('/v1/hosts/silent/domains');
    assert.equal(list.status, 503);

    // The host's view says so: state, why, since when, next attempt.
    const view = await http.get('/v1/hosts/silent');
    assert.equal(view.status, 200);
    const connection = view.body.connection;
    assert.equal(connection.state, 'unreachable');
    // The keepalive's verdict, or a later probe's failure (its handshake got no answer).
    assert.match(connection.lastError, /keepalive|got no reply|timed out/);
    assert.ok(Date.parse(connection.since) >= frozenAt - 10, connection.since);
    assert.ok(Date.parse(connection.retryAt) > Date.parse(connection.since), connection.retryAt);
    assert.equal(view.body.hostname, null);
    const gql = await graphql(
      t,
      ADMIN,
      '{ host(name: "silent") { connection { state lastError since retryAt } } }',
    );
    assert.equal(gql.status, 200);
    assert.equal(gql.body.data.host.connection.state, 'unreachable');
    assert.match(gql.body.data.host.connection.retryAt, /^\d{4}-\d\d-\d\dT/);

    // None of these requests tried the host: no connection was attempted (a request
    // connecting would pass through 'connecting', changing `since`, and reach the forwarder).
    assert.equal(silent.accepted, accepted, 'no connection attempted while the breaker is open');
    assert.equal(connection.since, openedSince, 'the breaker stayed open throughout');
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

describe('the removal of a host that falls silent', () => {
  const removalPrefix = uniquePrefix(import.meta.url) + 'removal:';
  const doomed = new Forwarder();
  let t: TestApp;
  const http = adminHttp(() => t);

  before(async () => {
    await doomed.open();
    // Every deadline far beyond the test: only the removal can let go of a request.
    t = await startApp(
      testConfig(removalPrefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        LIBVIRT_KEEPALIVE_INTERVAL_MS: '60000',
        LIBVIRT_KEEPALIVE_COUNT: '5',
        LIBVIRT_CALL_TIMEOUT_MS: '600000',
        LIBVIRT_CONNECT_TIMEOUT_MS: HELD_CONNECT_TIMEOUT_MS,
        ROLE: 'api',
      }),
    );
    const added = await http.post('/v1/hosts', {
      name: 'doomed',
      uri: `test+tcp://127.0.0.1:${doomed.port}/default`,
    });
    assert.equal(added.status, 201, JSON.stringify(added.body));
  });

  after(async () => {
    await doomed.cut();
    await closeAllApps();
    await deleteKeys(removalPrefix);
  });

  it('returns while the host stays silent, letting go of its requests', async () => {
    assert.equal((await http.get('/v1/hosts/doomed/domains/test')).status, 200);
    const calls = doomed.calls;
    doomed.holdReplies();
    // A request on its way to the silent host: its call reaches libvirtd, no answer comes back.
    let pending: request.Response | null = null;
    void http.get('/v1/hosts/doomed/domains/test').then((res) => (pending = res));
    await waitFor(() => doomed.calls > calls, "the pending request's call to reach the host");

    let removal: request.Response | null = null;
    void http.del('/v1/hosts/doomed').then((res) => (removal = res));
    // The host never answers and no deadline of the gateway falls within the test: a
    // removal that waited on the host would not return at all.
    const removed = await waitFor(() => removal, 'the removal to return, the host silent');
    assert.equal(removed.status, 204, JSON.stringify(removed.body));
    // Nor would the pending request end: only the removal can let go of it.
    const res = await waitFor(() => pending, 'the pending request to be let go');
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.match(res.body.detail, /host 'doomed' was unregistered/, 'let go by the removal');
    assert.equal((await http.get('/v1/hosts/doomed')).status, 404);
    assert.ok(
      t.logs.raw.every((l) => !l.includes('Unhandled')),
      'nothing left unhandled',
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
  const http = adminHttp(() => t);

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

  it('fails with HOST_UNREACHABLE after its retries instead of hanging', async (ctx) => {
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
    // Three attempts, each bounded by the connect deadline, 1 s and 2 s apart (±20 %):
    // ended, not hanging, is the waitFor above; how long it took is a record, not a verdict.
    ctx.diagnostic(`the job ended after ${Date.now() - startedAt} ms`);
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
    // The probe's handshake, its answers held, hangs for the whole test (HELD_CONNECT_TIMEOUT_MS).
    const config = testConfig(uniquePrefix(import.meta.url) + 'timeout:', {
      LIBVIRT_CALL_TIMEOUT_MS: '300',
      LIBVIRT_KEEPALIVE_INTERVAL_MS: '2000',
      LIBVIRT_KEEPALIVE_COUNT: '3',
      LIBVIRT_CONNECT_TIMEOUT_MS: HELD_CONNECT_TIMEOUT_MS,
    });
    connections = new HostConnections(config, new HostCredentialStore(config));
  });

  after(async () => {
    await connections.onApplicationShutdown();
    await fwd.cut();
  });

  it('marks the host unreachable: the next caller fails without a call, the probe brings it back', async () => {
    const host = {
      name: 'slow',
      uri: `test+tcp://127.0.0.1:${fwd.port}/default`,
      createdAt: new Date().toISOString(),
      createdBy: 'test',
    };
    const version = () => connections.withClient(host, (c) => c.rpc.connectGetLibVersion());
    assert.ok((await version()).libVer > 0n);
    const acceptedBefore = fwd.accepted;
    // libvirtd gets the calls and serves them; its answers never come back.
    fwd.holdReplies();
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
    // The probe connects and sends its handshake's first call, whose answer is held: it
    // waits there, one probe at a time, so it makes no other connection or call meanwhile.
    const callsAfterTimeout = fwd.calls;
    await waitFor(() => fwd.accepted > acceptedBefore, "the probe's connection");
    await waitFor(() => fwd.calls > callsAfterTimeout, "the probe's first call");
    const calls = fwd.calls;
    const accepted = fwd.accepted;
    await assert.rejects(
      version(),
      (e: unknown) => e instanceof AppError && e.code === 'HOST_UNREACHABLE',
    );
    // The connection that timed out stays in the pool (until its keepalive gives up): only
    // the breaker kept the call off it.
    assert.equal(fwd.calls, calls, 'the next caller sent the host no call');
    assert.equal(fwd.accepted, accepted, 'nor opened a connection to it');
    assert.equal(connections.status('slow').state, 'unreachable');
    fwd.resume();
    await waitFor(() => connections.status('slow').state === 'connected', 'the probe to succeed');
    assert.ok((await version()).libVer > 0n);
  });
});
