/**
 * GraphQL subscriptions over graphql-ws at /graphql, with the real
 * `graphql-ws` client over `ws` against a listening app: authentication in
 * connection_init, the origin check, the events subscription (filters, the
 * scope rule, resuming with `after`, expired cursors, a slow subscriber cut
 * off), job(id) until the job is final, the document limits, a subscriber on
 * each of two api processes, and no feed subscription left behind.
 * Real Redis; jobs run on libvirtd's test driver by a worker process.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import request from 'supertest';
import WebSocket from 'ws';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { newEvent, type GatewayEvent, type NewEvent } from '#src/events/event.js';
import { EVENT_TYPE_NAMES } from '#src/events/event-types.js';
import { JOB_TYPES } from '#jobs/job-types.js';
import { EventFeed } from '#src/events/event-feed.js';
import { EVENT_STREAM, type EventStream } from '#src/events/event-stream.js';
import { graphqlEnumName } from '#src/graphql/value-enum.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  REDIS_URL,
  startApp,
  storeToken,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'gql-subs-test-admin-token-0123456789';
const VIEWER = 'gql-subs-test-viewer-token-0123456789';
const SCOPED = 'gql-subs-test-scoped-token-0123456789';
/** Events this test appends are on hosts no real host has: only the test's own subscriptions see them. */
const HOST = `subs-${randomUUID().slice(0, 6)}`;
const RETAINED = 400;
const BUFFER_BYTES = 65_536;

const EVENT_FIELDS = `id time type host domain { uuid name } detail reconciled
  blockJob { disk type status jobId }
  job { id type state previousState progress { cur end percent } error { code message libvirtCode } result requestedBy disk pool }
  data`;
const EVENTS = `subscription ($filter: EventFilterInput, $after: String) {
  events(filter: $filter, after: $after) { ${EVENT_FIELDS} }
}`;

interface GqlError {
  message: string;
  extensions?: { code?: string; oldestEventId?: string | null; [k: string]: unknown };
}

/** Every subscription a test made (disposed after each test). */
const opened: Array<{ dispose(): void }> = [];

/** One subscription through a graphql-ws client: what it received and how it ended. */
class Subscription<T = Record<string, unknown>> {
  readonly results: FormattedExecutionResult<T, unknown>[] = [];
  error: unknown = undefined;
  completed = false;
  readonly dispose: () => void;

  constructor(client: Client, query: string, variables: Record<string, unknown> = {}) {
    opened.push(this);
    this.dispose = client.subscribe<T>(
      { query, variables },
      {
        next: (value) => this.results.push(value),
        error: (err) => {
          this.error = err;
        },
        complete: () => {
          this.completed = true;
        },
      },
    );
  }

  get ended(): boolean {
    return this.completed || this.error !== undefined;
  }

  /** The errors it ended with (an `error` message's payload). */
  get errors(): GqlError[] {
    return Array.isArray(this.error) ? (this.error as GqlError[]) : [];
  }
}

/**
 * The events a subscription received (each `next` holds one), in the
 * channels' vocabulary: GraphQL spells the enum values with '_' for '.' and
 * '-' (domain_started), so each is checked to be the GraphQL name of a value
 * of the vocabulary and replaced by that value, to compare with what was
 * appended.
 */
function eventsOf(sub: Subscription<{ events: GatewayEvent }>): GatewayEvent[] {
  const channelValue = <T extends string>(given: string, values: readonly T[]): T => {
    const value = values.find((v) => graphqlEnumName(v) === given);
    assert.ok(
      value !== undefined,
      `${given} is the GraphQL name of no value of ${values.join(', ')}`,
    );
    return value;
  };
  return sub.results.map((r) => {
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const e = r.data!.events;
    return {
      ...e,
      type: channelValue(e.type, EVENT_TYPE_NAMES),
      ...(e.job
        ? { job: { ...e.job, type: channelValue(e.job.type, Object.keys(JOB_TYPES)) } }
        : {}),
      ...(e.blockJob
        ? {
            blockJob: {
              ...e.blockJob,
              type: channelValue(e.blockJob.type, [
                'pull',
                'copy',
                'commit',
                'active-commit',
                'unknown',
              ] as const),
            },
          }
        : {}),
    };
  });
}

