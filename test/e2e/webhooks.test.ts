/**
 * Webhooks and job callbacks end to end: the real app (ROLE=all: the
 * dispatcher reads the real Redis event stream in its consumer group, BullMQ
 * makes the deliveries) posting to real HTTP receivers on loopback. A
 * delivery verifies with the Standard Webhooks library (`standardwebhooks`),
 * a failure is retried and every attempt logged, 410 and a run of failures
 * disable a webhook, a disabled one gets nothing, a rotation signs with both
 * secrets, a job's end reaches its callbackUrl, and destinations the checks
 * deny are refused before any packet is sent.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Webhook } from 'standardwebhooks';
import request from 'supertest';
import type { GatewayEvent } from '#src/events/event.js';
import { newEvent } from '#src/events/event.js';
import { EVENT_STREAM, type EventStream } from '#src/events/event-stream.js';
import { redisKeys } from '#src/redis/keys.js';
import { DISPATCH_GROUP } from '#modules/webhooks/webhook-dispatcher.js';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { keysUnder, keyValue, registerSecret } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  REDIS_URL,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'webhooks-test-admin-token-0123456789';
const CALLBACK_SECRET = registerSecret(
  `whsec_${randomBytes(32).toString('base64')}`,
  'the job callback secret (WEBHOOK_CALLBACK_SECRET) of the webhooks test',
);
const TEST_URI = 'test+tcp://127.0.0.1/default';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver on loopback: answers each request with the next status queued (then 200). */
class Receiver {
  readonly got: Received[] = [];
  connections = 0;
  private readonly answers: number[] = [];
  private readonly events = new EventEmitter();

  private constructor(
    private readonly server: Server,
    readonly host: string,
  ) {}

  static async start(host = '127.0.0.1'): Promise<Receiver> {
    const server = createServer();
    const receiver = new Receiver(server, host);
    server.on('connection', () => receiver.connections++);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = receiver.answers.shift() ?? 200;
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(`answered ${status}`);
        receiver.got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        receiver.events.emit('got');
      });
    });
    server.listen(0, host);
    await once(server, 'listening');
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/hook'): string {
    return `http://${this.host}:${this.port}${path}`;
  }

  answer(...statuses: number[]): void {
    this.answers.push(...statuses);
  }

  /** The requests once there are `n` of them (fails after `ms`). */
  async waitFor(n: number, ms = 15_000): Promise<Received[]> {
    const signal = AbortSignal.timeout(ms);
    while (this.got.length < n) {
      await once(this.events, 'got', { signal }).catch(() => {
        assert.fail(`${this.url()} got ${this.got.length} of ${n} requests within ${ms} ms`);
      });
    }
    return this.got;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** `check`'s value once it gives one (not undefined), failing after `ms`: through waitFor. */
function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  ms = 15_000,
): Promise<NonNullable<T>> {
  return waitFor(async () => (await check()) ?? null, what, ms);
}

