/**
 * The event stream end to end, against real Redis, libvirtd and QEMU (TCG):
 * a domain driven with `virsh`, outside the gateway, comes out of the stream
 * as its lifecycle events, in order, over server-sent events and JSON pages;
 * a client that disconnects resumes from Last-Event-ID and misses nothing; a
 * cursor older than what is retained is refused with 410; filters are checked.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { createClient } from 'graphql-ws';
import { Webhook } from 'standardwebhooks';
import request from 'supertest';
import WebSocket from 'ws';
import { EventFeed } from '#src/events/event-feed.js';
import { EVENT_STREAM, type EventStream } from '#src/events/event-stream.js';
import { newEvent, type GatewayEvent } from '#src/events/event.js';
import { redisKeys } from '#src/redis/keys.js';
import { LibvirtClient, uuidString, type RemoteDomain } from '#src/libvirt/index.js';
import { HostEventPublisher } from '#modules/events/host-event-publisher.js';
import { tcgDomainXml } from '../support/domain-xml.js';
import { createChain, makeImageDir } from '../support/qemu-images.js';
import { eventSchemaErrors } from '../support/json-schema.js';
import { SseClient } from '../support/sse-client.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  REDIS_URL,
  startApp,
  storeToken,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const run = promisify(execFile);
const virsh = (...args: string[]) => run('virsh', ['-c', 'qemu:///system', ...args]);

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'events-test-admin-token-000';
const auth = { authorization: `Bearer ${ADMIN}` };

describe('events: libvirt lifecycle through SSE and JSON pages', () => {
  let t: TestApp;
  let base: string;
  let client: LibvirtClient;
  let dom: RemoteDomain;
  let removeDir: () => Promise<void>;
  const name = `vg-ev-${randomUUID().slice(0, 6)}`;
  const other = `vg-ev-other-${randomUUID().slice(0, 6)}`;
  const domainEvents = (e: GatewayEvent) => e.domain?.name === name;

  before(async () => {
    client = await LibvirtClient.connect('qemu:///system');
    const images = await makeImageDir(name);
    removeDir = images.remove;
    const [disk] = await createChain(images.dir, ['disk']);
    const [otherDisk] = await createChain(images.dir, ['other']);
    dom = (await client.rpc.domainDefineXmlFlags({ xml: tcgDomainXml(name, disk!), flags: 0 })).dom;
    await client.rpc.domainDefineXmlFlags({ xml: tcgDomainXml(other, otherDisk!), flags: 0 });
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        EVENTS_LEASE_MS: '1000',
        EVENTS_HEARTBEAT_SECONDS: '1',
        // The webhook receiver of the three-channel test listens there.
        WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
      }),
    );
    await t.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(t.server.address() as AddressInfo).port}`;
    // The worker inside this app holds the local host's events once its link is announced up.
    const publisher = t.app.get(HostEventPublisher, { strict: false });
    const redis = new Redis(REDIS_URL);
    await waitFor(
      async () =>
        publisher.hosts.includes('local') &&
        (await redis.get(redisKeys(prefix).eventsHostLink('local'))) === 'up',
      'the local host to be held and reconciled',
    );
    redis.disconnect();
  });

  after(async () => {
    for (const n of [name, other]) {
      await virsh('destroy', n).catch(() => undefined);
      await virsh('undefine', n).catch(() => undefined);
    }
    await client.close();
    await closeAllApps();
    await removeDir();
    await deleteKeys(prefix);
  });

  it('streams start, pause, resume and destroy done with virsh, in order, with their details', async () => {
    const sse = await SseClient.open(`${base}/v1/events?domain=${name}`, auth);
    assert.equal(sse.status, 200);
    assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
    await waitFor(() => sse.comments.includes('connected'), 'the stream to open');
    const before = await request(t.server).get('/v1/events?limit=1').set(auth);
    await virsh('start', name);
    await virsh('suspend', name);
    await virsh('resume', name);
    await virsh('destroy', name);
    const got = await sse.waitForEvents<GatewayEvent>(
      (e) => e.type === 'domain.stopped',
      1,
      'the stop event',
    );
    assert.ok(got);
    const seen = sse.parsed<GatewayEvent>().filter(domainEvents);
    // libvirt says more than the four (a resume as QEMU starts, a shutdown before the stop):
    // the four come in order, with their details, among them.
    assertInOrder(
      seen.map((e) => `${e.type}/${e.detail}`),
      [
        'domain.started/booted',
        'domain.suspended/paused',
        'domain.resumed/unpaused',
        'domain.stopped/destroyed',
      ],
    );
    for (const [i, e] of seen.entries()) {
      assert.equal(sse.events[i]!.id, e.id, 'the SSE id is the event id');
      assert.equal(sse.events[i]!.event, e.type, 'the SSE event name is the type');
      assert.equal(e.host, 'local');
      assert.equal(e.domain!.uuid, uuidString(dom.uuid));
      assert.equal(e.reconciled, false);
    }
    // Each is what openapi/asyncapi.yaml says an event is.
    for (const e of sse.parsed<GatewayEvent>()) assert.deepEqual(eventSchemaErrors(e), [], e.type);
    // Ids only grow.
    const ids = seen.map((e) => e.id);
    assert.deepEqual([...ids].sort(compareIds), ids);
    // A heartbeat comes while nothing happens.
    await waitFor(() => sse.comments.includes('heartbeat'), 'a heartbeat comment');
    sse.close();

    // The same events, as a JSON page after the cursor read before.
    const after = before.body.nextCursor as string | null;
    const page = await request(t.server)
      .get(`/v1/events?domain=${name}${after ? `&after=${after}` : ''}`)
      .set(auth);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.deepEqual(
      (page.body.items as GatewayEvent[]).map((e) => e.id),
      ids,
    );
    assert.equal(page.body.more, false);
  });

  it('delivers the same events, with the same ids, over SSE, GraphQL subscriptions and webhooks', async () => {
    const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(204).end();
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const hook = await request(t.server)
      .post('/v1/webhooks')
      .set(auth)
      .send({
        url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
        filter: { domains: [name], types: ['domain.*'] },
      });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
    const sse = await SseClient.open(`${base}/v1/events?domain=${name}&type=domain.*`, auth);
    await waitFor(() => sse.comments.includes('connected'), 'the stream to open');
    const gql = createClient({
      url: `${base.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { Authorization: `Bearer ${ADMIN}` },
      retryAttempts: 0,
    });
    const viaGraphql: { id: string; type: string }[] = [];
    let subscribed = false;
    const unsubscribe = gql.subscribe<{ events: { id: string; type: string } }>(
      {
        query: `subscription { events(filter: { domains: ["${name}"], types: ["domain.*"] }) { id type } }`,
      },
      {
        next: (r) => {
          if (r.data) viaGraphql.push(r.data.events);
        },
        error: (err) => assert.fail(`the subscription failed: ${JSON.stringify(err)}`),
        complete: () => undefined,
      },
    );
    gql.on('connected', () => (subscribed = true));
    await waitFor(() => subscribed, 'the GraphQL subscription to connect');
    // The subscription is registered once its operation reached the gateway's feed.
    const feed = t.app.get(EventFeed, { strict: false });
    await waitFor(() => feed.size >= 2, 'the SSE client and the subscriber to follow the feed');
    await virsh('start', name);
    await virsh('suspend', name);
    await virsh('resume', name);
    await virsh('destroy', name);
    const viaSse = await sse
      .waitForEvents<GatewayEvent>((e) => e.type === 'domain.stopped', 1, 'the stop over SSE')
      .then(() => sse.parsed<GatewayEvent>());
    const ids = viaSse.map((e) => e.id);
    await waitFor(() => viaGraphql.length >= ids.length, 'every event over GraphQL');
    await waitFor(() => received.length >= ids.length, 'every event as a webhook delivery');
    assert.deepEqual(
      viaGraphql.map((e) => e.id),
      ids,
      'GraphQL: the same events, in the same order',
    );
    const delivered = received.map((r) => JSON.parse(r.body) as GatewayEvent);
    assert.deepEqual(
      delivered.map((e) => e.id).sort(compareIds),
      ids,
      'webhooks: the same events (each delivery its own request)',
    );
    const secret = hook.body.secret as string;
    for (const r of received) {
      // Each verifies as the Standard Webhooks library of a receiver checks it.
      new Webhook(secret).verify(r.body, r.headers as Record<string, string>);
    }
    await request(t.server).delete(`/v1/webhooks/${hook.body.id}`).set(auth).expect(204);
    unsubscribe();
    await gql.dispose();
    sse.close();
    receiver.closeAllConnections();
    receiver.close();
  });

  it('resumes from Last-Event-ID: every event missed while away arrives once, in order', async () => {
    const first = await SseClient.open(`${base}/v1/events?domain=${name}&type=domain.*`, auth);
    await waitFor(() => first.comments.includes('connected'), 'the stream to open');
    await virsh('start', name);
    const [started] = await first.waitForEvents<GatewayEvent>(
      (e) => e.type === 'domain.started',
      1,
      'the start',
    );
    first.close();
    // Away: these happen while no client listens.
    await virsh('suspend', name);
    await virsh('resume', name);
    await virsh('destroy', name);
    const resumed = await SseClient.open(`${base}/v1/events?domain=${name}&type=domain.*`, {
      ...auth,
      'last-event-id': started!.id,
    });
    assert.equal(resumed.status, 200);
    await resumed.waitForEvents<GatewayEvent>((e) => e.type === 'domain.stopped', 1, 'the stop');
    // Then one more, live, after the catch-up.
    await virsh('start', name);
    await resumed.waitForEvents<GatewayEvent>((e) => e.type === 'domain.started', 1, 'the start');
    await virsh('destroy', name);
    await resumed.waitForEvents<GatewayEvent>(
      (e) => e.type === 'domain.stopped',
      2,
      'the 2nd stop',
    );
    const types = resumed.parsed<GatewayEvent>().map((e) => e.type);
    assert.equal(types[0], 'domain.suspended', 'the first event after the cursor comes first');
    assertInOrder(types, [
      'domain.suspended',
      'domain.resumed',
      'domain.stopped',
      'domain.started',
      'domain.stopped',
    ]);
    const ids = resumed.parsed<GatewayEvent>().map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'no event twice');
    assert.ok(
      ids.every((id) => compareIds(id, started!.id) > 0),
      'nothing at or before the cursor',
    );
    resumed.close();
  });

  it('filters on the server: another domain, or a type outside the filter, is not sent', async () => {
    const sse = await SseClient.open(`${base}/v1/events?domain=${name}&type=domain.started`, auth);
    await waitFor(() => sse.comments.includes('connected'), 'the stream to open');
    await virsh('start', other);
    await virsh('start', name);
    await virsh('destroy', name);
    await virsh('destroy', other);
    // The stop of `other` is the last thing done; once it is in the stream, the filtered
    // client has had every event it would ever get of these.
    await waitFor(async () => {
      const page = await request(t.server)
        .get(`/v1/events?domain=${other}&type=domain.stopped`)
        .set(auth);
      return (page.body.items as GatewayEvent[]).length > 0;
    }, 'the last stop in the stream');
    await waitFor(() => sse.events.length >= 1, 'the filtered start');
    const seen = sse.parsed<GatewayEvent>();
    assert.deepEqual(
      seen.map((e) => [e.type, e.domain!.name]),
      [['domain.started', name]],
    );
    sse.close();
  });

  it('refuses a bad filter or cursor with 400 naming it', async () => {
    const bad = await request(t.server).get('/v1/events?type=domain.started,nope.*').set(auth);
    assert.equal(bad.status, 400);
    assert.match(bad.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.deepEqual(
      (bad.body.errors as { field: string }[]).map((e) => e.field),
      ['type[1]'],
    );
    const cursor = await request(t.server).get('/v1/events?after=yesterday').set(auth);
    assert.equal(cursor.status, 400);
    assert.equal(cursor.body.errors[0].field, 'after');
    const sse = await SseClient.open(`${base}/v1/events`, { ...auth, 'last-event-id': 'x' });
    assert.equal(sse.status, 400);
    assert.equal(JSON.parse(sse.body).errors[0].field, 'Last-Event-ID');
    const anonymous = await request(t.server).get('/v1/events');
    assert.equal(anonymous.status, 401);
  });

  it('shows a scoped token only the events of its domains', async () => {
    const token = `events-test-scoped-${randomUUID()}`;
    await storeToken(prefix, token, {
      id: 'scoped-viewer',
      role: 'viewer',
      scopes: [{ host: 'local', domains: [name] }],
    });
    const sse = await SseClient.open(`${base}/v1/events?type=domain.*`, {
      authorization: `Bearer ${token}`,
    });
    await waitFor(() => sse.comments.includes('connected'), 'the stream to open');
    await virsh('start', other);
    await virsh('start', name);
    await virsh('destroy', other);
    await virsh('destroy', name);
    await sse.waitForEvents<GatewayEvent>((e) => e.type === 'domain.stopped', 1, 'its stop');
    const names = new Set(sse.parsed<GatewayEvent>().map((e) => e.domain?.name));
    assert.deepEqual([...names], [name]);
    sse.close();
    const page = await request(t.server)
      .get('/v1/events?type=domain.*')
      .set('authorization', `Bearer ${token}`);
    assert.equal(page.status, 200);
    assert.equal(page.body.scopeFiltered, true);
    assert.ok((page.body.items as GatewayEvent[]).every((e) => e.domain?.name === name));
  });
});

describe('events: retention and expired cursors', () => {
  const retentionPrefix = `${prefix}retention:`;
  let t: TestApp;
  let base: string;

  before(async () => {
    t = await startApp(
      testConfig(retentionPrefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        EVENTS_RETENTION_MAX_EVENTS: '5',
      }),
    );
    await t.app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(t.server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(retentionPrefix);
  });

  it('answers 410 CURSOR_EXPIRED, naming the oldest retained id, on pages and on the stream', async () => {
    const stream = t.app.get<symbol, EventStream>(EVENT_STREAM, { strict: false });
    const made = (i: number) => newEvent('host.reconnected', `h${i}`);
    const [firstId] = await stream.append(made(0));
    const ids = await stream.append(...Array.from({ length: 9 }, (_, i) => made(i + 1)));
    const kept = ids.slice(-5);
    // The first retained, and the one before it (its predecessor was trimmed but was seen).
    const ok = await request(t.server).get(`/v1/events?after=${ids[3]}`).set(auth);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(
      (ok.body.items as GatewayEvent[]).map((e) => e.id),
      kept,
    );
    const gone = await request(t.server).get(`/v1/events?after=${firstId}`).set(auth);
    assert.equal(gone.status, 410);
    assert.match(gone.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.equal(gone.body.code, 'CURSOR_EXPIRED');
    assert.equal(gone.body.oldestEventId, kept[0]);
    const sse = await SseClient.open(`${base}/v1/events`, { ...auth, 'last-event-id': firstId! });
    assert.equal(sse.status, 410);
    assert.equal(JSON.parse(sse.body).oldestEventId, kept[0]);
    // A cursor from a stream that was reset (ahead of every id given) is refused the same way.
    const ahead = await request(t.server).get('/v1/events?after=99999999999999-0').set(auth);
    assert.equal(ahead.status, 410);
  });

  it('cuts off a client that does not read, instead of buffering for it without limit', async () => {
    const stream = t.app.get<symbol, EventStream>(EVENT_STREAM, { strict: false });
    const slow = await SseClient.open(`${base}/v1/events`, auth, { readPaused: true });
    assert.equal(slow.status, 200);
    const big = { blob: 'x'.repeat(64 * 1024) };
    // Far more than EVENTS_CLIENT_BUFFER_BYTES (1 MiB) plus the socket's own buffers.
    const feed = t.app.get(EventFeed, { strict: false });
    // The answer's head can reach the client before the stream follows the feed.
    await waitFor(() => feed.size >= 1, 'the slow client to follow the feed');
    const followers = feed.size;
    for (let i = 0; i < 200 && feed.size === followers; i++) {
      await stream.append(
        ...Array.from({ length: 5 }, () => newEvent('host.reconnected', 'x', { data: big })),
      );
      // The gateway reads the stream (and writes to the client) before the next batch.
      await waitFor(
        async () => (await stream.latest()) === feed.position,
        'the feed to read the batch',
      );
    }
    assert.equal(feed.size, followers - 1, 'the slow client was let go');
    // Once it reads again, it gets what was sent before the cut, then the end.
    slow.resume();
    await waitFor(() => slow.ended, 'the slow client to be cut off');
  });
});

/** `expected` appears in `actual` in this order (other entries may come between). */
function assertInOrder(actual: string[], expected: string[]): void {
  let at = 0;
  for (const item of actual) if (item === expected[at]) at++;
  assert.equal(
    at,
    expected.length,
    `expected ${JSON.stringify(expected)} in order within ${JSON.stringify(actual)}`,
  );
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am! !== bm! ? (am! < bm! ? -1 : 1) : as! === bs! ? 0 : as! < bs! ? -1 : 1;
}