/** Another process of the gateway on the test's Redis prefix (ROLE api or worker). */
async function startProcess(
  role: 'api' | 'worker',
  ready: string,
  env: Record<string, string> = {},
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: {
      ...process.env,
      ROLE: role,
      BLOCK_JOB_ADOPT: 'false', // other test files' block jobs are none of its business
      REDIS_URL,
      VIRTGATE_REDIS_PREFIX: prefix,
      VIRTGATE_ADMIN_TOKEN: ADMIN,
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    if (out.includes(ready)) return child;
  }
  throw new Error(`the ${role} process did not start: ${out}`);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

describe('GraphQL subscriptions', () => {
  let t: TestApp;
  let url: string;
  let stream: EventStream;
  let feed: EventFeed;
  let libvirt: LibvirtClient;
  const clients: Client[] = [];
  const children: ChildProcess[] = [];
  const name = `vg-subs-${randomUUID().slice(0, 6)}`;
  const doms: RemoteDomain[] = [];

  const client = (token: string | null, base = url, params?: Record<string, unknown>): Client => {
    const c = createClient({
      url: `${base.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: params ?? (token === null ? {} : { Authorization: `Bearer ${token}` }),
      retryAttempts: 0,
      lazy: true,
      lazyCloseTimeout: 0,
    });
    clients.push(c);
    return c;
  };
  const post = (path: string, body: object) =>
    request(t.server).post(path).set('authorization', `Bearer ${ADMIN}`).send(body);
  /** Appends events of HOST (on its `domain`), then returns them with their ids. */
  const append = async (...events: NewEvent[]): Promise<GatewayEvent[]> => {
    const ids = await stream.append(...events);
    return events.map((e, i) => ({ id: ids[i]!, ...e }));
  };
  const domainEvent = (type: 'domain.started' | 'domain.stopped', domain: string, host = HOST) =>
    newEvent(type, host, { domain: { uuid: randomUUID(), name: domain }, detail: 'booted' });

  before(async () => {
    libvirt = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    for (let i = 0; i < 2; i++) {
      doms.push(
        (
          await libvirt.rpc.domainDefineXmlFlags({
            xml: testDriverDomainXml(`${name}-${i}`, 64),
            flags: 0,
          })
        ).dom,
      );
    }
    await storeToken(prefix, VIEWER, { id: 'subs-viewer', role: 'viewer' });
    await storeToken(prefix, SCOPED, {
      id: 'subs-scoped',
      role: 'viewer',
      scopes: [{ host: HOST, domains: ['web-*'] }],
    });
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        // Jobs wait for a worker process the tests start when they want the job to run.
        ROLE: 'api',
        EVENTS_RETENTION_MAX_EVENTS: String(RETAINED),
        EVENTS_CLIENT_BUFFER_BYTES: String(BUFFER_BYTES),
        HTTP_HEADERS_TIMEOUT_MS: '1000',
        CORS_ORIGINS: 'https://console.example',
      }),
    );
    await t.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(t.server.address() as AddressInfo).port}`;
    stream = t.app.get<EventStream>(EVENT_STREAM);
    feed = t.app.get(EventFeed);
    baseline = feed.size;
    await post('/v1/hosts', { name: 'test', uri: 'test+tcp://127.0.0.1/default' }).expect(201);
  });

  /** Subscribers of the app's feed before any test subscribed. */
  let baseline = 0;
  afterEach(async () => {
    for (const sub of opened.splice(0)) sub.dispose();
    // Each test starts from the feed as it was: counting its subscribers means something.
    await waitFor(() => feed.size === baseline, 'the feed subscriptions of the test to go');
  });

  after(async () => {
    for (const c of clients) await c.dispose();
    for (const child of children) await stopProcess(child);
    await closeAllApps();
    for (const dom of doms) {
      await libvirt.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await libvirt.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await libvirt.close();
    await deleteKeys(prefix);
  });

  describe('the socket', () => {
    it('refuses connection_init without a token, or with a bad one: close 4401', async () => {
      for (const [params, message] of [
        [{}, /UNAUTHENTICATED: this request needs a bearer token/],
        [
          { Authorization: 'Bearer vg_not-a-token' },
          /UNAUTHENTICATED: the bearer token is not valid/,
        ],
        [{ authorization: 'Basic eDp5' }, /UNAUTHENTICATED/],
      ] as const) {
        const sub = new Subscription(client(null, url, params), EVENTS);
        await waitFor(() => sub.ended, 'the refusal');
        const close = sub.error as { code?: number; reason?: string };
        assert.equal(close.code, 4401, JSON.stringify(sub.error));
        assert.match(close.reason ?? '', message);
        assert.deepEqual(sub.results, []);
      }
      // Audited as any refused request.
      const audit = await request(t.server)
        .get('/v1/audit?action=auth.denied&limit=10')
        .set('authorization', `Bearer ${ADMIN}`);
      assert.ok(
        audit.body.items.some((e: { target: string }) => e.target === 'WebSocket /graphql'),
        JSON.stringify(audit.body),
      );
    });

    it('accepts the token in `authorization` too, and a viewer may subscribe', async () => {
      const c = client(null, url, { authorization: `Bearer ${VIEWER}` });
      const sub = new Subscription<{ events: GatewayEvent }>(c, EVENTS, {
        filter: { hosts: [HOST], domains: ['viewer-check'] },
      });
      const before = feed.size;
      await waitFor(() => feed.size > before || sub.ended, 'the feed subscription');
      const [appended] = await append(domainEvent('domain.started', 'viewer-check'));
      await waitFor(() => sub.results.length === 1 || sub.ended, 'the event');
      assert.equal(sub.results[0]?.data?.events.type, 'domain_started', 'GraphQL names the value');
      assert.deepEqual(eventsOf(sub), [appended]);
      sub.dispose();
    });

    it('closes the socket of a token revoked since it connected at its next subscribe: 4401', async () => {
      const made = await post('/v1/tokens', { name: 'subs-revoked', role: 'viewer' });
      assert.equal(made.status, 201, made.text);
      const c = client(made.body.token as string);
      const first = new Subscription(c, EVENTS, { filter: { hosts: [HOST] } });
      const before = feed.size;
      await waitFor(() => feed.size > before || first.ended, 'the subscription');
      await request(t.server)
        .delete(`/v1/tokens/${made.body.id as string}`)
        .set('authorization', `Bearer ${ADMIN}`)
        .expect(204);
      const second = new Subscription(c, EVENTS);
      await waitFor(() => second.ended && first.ended, 'the socket to close');
      const close = second.error as { code?: number; reason?: string };
      assert.equal(close.code, 4401);
      assert.match(close.reason ?? '', /UNAUTHENTICATED/);
      await waitFor(() => feed.size === before, 'its subscriptions to go');
    });

    it('closes a socket that sends no connection_init in time: 4408', async () => {
      const silent = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      const [code] = (await once(silent, 'close')) as [number, Buffer];
      assert.equal(code, 4408);
    });

    it('speaks graphql-transport-ws only: chosen among others offered, HTTP 400 when not offered', async () => {
      const both = new WebSocket(`${url.replace('http', 'ws')}/graphql`, [
        'graphql-ws',
        'graphql-transport-ws',
      ]);
      await once(both, 'open');
      assert.equal(both.protocol, 'graphql-transport-ws');
      both.terminate();
      for (const protocols of [['graphql-ws'], []]) {
        const ws = new WebSocket(`${url.replace('http', 'ws')}/graphql`, protocols);
        ws.on('error', () => {});
        const [, res] = (await once(ws, 'unexpected-response')) as [
          unknown,
          { statusCode: number },
        ];
        assert.equal(res.statusCode, 400, `offering ${JSON.stringify(protocols)}`);
        ws.terminate();
      }
    });

    it('refuses an upgrade from a foreign origin (403), lets the own origin and CORS_ORIGINS in', async () => {
      const open = async (origin: string) => {
        const ws = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws', {
          origin,
        });
        ws.on('error', () => {});
        const outcome = await Promise.race([
          once(ws, 'open').then(() => 'open'),
          once(ws, 'unexpected-response').then(([, res]) => {
            return `HTTP ${(res as { statusCode: number }).statusCode}`;
          }),
        ]);
        ws.terminate();
        return outcome;
      };
      assert.equal(await open('https://evil.example'), 'HTTP 403');
      assert.equal(await open('null'), 'HTTP 403');
      assert.equal(await open('https://console.example'), 'open');
      assert.equal(await open(url), 'open');
    });

    it('serves no WebSocket anywhere but /graphql: 404, and the socket closes', async () => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/health/live`, 'graphql-transport-ws');
      ws.on('error', () => {});
      const [, res] = (await once(ws, 'unexpected-response')) as [
        unknown,
        { statusCode: number; socket: import('node:net').Socket },
      ];
      assert.equal(res.statusCode, 404);
      // The gateway closes the socket: nothing stays open on a path that serves no WebSocket.
      if (!res.socket.destroyed) await once(res.socket, 'close');
    });

    it('refuses a subscription over HTTP: UNSUPPORTED', async () => {
      const res = await request(t.server)
        .post('/graphql')
        .set('authorization', `Bearer ${ADMIN}`)
        .send({ query: 'subscription { events { id } }' });
      assert.equal(res.body.errors?.[0]?.extensions?.code, 'UNSUPPORTED', res.text);
    });

    it('applies the document limits and validation to subscription documents', async () => {
      const c = client(ADMIN);
      const cases: Array<[string, string, string?]> = [
        [
          `subscription { events { ${Array.from({ length: 120 }, (_, i) => `a${i}: id`).join(' ')} } }`,
          'INVALID_ARGUMENT',
          'aliases',
        ],
        [`subscription { events { ${'id '.repeat(3000)} } }`, 'PAYLOAD_TOO_LARGE', 'tokens'],
        ['subscription { events { nope } }', 'INVALID_ARGUMENT'],
        ['subscription { __schema { types { name } } }', 'INVALID_ARGUMENT'],
        ['{ jobs { edges { node { id } } } }', 'INVALID_ARGUMENT'],
        ['subscription { events(filter: { types: ["domain.nope"] }) { id } }', 'INVALID_ARGUMENT'],
        ['subscription { events(after: "not-a-cursor") { id } }', 'INVALID_ARGUMENT'],
        [`subscription { job(id: "${randomUUID()}") { id } }`, 'NOT_FOUND'],
      ];
      for (const [query, code, limit] of cases) {
        const sub = new Subscription(c, query);
        await waitFor(() => sub.ended, `the refusal of ${query.slice(0, 60)}`);
        const [error] = sub.errors;
        const what = `${query.slice(0, 80)}: ${JSON.stringify(sub.error)}`;
        assert.equal(error?.extensions?.code, code, what);
        assert.ok(error?.extensions?.requestId, 'the error carries the request id');
        if (limit) assert.equal((error?.extensions?.limit as { name?: string })?.name, limit, what);
      }
      const filter = new Subscription(c, EVENTS, { filter: { types: ['job.*', 'nope.*'] } });
      await waitFor(() => filter.ended, 'the refusal');
      assert.deepEqual(filter.errors[0]?.extensions?.fields, [
        {
          field: 'filter.types[1]',
          message:
            "filter.types[1]: 'nope.*' is no event type, nor a wildcard ('*', 'block-job.*') matching one",
        },
      ]);
    });
  });

  describe('events', () => {
    it('delivers the job.state-changed events of a real job in order: queued → running → completed', async () => {
      const c = client(ADMIN);
      const sub = new Subscription<{ events: GatewayEvent }>(c, EVENTS, {
        filter: { types: ['job.*'], domains: [`${name}-0`] },
      });
      const before = feed.size;
      await waitFor(() => feed.size > before, 'the feed subscription');
      const res = await post(`/v1/hosts/test/domains/${name}-0/actions/start`, {});
      assert.equal(res.status, 202, res.text);
      const jobId = res.body.id as string;
      children.push(await startProcess('worker', 'processing queues'));
      await waitFor(
        () => eventsOf(sub).some((e) => e.job?.state === 'completed'),
        'the completed event',
      );
      const changes = eventsOf(sub).filter((e) => e.type === 'job.state-changed');
      assert.deepEqual(
        changes.map((e) => [e.job!.id, e.job!.previousState, e.job!.state]),
        [
          [jobId, null, 'queued'],
          [jobId, 'queued', 'running'],
          [jobId, 'running', 'completed'],
        ],
      );
      const done = changes[2]!;
      assert.equal(done.host, 'test');
      assert.equal(done.domain?.name, `${name}-0`);
      assert.equal(done.job!.type, 'domain.start');
      assert.equal(done.job!.requestedBy, 'admin');
      assert.deepEqual(done.job!.result, { state: 'running', changed: true });
      const ids = eventsOf(sub).map((e) => e.id);
      assert.deepEqual([...ids].sort(compareIds), ids, 'in stream order');
      sub.dispose();
    });

    it('filters by host, domain (name or UUID), type (wildcards) and job on the server', async () => {
      const c = client(ADMIN);
      const uuid = randomUUID();
      const jobId = randomUUID();
      const queries = {
        host: { hosts: [HOST] },
        domainByUuid: { domains: [uuid.toUpperCase()] },
        typeStopped: { hosts: [HOST], types: ['domain.stopped'] },
        job: { jobs: [jobId] },
        all: {},
      };
      const subs = Object.fromEntries(
        Object.entries(queries).map(([k, filter]) => [
          k,
          new Subscription<{ events: GatewayEvent }>(c, EVENTS, { filter }),
        ]),
      );
      const before = feed.size;
      await waitFor(() => feed.size >= before + Object.keys(subs).length, 'the subscriptions');
      const [started, otherHost, stopped, blockJob] = await append(
        newEvent('domain.started', HOST, { domain: { uuid, name: 'f-1' }, detail: 'booted' }),
        domainEvent('domain.started', 'f-1', `${HOST}-other`),
        domainEvent('domain.stopped', 'f-2'),
        newEvent('block-job.completed', HOST, {
          domain: { uuid: randomUUID(), name: 'f-3' },
          blockJob: { disk: 'vda', type: 'commit', status: 'completed', jobId },
        }),
      );
      await waitFor(() => eventsOf(subs.all!).length >= 4, 'every event');
      await waitFor(() => eventsOf(subs.host!).length >= 3, 'the filtered ones');
      const got = (k: string) => eventsOf(subs[k]!).map((e) => e.id);
      assert.deepEqual(got('host'), [started!.id, stopped!.id, blockJob!.id]);
      assert.deepEqual(got('domainByUuid'), [started!.id]);
      assert.deepEqual(got('typeStopped'), [stopped!.id]);
      assert.deepEqual(got('job'), [blockJob!.id]);
      assert.deepEqual(
        got('all').filter((id) =>
          [started, otherHost, stopped, blockJob].some((e) => e!.id === id),
        ),
        [started!.id, otherHost!.id, stopped!.id, blockJob!.id],
      );
      assert.deepEqual(
        eventsOf(subs.all!).find((e) => e.id === blockJob!.id),
        blockJob,
      );
      for (const s of Object.values(subs)) s.dispose();
    });

    it('shows a scoped token only the events of its domains', async () => {
      const sub = new Subscription<{ events: GatewayEvent }>(client(SCOPED), EVENTS);
      const before = feed.size;
      await waitFor(() => feed.size > before || sub.ended, 'the subscription');
      const [web1, , , , web9] = await append(
        domainEvent('domain.started', 'web-1'),
        domainEvent('domain.started', 'db-1'),
        domainEvent('domain.started', 'web-2', `${HOST}-other`),
        newEvent('job.state-changed', 'test', {
          domain: { uuid: null, name: 'web-3' },
          job: {
            id: randomUUID(),
            type: 'domain.start',
            state: 'queued',
            previousState: null,
            progress: null,
            error: null,
            result: null,
            requestedBy: 'someone-else',
            disk: null,
            pool: null,
          },
        }),
        domainEvent('domain.stopped', 'web-9'),
      );
      await waitFor(() => eventsOf(sub).some((e) => e.id === web9!.id), 'the last one');
      assert.deepEqual(
        eventsOf(sub).map((e) => e.id),
        [web1!.id, web9!.id],
      );
      sub.dispose();
    });

    it('resumes with `after`: every missed event once, in order, then the new ones', async () => {
      const c = client(ADMIN);
      const filter = { hosts: [HOST], domains: ['resume-1'] };
      const first = new Subscription<{ events: GatewayEvent }>(c, EVENTS, { filter });
      const before = feed.size;
      await waitFor(() => feed.size > before, 'the subscription');
      const [a] = await append(domainEvent('domain.started', 'resume-1'));
      await waitFor(() => first.results.length === 1, 'the first event');
      first.dispose();
      await waitFor(() => feed.size === before, 'the feed subscription to go');
      // Missed while away: three of ours, among others.
      const missed = await append(
        domainEvent('domain.stopped', 'resume-1'),
        domainEvent('domain.stopped', 'resume-2'),
        domainEvent('domain.started', 'resume-1'),
        domainEvent('domain.stopped', 'resume-1'),
      );
      const again = new Subscription<{ events: GatewayEvent }>(c, EVENTS, {
        filter,
        after: eventsOf(first)[0]!.id,
      });
      assert.equal(eventsOf(first)[0]!.id, a!.id);
      await waitFor(() => again.results.length >= 3, 'the missed events');
      const [live] = await append(domainEvent('domain.started', 'resume-1'));
      await waitFor(() => again.results.length >= 4, 'the new one');
      assert.deepEqual(eventsOf(again), [missed[0], missed[2], missed[3], live]);
      again.dispose();
    });

    it('answers a cursor older than retention CURSOR_EXPIRED with the oldest retained id', async () => {
      const [old] = await append(domainEvent('domain.started', 'expiry'));
      await append(
        ...Array.from({ length: RETAINED + 10 }, () => domainEvent('domain.stopped', 'filler')),
      );
      const sub = new Subscription(client(ADMIN), EVENTS, { after: old!.id });
      await waitFor(() => sub.ended, 'the refusal');
      const [error] = sub.errors;
      assert.equal(error?.extensions?.code, 'CURSOR_EXPIRED', JSON.stringify(sub.error));
      assert.equal(error?.extensions?.oldestEventId, await stream.oldest());
      assert.match(error!.message, /no longer retained/);
    });

    it('cuts off a subscriber too slow to take its events (UNAVAILABLE) after what it was sent', async () => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      const messages: Array<{ type: string; id?: string; payload?: unknown }> = [];
      ws.on('message', (data: Buffer) => messages.push(JSON.parse(String(data))));
      await once(ws, 'open');
      ws.send(
        JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${ADMIN}` } }),
      );
      await waitFor(() => messages.some((m) => m.type === 'connection_ack'), 'the ack');
      const before = feed.size;
      ws.send(
        JSON.stringify({
          id: 'slow',
          type: 'subscribe',
          payload: {
            query: 'subscription ($f: EventFilterInput) { events(filter: $f) { id data } }',
            variables: { f: { hosts: [HOST], domains: ['slow'] } },
          },
        }),
      );
      await waitFor(() => feed.size > before, 'the subscription');
      ws.pause(); // reads nothing more: the kernel's buffers fill, then the gateway's queue
      const blob = 'x'.repeat(64 * 1024);
      const appended: string[] = [];
      await waitFor(
        async () => {
          if (feed.size === before) return true;
          const ids = await stream.append(
            ...Array.from({ length: 16 }, () =>
              newEvent('domain.started', HOST, {
                domain: { uuid: null, name: 'slow' },
                data: { blob },
              }),
            ),
          );
          appended.push(...ids);
          return false;
        },
        'the gateway to give up on the subscriber',
        60_000,
      );
      ws.resume();
      await waitFor(() => messages.some((m) => m.type === 'error'), 'the error', 60_000);
      const next = messages.filter((m) => m.type === 'next');
      const received = next.map(
        (m) => (m.payload as { data: { events: { id: string } } }).data.events.id,
      );
      // What was queued when it was cut off still came, then the error: a prefix of what was appended.
      assert.ok(received.length > 0, 'some events came before the error');
      assert.deepEqual(received, appended.slice(0, received.length), 'in order, none missing');
      assert.equal(messages.at(-1)!.type, 'error', 'the error came last');
      const error = messages.find((m) => m.type === 'error')!;
      assert.equal(error.id, 'slow');
      const [gqlError] = error.payload as GqlError[];
      assert.equal(gqlError?.extensions?.code, 'UNAVAILABLE');
      assert.match(gqlError!.message, /too slow.*after/);
      ws.close();
    });

    it('closes the feed subscription when the client completes or disconnects', async () => {
      const base = feed.size;
      const c = client(ADMIN);
      const subs = [1, 2, 3].map(() => new Subscription(c, EVENTS, { filter: { hosts: [HOST] } }));
      await waitFor(() => feed.size === base + 3, 'three feed subscriptions');
      subs[0]!.dispose();
      await waitFor(() => feed.size === base + 2, 'one to go');
      // A socket that goes away without a word.
      const ws = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      const acked = new Promise<void>((resolve) =>
        ws.on('message', (data: Buffer) => {
          if (JSON.parse(String(data)).type === 'connection_ack') resolve();
        }),
      );
      await once(ws, 'open');
      ws.send(
        JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${ADMIN}` } }),
      );
      await acked;
      for (const id of ['x1', 'x2']) {
        ws.send(
          JSON.stringify({
            id,
            type: 'subscribe',
            payload: { query: 'subscription { events { id } }' },
          }),
        );
      }
      await waitFor(() => feed.size === base + 4, 'two more');
      ws.terminate();
      await waitFor(() => feed.size === base + 2, 'the terminated socket to leave none');
      await c.dispose();
      await waitFor(() => feed.size === base, 'the disposed client to leave none');
    });

    it('refuses an id in use (4409) and more than 100 subscriptions on one socket', async () => {
      const ws = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      const messages: Array<{ type: string; id?: string; payload?: GqlError[] }> = [];
      ws.on('message', (data: Buffer) => messages.push(JSON.parse(String(data))));
      await once(ws, 'open');
      ws.send(
        JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${ADMIN}` } }),
      );
      await waitFor(() => messages.some((m) => m.type === 'connection_ack'), 'the ack');
      const base = feed.size;
      const subscribe = (id: string) =>
        ws.send(
          JSON.stringify({
            id,
            type: 'subscribe',
            payload: { query: 'subscription { events { id } }' },
          }),
        );
      for (let i = 0; i <= 100; i++) subscribe(`s${i}`);
      await waitFor(() => messages.some((m) => m.type === 'error'), 'the 101st refused');
      const refused = messages.find((m) => m.type === 'error')!;
      assert.equal(refused.id, 's100');
      assert.equal(refused.payload?.[0]?.extensions?.code, 'QUOTA_EXCEEDED');
      await waitFor(() => feed.size === base + 100, '100 running');
      subscribe('s5');
      const [code] = (await once(ws, 'close')) as [number];
      assert.equal(code, 4409);
      await waitFor(() => feed.size === base, 'all of them gone');
    });
  });

  describe('job(id)', () => {
    const JOB = `subscription ($id: ID!) { job(id: $id) { id state progress { percent } result { __typename ... on StartDomainResult { state changed } } finishedAt updatedAt } }`;
    type JobItem = { id: string; state: string; result: unknown; finishedAt: string | null };

    it("streams a job's record from queued until it is final, then completes", async () => {
      // No worker runs now: the job waits in queued until one starts.
      for (const child of children.splice(0)) await stopProcess(child);
      const res = await post(`/v1/hosts/test/domains/${name}-1/actions/start`, {});
      assert.equal(res.status, 202, res.text);
      const id = res.body.id as string;
      const sub = new Subscription<{ job: JobItem }>(client(VIEWER), JOB, { id });
      await waitFor(() => sub.results.length >= 1 || sub.ended, 'the record as it is');
      assert.equal(sub.results[0]?.data?.job.state, 'queued', JSON.stringify(sub.results));
      children.push(await startProcess('worker', 'processing queues'));
      await waitFor(() => sub.ended, 'the subscription to complete', 20_000);
      assert.equal(sub.error, undefined, JSON.stringify(sub.error));
      assert.equal(sub.completed, true);
      const items = sub.results.map((r) => r.data!.job);
      assert.deepEqual(
        items.map((j) => j.state),
        ['queued', 'running', 'completed'],
      );
      const last = items.at(-1)!;
      assert.deepEqual(last.result, {
        __typename: 'StartDomainResult',
        state: 'running',
        changed: true,
      });
      assert.ok(last.finishedAt);
      assert.equal(items[1]!.finishedAt, null);
      assert.ok(items.every((j) => j.id === id));
    });

    it('gives a final job once and completes; another token does not see it: NOT_FOUND', async () => {
      const jobs = await request(t.server)
        .get('/v1/jobs?state=completed&limit=1')
        .set('authorization', `Bearer ${ADMIN}`);
      const id = jobs.body.items[0].id as string;
      const sub = new Subscription<{ job: JobItem }>(client(ADMIN), JOB, { id });
      await waitFor(() => sub.ended, 'completion');
      assert.equal(sub.completed, true, JSON.stringify(sub.error));
      assert.deepEqual(
        sub.results.map((r) => r.data!.job.state),
        ['completed'],
      );
      const scoped = new Subscription(client(SCOPED), JOB, { id });
      await waitFor(() => scoped.ended, 'the refusal');
      assert.equal(scoped.errors[0]?.extensions?.code, 'NOT_FOUND');
    });
  });

  it('serves the same events to a subscriber on each of two api processes', async () => {
    const port = await freePort();
    children.push(await startProcess('api', 'Server listening at', { PORT: String(port) }));
    const other = `http://127.0.0.1:${port}`;
    const filter = { hosts: [HOST], domains: ['two-1'] };
    const here = new Subscription<{ events: GatewayEvent }>(client(ADMIN), EVENTS, { filter });
    const there = new Subscription<{ events: GatewayEvent }>(client(ADMIN, other), EVENTS, {
      filter,
    });
    const before = feed.size;
    await waitFor(() => feed.size > before, 'the subscription here');
    // The other process has subscribed once a probe event reaches it.
    // Each poll that finds none yet appends another probe; the next poll (50 ms on) looks again.
    let lastProbe = '';
    await waitFor(
      async () => {
        if (there.ended || there.results.length > 0) return true;
        const [probe] = await append(domainEvent('domain.started', 'two-1'));
        lastProbe = probe!.id;
        return false;
      },
      'the subscription there',
      15_000,
      50,
    );
    assert.equal(there.error, undefined, JSON.stringify(there.error));
    // A probe still on its way when the first one arrived comes after it: the events of
    // the test are those after the last probe, once both subscribers have that one.
    await waitFor(
      () => [here, there].every((sub) => eventsOf(sub).some((e) => e.id === lastProbe)),
      'the last probe to reach both',
    );
    const start = lastProbe;
    const events = await append(
      domainEvent('domain.stopped', 'two-1'),
      domainEvent('domain.started', 'two-2'),
      domainEvent('domain.started', 'two-1'),
    );
    const expected = [events[0], events[2]];
    const after = (s: Subscription<{ events: GatewayEvent }>) =>
      eventsOf(s).filter((e) => compareIds(e.id, start) > 0);
    await waitFor(() => after(here).length >= 2 && after(there).length >= 2, 'both to have them');
    assert.deepEqual(after(here), expected);
    assert.deepEqual(after(there), expected);
    here.dispose();
    there.dispose();
  });
});