describe('webhooks', () => {
  let t: TestApp;
  let stream: EventStream;
  let client: LibvirtClient;
  const receivers: Receiver[] = [];
  const doms: RemoteDomain[] = [];
  const tag = randomUUID().slice(0, 8);
  const as = (server: () => TestApp['server']) => ({
    get: (url: string) => request(server()).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body?: object) =>
      request(server()).post(url).set('authorization', `Bearer ${ADMIN}`).send(body),
    patch: (url: string, body: object) =>
      request(server()).patch(url).set('authorization', `Bearer ${ADMIN}`).send(body),
    del: (url: string) => request(server()).delete(url).set('authorization', `Bearer ${ADMIN}`),
  });
  const http = as(() => t.server);

  const receiver = async (host?: string): Promise<Receiver> => {
    const r = await Receiver.start(host);
    receivers.push(r);
    return r;
  };

  /** A webhook to `r` for the events of domain `domain`; its id and secret. */
  const webhookFor = async (
    r: Receiver,
    domain: string,
    extra: object = {},
  ): Promise<{ id: string; secret: string }> => {
    const res = await http.post('/v1/webhooks', {
      url: r.url(),
      filter: { domains: [domain] },
      description: `test ${domain}`,
      ...extra,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { id: res.body.id, secret: res.body.secret };
  };

  /** Appends a domain event to the real stream, as a publisher does; the event with its id. */
  const append = async (
    domain: string,
    type: 'domain.started' | 'domain.stopped' = 'domain.started',
  ) => {
    const event = newEvent(type, 'local', {
      domain: { uuid: randomUUID(), name: domain },
      detail: type === 'domain.started' ? 'booted' : 'destroyed',
    });
    const [id] = await stream.append(event);
    return { id: id!, ...event } as GatewayEvent;
  };

  const deliveriesOf = async (id: string) => {
    const res = await http.get(`/v1/webhooks/${id}/deliveries`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items as Array<Record<string, unknown>>;
  };

  before(async () => {
    client = await LibvirtClient.connect(TEST_URI);
    for (let i = 0; i < 2; i++) {
      doms.push(
        (
          await client.rpc.domainDefineXmlFlags({
            xml: testDriverDomainXml(`vg-wh-${tag}-${i}`, 64),
            flags: 0,
          })
        ).dom,
      );
    }
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        ROLE: 'all',
        // The receivers listen on 127.0.0.1; the rest of loopback stays denied.
        WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32',
        WEBHOOK_RETRY_SCHEDULE: '0.1,0.2',
        WEBHOOK_DISABLE_AFTER_FAILURES: '2',
        WEBHOOK_TIMEOUT_MS: '5000',
        WEBHOOK_CALLBACK_SECRET: CALLBACK_SECRET,
        // A dead dispatcher's pending events are taken over after this.
        JOB_LOCK_MS: '1000',
      }),
    );
    stream = t.app.get<EventStream>(EVENT_STREAM);
    await http.post('/v1/hosts', { name: 'test', uri: TEST_URI }).expect(201);
  });

  after(async () => {
    await closeAllApps();
    for (const r of receivers) await r.close();
    for (const dom of doms) {
      await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await client.close();
    await deleteKeys(prefix);
  });

  it('shows the secret once, never again, and stores it only encrypted', async () => {
    const r = await receiver();
    const created = await http.post('/v1/webhooks', {
      url: r.url(),
      filter: { types: ['domain.*'], hosts: ['local'] },
      description: 'secret keeping',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { id, secret } = created.body as { id: string; secret: string };
    assert.match(id, /^wh_/);
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(Buffer.from(secret.slice(6), 'base64').length, 32);
    assert.deepEqual(created.body.filter, {
      hosts: ['local'],
      domains: null,
      types: ['domain.*'],
      jobs: null,
    });
    assert.equal(created.body.active, true);
    const one = await http.get(`/v1/webhooks/${id}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.secret, undefined);
    const list = await http.get('/v1/webhooks');
    assert.ok(list.body.items.some((w: { id: string }) => w.id === id));
    for (const res of [one, list]) assert.ok(!JSON.stringify(res.body).includes(secret.slice(6)));
    // Nowhere in Redis in clear (nor its key bytes in base64), nor in the logs.
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await keysUnder(redis, prefix);
      assert.ok(keys.includes(`${prefix}webhook:${id}`));
      for (const key of keys) {
        const value = JSON.stringify(await keyValue(redis, key));
        assert.ok(!value.includes(secret.slice(6)), `the secret is in clear in ${key}`);
      }
    } finally {
      await redis.quit();
    }
    assert.ok(!t.logs.raw.some((line) => line.includes(secret.slice(6))));
    // Audited, with the URL's origin only.
    const audit = await http.get(`/v1/audit?action=webhook.create&target=webhook:${id}`);
    assert.equal(audit.body.items.length, 1);
    assert.equal(audit.body.items[0].detail.destination, new URL(r.url()).origin);
  });

  it('signs a delivery so that the standardwebhooks library verifies it', async () => {
    const r = await receiver();
    const domain = `sig-${tag}`;
    const { id, secret } = await webhookFor(r, domain);
    const event = await append(domain);
    const [got] = await r.waitFor(1);
    const payload = new Webhook(secret).verify(got!.body, got!.headers as Record<string, string>);
    assert.deepEqual(payload, JSON.parse(JSON.stringify(event)));
    assert.equal(got!.headers['content-type'], 'application/json');
    assert.match(String(got!.headers['webhook-id']), /^dlv_[A-Za-z0-9_-]{22}$/);
    assert.ok(Math.abs(Number(got!.headers['webhook-timestamp']) - Date.now() / 1000) < 60);
    assert.match(String(got!.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]{43}=$/);
    // Another secret does not verify it.
    assert.throws(() =>
      new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(
        got!.body,
        got!.headers as Record<string, string>,
      ),
    );
    const [attempt] = await until('the attempt is logged', async () => {
      const items = await deliveriesOf(id);
      return items.length > 0 ? items : undefined;
    });
    assert.equal(attempt!.deliveryId, got!.headers['webhook-id']);
    assert.equal(attempt!.eventId, event.id);
    assert.equal(attempt!.eventType, 'domain.started');
    assert.equal(attempt!.statusCode, 200);
    assert.equal(attempt!.success, true);
    assert.equal(attempt!.attempt, 1);
    assert.equal(attempt!.responseBody, 'answered 200');
    assert.equal(typeof attempt!.latencyMs, 'number');
  });

  it('delivers an event a dead dispatcher left pending, and an entry handled twice only once', async () => {
    const r = await receiver();
    const domain = `takeover-${tag}`;
    await webhookFor(r, domain);
    const keys = redisKeys(prefix);
    const redis = new Redis(REDIS_URL);
    try {
      // A dispatcher that reads an entry (in the same step as it is appended, so the
      // live one cannot read it first) and dies before it acknowledges it.
      const event = newEvent('domain.started', 'local', {
        domain: { uuid: randomUUID(), name: domain },
        detail: 'booted',
      });
      const [[, id]] = (await redis
        .multi()
        .xadd(keys.events, '*', 'e', JSON.stringify(event))
        .xreadgroup(
          'GROUP',
          DISPATCH_GROUP,
          'dead-dispatcher',
          'COUNT',
          1,
          'STREAMS',
          keys.events,
          '>',
        )
        .exec()) as [[null, string], unknown];
      const pending = async () =>
        ((await redis.xpending(keys.events, DISPATCH_GROUP, id, id, 10)) as unknown[]).length;
      assert.equal(await pending(), 1);
      const [got] = await r.waitFor(1);
      assert.equal((JSON.parse(got!.body) as GatewayEvent).id, id);
      await until('the entry is acknowledged', async () =>
        (await pending()) === 0 ? true : undefined,
      );

      // The same entry handed out again (as to a worker that died after queueing its
      // deliveries): taken over and acknowledged, but not delivered a second time.
      await redis.xclaim(keys.events, DISPATCH_GROUP, 'dead-dispatcher', 0, id, 'FORCE');
      assert.equal(await pending(), 1);
      await until('the entry is acknowledged again', async () =>
        (await pending()) === 0 ? true : undefined,
      );
      const next = await append(domain);
      const all = await r.waitFor(2);
      assert.equal((JSON.parse(all[1]!.body) as GatewayEvent).id, next.id);
      assert.equal(r.got.length, 2);
    } finally {
      await redis.quit();
    }
  });

  it('retries a failed delivery (500, then 200) and logs both attempts; redelivers on request', async () => {
    const r = await receiver();
    r.answer(500);
    const domain = `retry-${tag}`;
    const { id, secret } = await webhookFor(r, domain);
    const event = await append(domain);
    const [first, second] = await r.waitFor(2);
    assert.equal(first!.headers['webhook-id'], second!.headers['webhook-id']);
    assert.equal(first!.body, second!.body);
    new Webhook(secret).verify(second!.body, second!.headers as Record<string, string>);
    const log = await until('both attempts are logged', async () => {
      const items = await deliveriesOf(id);
      return items.length >= 2 ? items : undefined;
    });
    // Newest first.
    assert.deepEqual(
      log.map((a) => [a.attempt, a.statusCode, a.success, a.willRetry, a.eventId]),
      [
        [2, 200, true, false, event.id],
        [1, 500, false, true, event.id],
      ],
    );
    assert.equal(log[1]!.error, 'answered 500');
    assert.equal(log[1]!.responseBody, 'answered 500');
    assert.equal(log[0]!.deliveryId, log[1]!.deliveryId);

    // One delivery again, then every event of a time range again.
    const again = await http.post(
      `/v1/webhooks/${id}/deliveries/${String(log[0]!.deliveryId)}/redeliver`,
    );
    assert.equal(again.status, 202, JSON.stringify(again.body));
    assert.equal(again.body.queued, 1);
    const [, , third] = await r.waitFor(3);
    assert.equal(third!.headers['webhook-id'], first!.headers['webhook-id']);
    assert.equal(third!.body, first!.body);
    const later = await append(domain, 'domain.stopped');
    await r.waitFor(4);
    const range = await http.post(`/v1/webhooks/${id}/redeliver`, {
      since: new Date(Number(event.id.split('-')[0])).toISOString(),
    });
    assert.equal(range.status, 202, JSON.stringify(range.body));
    assert.equal(range.body.queued, 2);
    assert.equal(range.body.truncated, false);
    assert.equal(range.body.lastEventId, later.id);
    const all = await r.waitFor(6);
    const redelivered = all.slice(4).map((g) => (JSON.parse(g.body) as GatewayEvent).id);
    assert.deepEqual(redelivered.sort(), [event.id, later.id].sort());
    const withRedeliveries = await until('the redeliveries are logged', async () => {
      const items = await deliveriesOf(id);
      return items.filter((a) => a.redelivery).length >= 3 ? items : undefined;
    });
    assert.ok(withRedeliveries.filter((a) => a.redelivery).every((a) => a.success));
    const missing = await http.post(
      `/v1/webhooks/${id}/deliveries/dlv_nosuchdelivery000000/redeliver`,
    );
    assert.equal(missing.status, 404);
  });

  it('disables a webhook at once on 410, says so with an event, and sends it nothing more', async () => {
    const gone = await receiver();
    gone.answer(410);
    const signal = await receiver();
    const domain = `gone-${tag}`;
    const goneHook = await webhookFor(gone, domain);
    await webhookFor(signal, domain);
    await append(domain);
    await gone.waitFor(1);
    const disabled = await until('the webhook is disabled', async () => {
      const res = await http.get(`/v1/webhooks/${goneHook.id}`);
      return res.body.active === false ? res.body : undefined;
    });
    assert.equal(disabled.disabledReason, 'gone');
    assert.ok(disabled.disabledAt);
    const announced = await until('webhook.disabled is in the stream', async () => {
      const page = await stream.page(null, 10_000, (e) => e.type === 'webhook.disabled');
      const found = page.events.filter((e) => e.data?.webhookId === goneHook.id);
      return found.length > 0 ? found : undefined;
    });
    assert.equal(announced.length, 1);
    assert.deepEqual(announced[0]!.data, { webhookId: goneHook.id, reason: 'gone' });
    assert.equal(announced[0]!.host, null);
    const log = await deliveriesOf(goneHook.id);
    assert.deepEqual(
      log.map((a) => [a.statusCode, a.willRetry]),
      [[410, false]],
    );

    // The next event reaches the active webhook; the disabled one gets nothing.
    const next = await append(domain);
    const got = await signal.waitFor(2);
    assert.ok(got.some((g) => (JSON.parse(g.body) as GatewayEvent).id === next.id));
    assert.equal(gone.got.length, 1);
    assert.equal((await deliveriesOf(goneHook.id)).length, 1);
    const refused = await http.post(`/v1/webhooks/${goneHook.id}/redeliver`, {
      since: new Date(0).toISOString(),
    });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'INVALID_STATE');
  });

  it('disables a webhook after WEBHOOK_DISABLE_AFTER_FAILURES failed deliveries', async () => {
    const r = await receiver();
    r.answer(...new Array<number>(6).fill(503));
    const domain = `fail-${tag}`;
    const { id } = await webhookFor(r, domain);
    await append(domain);
    await append(domain);
    // Each delivery is tried 3 times (WEBHOOK_RETRY_SCHEDULE has 2 retries).
    await r.waitFor(6);
    const disabled = await until('the webhook is disabled', async () => {
      const res = await http.get(`/v1/webhooks/${id}`);
      return res.body.active === false ? res.body : undefined;
    });
    assert.equal(disabled.disabledReason, 'failures');
    assert.equal(disabled.consecutiveFailures, 2);
    const log = await deliveriesOf(id);
    assert.equal(log.length, 6);
    assert.ok(log.every((a) => a.statusCode === 503 && a.success === false));
    assert.equal(log.filter((a) => a.willRetry === false).length, 2);
    await until('webhook.disabled is in the stream', async () => {
      const page = await stream.page(null, 10_000, (e) => e.type === 'webhook.disabled');
      const found = page.events.find(
        (e) => e.data?.webhookId === id && e.data?.reason === 'failures',
      );
      return found ?? undefined;
    });
    // Enabled again: the count starts over, and new events are delivered.
    const enabled = await http.patch(`/v1/webhooks/${id}`, { active: true });
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    assert.equal(enabled.body.active, true);
    assert.equal(enabled.body.disabledReason, null);
    assert.equal(enabled.body.consecutiveFailures, 0);
    const after = await append(domain);
    const got = await r.waitFor(7);
    assert.equal((JSON.parse(got[6]!.body) as GatewayEvent).id, after.id);
  });

  it('signs with both secrets during the grace period of a rotation, and each verifies', async () => {
    const r = await receiver();
    const domain = `rotate-${tag}`;
    const { id, secret: old } = await webhookFor(r, domain);
    const rotated = await http.post(`/v1/webhooks/${id}/rotate-secret`);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const fresh = rotated.body.secret as string;
    assert.match(fresh, /^whsec_/);
    assert.notEqual(fresh, old);
    assert.ok(Date.parse(rotated.body.previousSecretExpiresAt) > Date.now() + 3_600_000);
    const shown = await http.get(`/v1/webhooks/${id}`);
    assert.ok(!JSON.stringify(shown.body).includes(fresh.slice(6)));
    assert.equal(shown.body.previousSecretExpiresAt, rotated.body.previousSecretExpiresAt);

    await append(domain);
    const [got] = await r.waitFor(1);
    const headers = got!.headers as Record<string, string>;
    const signatures = headers['webhook-signature']!.split(' ');
    assert.equal(signatures.length, 2);
    for (const [secret, signature] of [
      [fresh, signatures[0]!],
      [old, signatures[1]!],
    ] as const) {
      new Webhook(secret).verify(got!.body, { ...headers, 'webhook-signature': signature });
      assert.throws(() =>
        new Webhook(secret === fresh ? old : fresh).verify(got!.body, {
          ...headers,
          'webhook-signature': signature,
        }),
      );
    }
    new Webhook(fresh).verify(got!.body, headers);
    new Webhook(old).verify(got!.body, headers);
  });

  it('delivers a job callback, signed with WEBHOOK_CALLBACK_SECRET, when the job ends (REST and GraphQL)', async () => {
    const r = await receiver();
    const domain = `vg-wh-${tag}-0`;
    const res = await http.post(
      `/v1/hosts/test/domains/${domain}/actions/start?callbackUrl=${encodeURIComponent(r.url('/cb?job=1'))}`,
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.request.callbackUrl, undefined, 'not part of the job request');
    const [got] = await r.waitFor(1);
    const event = new Webhook(CALLBACK_SECRET).verify(
      got!.body,
      got!.headers as Record<string, string>,
    ) as GatewayEvent;
    assert.equal(event.type, 'job.state-changed');
    assert.equal(event.job!.id, res.body.id);
    assert.equal(event.job!.state, 'completed');
    assert.deepEqual(event.job!.result, { state: 'running', changed: true });
    assert.equal(event.domain!.name, domain);

    const gql = await request(t.server)
      .post('/graphql')
      .set('authorization', `Bearer ${ADMIN}`)
      .send({
        query: `mutation($cb: String) { domainAction(host: "test", domain: "${domain}", action: destroy, callbackUrl: $cb) { id state } }`,
        variables: { cb: r.url('/cb?job=2') },
      });
    assert.equal(gql.status, 200, JSON.stringify(gql.body));
    assert.equal(gql.body.errors, undefined, JSON.stringify(gql.body));
    const [, second] = await r.waitFor(2);
    const ended = new Webhook(CALLBACK_SECRET).verify(
      second!.body,
      second!.headers as Record<string, string>,
    ) as GatewayEvent;
    assert.equal(ended.job!.id, gql.body.data.domainAction.id);
    assert.equal(ended.job!.state, 'completed');
    assert.equal(ended.job!.type, 'domain.destroy');

    // A callback checked as a webhook URL is: refused before a job exists.
    const denied = await receiver('127.0.0.2');
    const refused = await http.post(
      `/v1/hosts/test/domains/${domain}/actions/start?callbackUrl=${encodeURIComponent(denied.url())}`,
    );
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.errors[0].field, 'callbackUrl');
    assert.match(refused.body.detail, /127\.0\.0\.2 is a loopback address/);
    const twice = await http.post(
      `/v1/hosts/test/domains/${domain}/actions/start?callbackUrl=${encodeURIComponent(r.url())}&callbackUrl=${encodeURIComponent(r.url())}`,
    );
    assert.equal(twice.status, 400);
    const undefine = await http.del(
      `/v1/hosts/test/domains/vg-wh-${tag}-1?callbackUrl=${encodeURIComponent(denied.url())}`,
    );
    assert.equal(undefine.status, 400, JSON.stringify(undefine.body));
    // Taken out of the query before its DTO is validated: refused as a destination, not as an unknown field.
    assert.match(undefine.body.detail, /^callbackUrl: 127\.0\.0\.2 is a loopback address/);
    assert.equal(denied.connections, 0);
  });

  it('refuses bad input and denied destinations at creation, without a packet', async () => {
    const denied = await receiver('127.0.0.2');
    const cases: [object, string, RegExp][] = [
      [{ url: denied.url() }, 'url', /127\.0\.0\.2 is a loopback address \(127\.0\.0\.0\/8\)/],
      [{ url: 'http://[::1]:9/' }, 'url', /::1 is the loopback address/],
      [{ url: 'http://169.254.169.254/latest/meta-data' }, 'url', /cloud metadata/],
      [{ url: 'http://[fd00:ec2::254]/' }, 'url', /cloud metadata/],
      [{ url: 'http://[::ffff:10.1.2.3]/' }, 'url', /private address/],
      [{ url: 'http://0.0.0.0:80/' }, 'url', /unspecified/],
      [{ url: 'http://2130706434/' }, 'url', /127\.0\.0\.2 is a loopback/],
      [{ url: 'ftp://example.com/' }, 'url', /http:\/\/ or https:\/\//],
      [{ url: 'http://user:pw@127.0.0.1/' }, 'url', /user name or password/],
      [{ url: 'not a url' }, 'url', /absolute http/],
      [
        { url: 'http://127.0.0.1/', filter: { types: ['domain.exploded'] } },
        'filter.types[0]',
        /no event type/,
      ],
      [{ url: 'http://127.0.0.1/', bogus: true }, 'bogus', /should not exist/],
      [{ url: 'http://127.0.0.1/', description: 'a\u0000b' }, 'description', /control/],
    ];
    for (const [body, field, message] of cases) {
      const res = await http.post('/v1/webhooks', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, 'INVALID_ARGUMENT');
      assert.equal(res.body.errors[0].field, field, JSON.stringify(res.body));
      assert.match(res.body.detail, message);
    }
    assert.equal(denied.connections, 0, 'no packet reached the denied receiver');
    // Refusals past validation are audited, with the destination's origin.
    const refusals = await http.get('/v1/audit?action=webhook.create&result=refused');
    const origin = new URL(denied.url()).origin;
    const entry = refusals.body.items.find(
      (e: { detail: { destination: string } }) => e.detail.destination === origin,
    );
    assert.equal(entry?.code, 'INVALID_ARGUMENT');
  });

  it('changes, disables, lists and deletes webhooks', async () => {
    const r = await receiver();
    const domain = `manage-${tag}`;
    const { id } = await webhookFor(r, domain);
    const changed = await http.patch(`/v1/webhooks/${id}`, {
      description: 'renamed',
      filter: { domains: [domain], types: ['domain.stopped'] },
    });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.equal(changed.body.description, 'renamed');
    assert.deepEqual(changed.body.filter.types, ['domain.stopped']);
    assert.equal((await http.patch(`/v1/webhooks/${id}`, {})).status, 400);
    const off = await http.patch(`/v1/webhooks/${id}`, { active: false });
    assert.equal(off.body.active, false);
    assert.equal(off.body.disabledReason, 'manual');
    const page = await http.get('/v1/webhooks?limit=1');
    assert.equal(page.body.items.length, 1);
    assert.ok(page.body.nextCursor);
    assert.equal((await http.del(`/v1/webhooks/${id}`)).status, 204);
    assert.equal((await http.get(`/v1/webhooks/${id}`)).status, 404);
    assert.equal((await http.get(`/v1/webhooks/${id}/deliveries`)).status, 404);
    assert.equal((await http.del(`/v1/webhooks/${id}`)).status, 404);
    const audit = await http.get(`/v1/audit?target=webhook:${id}`);
    assert.deepEqual(
      audit.body.items.map((e: { action: string; result: string }) => `${e.action} ${e.result}`),
      [
        'webhook.delete refused',
        'webhook.delete accepted',
        'webhook.update accepted',
        'webhook.update refused',
        'webhook.update accepted',
        'webhook.create accepted',
      ],
    );
  });

  it('without the allow list, refuses loopback by address and by name, and refuses webhooks without VIRTGATE_SECRETS_KEY', async () => {
    await closeAllApps();
    const other = `${prefix}bare:`;
    t = await startApp(
      testConfig(other, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        VIRTGATE_SECRETS_KEY: '',
        WEBHOOK_CALLBACK_SECRET: CALLBACK_SECRET,
      }),
    );
    const r = await receiver();
    for (const [url, message] of [
      [r.url(), /^url: 127\.0\.0\.1 is a loopback address/],
      [
        `http://localhost:${r.port}/hook`,
        /^url: 127\.0\.0\.1 \('localhost' resolves to it\) is a loopback/,
      ],
    ] as const) {
      const res = await http.post('/v1/webhooks', { url });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.detail, message);
    }
    await http.post('/v1/hosts', { name: 'test', uri: TEST_URI }).expect(201);
    const job = await http.post(
      `/v1/hosts/test/domains/vg-wh-${tag}-1/actions/start?callbackUrl=${encodeURIComponent(`http://localhost:${r.port}/`)}`,
    );
    assert.equal(job.status, 400, JSON.stringify(job.body));
    assert.match(job.body.detail, /^callbackUrl: 127\.0\.0\.1 \('localhost' resolves to it\)/);
    assert.equal(r.connections, 0, 'no packet reached the receiver');
    // An allowed destination, but no key to keep its secret with: 409 naming the variable.
    const keyless = await http.post('/v1/webhooks', { url: 'https://203.0.113.7/hook' });
    assert.equal(keyless.status, 409, JSON.stringify(keyless.body));
    assert.equal(keyless.body.code, 'INVALID_STATE');
    assert.match(keyless.body.detail, /VIRTGATE_SECRETS_KEY/);
    await closeAllApps();
    await deleteKeys(other);
  });
});