/** Orders two stream ids. */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  if (am !== bm) return am! < bm! ? -1 : 1;
  return as === bs ? 0 : as! < bs! ? -1 : 1;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('GraphQL subscriptions under the rate limits', () => {
  let t: TestApp;
  let url: string;

  before(async () => {
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        ROLE: 'api',
        RATE_LIMIT_PER_TOKEN: '3',
        AUTH_FAILURES_PER_ADDRESS: '2',
        RATE_LIMIT_WINDOW_MS: '600000',
      }),
    );
    await t.app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${(t.server.address() as AddressInfo).port}/graphql`;
  });

  after(async () => {
    for (const sub of opened.splice(0)) sub.dispose();
    await closeAllApps();
    await deleteKeys(prefix);
  });

  const connect = (params: Record<string, unknown>) =>
    createClient({ url, webSocketImpl: WebSocket, connectionParams: params, retryAttempts: 0 });

  it('counts each subscribe as a request of the token: over the limit, RATE_LIMITED', async () => {
    const c = connect({ Authorization: `Bearer ${ADMIN}` });
    const subs = [1, 2, 3, 4].map(() => new Subscription(c, 'subscription { events { id } }'));
    await waitFor(() => subs[3]!.ended, 'the fourth to be refused');
    const [error] = subs[3]!.errors;
    assert.equal(error?.extensions?.code, 'RATE_LIMITED', JSON.stringify(subs[3]!.error));
    assert.ok(Number(error?.extensions?.retryAfterSeconds) > 0);
    assert.ok(subs.slice(0, 3).every((sub) => !sub.ended));
    await c.dispose();
  });

  it('counts refused connection_inits as failed authentications: then the upgrade is 429', async () => {
    for (let i = 0; i < 2; i++) {
      const sub = new Subscription(
        connect({ Authorization: 'Bearer vg_wrong' }),
        'subscription { events { id } }',
      );
      await waitFor(() => sub.ended, 'the refusal');
      assert.equal((sub.error as { code?: number }).code, 4401);
    }
    const ws = new WebSocket(url, 'graphql-transport-ws');
    ws.on('error', () => {});
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
    assert.equal(res.statusCode, 429);
    ws.terminate();
  });
});
