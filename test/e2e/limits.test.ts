/**
 * The limits that keep one client from taking the gateway down: request rates
 * per token and per address, held in Redis across api processes; failed
 * authentications per address, with their log lines sampled; the connection
 * cap that sheds idle connections so health stays answerable; the quota of
 * jobs a caller may have queued; the security headers and CORS.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import request from 'supertest';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
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
const ADMIN = 'limits-test-admin-token-0123456789';
const bearer = `Bearer ${ADMIN}`;

/** A TCP port free at the time of asking. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Another api process (node dist/src/main.js, ROLE=api) on the same Redis prefix. */
async function startApiProcess(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: {
      ...process.env,
      ROLE: 'api',
      PORT: String(port),
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
    if (out.includes('Server listening at')) return { child, url: `http://127.0.0.1:${port}` };
  }
  throw new Error(`the api process did not start: ${out}`);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** Runs `send` for each of `n` requests, `concurrency` at a time; the answers in order. */
async function burst<T>(n: number, concurrency: number, send: (i: number) => Promise<T>) {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        results[i] = await send(i);
      }
    }),
  );
  return results;
}

const children: ChildProcess[] = [];

after(async () => {
  for (const child of children) await stopProcess(child);
  await closeAllApps();
  await deleteKeys(prefix);
});

describe('rate limits', () => {
  afterEach(closeAllApps);

  it('answers a burst over the limit 429 RATE_LIMITED with Retry-After; health is exempt', async () => {
    const t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        VIRTGATE_REDIS_PREFIX: `${prefix}burst:`,
        RATE_LIMIT_PER_TOKEN: '20',
        RATE_LIMIT_WINDOW_MS: '60000',
      }),
    );
    const answers = await burst(30, 5, () =>
      request(t.server).get('/v1/me').set('authorization', bearer),
    );
    const ok = answers.filter((r) => r.status === 200);
    const limited = answers.filter((r) => r.status === 429);
    assert.equal(ok.length, 20, 'exactly the limit gets through');
    assert.equal(limited.length, 10);
    for (const res of limited) {
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, 'RATE_LIMITED');
      const retryAfter = Number(res.headers['retry-after']);
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${res.headers['retry-after']}`);
      assert.equal(res.headers['ratelimit-limit'], '20');
      assert.equal(res.headers['ratelimit-remaining'], '0');
    }
    const first = ok.map((r) => Number(r.headers['ratelimit-remaining'])).sort((a, b) => b - a);
    assert.equal(first[0], 19, 'RateLimit-Remaining counts down from the limit');
    // The same limit covers GraphQL.
    const gql = await request(t.server)
      .post('/graphql')
      .set('authorization', bearer)
      .send({ query: '{ __typename }' });
    assert.equal(gql.status, 429);
    assert.equal(gql.body.code, 'RATE_LIMITED');
    // Health is not counted nor limited.
    for (let i = 0; i < 5; i++) await request(t.server).get('/health/live').expect(200);
    await deleteKeys(`${prefix}burst:`);
  });

  it('holds across two api processes sharing Redis', async () => {
    const env = {
      RATE_LIMIT_PER_TOKEN: '15',
      RATE_LIMIT_WINDOW_MS: '60000',
      VIRTGATE_REDIS_PREFIX: `${prefix}shared:`,
    };
    const t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ...env }));
    const other = await startApiProcess(env);
    children.push(other.child);
    const here = () => request(t.server).get('/v1/me').set('authorization', bearer);
    const there = () => request(other.url).get('/v1/me').set('authorization', bearer);
    // 10 here, then 10 there: the other process sees the 10 already counted.
    const mine = await burst(10, 1, here);
    const theirs = await burst(10, 1, there);
    assert.deepEqual(
      mine.map((r) => r.status),
      Array(10).fill(200),
    );
    assert.deepEqual(
      theirs.map((r) => r.status),
      [...Array(5).fill(200), ...Array(5).fill(429)],
      'the second process stops at the shared limit of 15',
    );
    assert.equal(theirs[9]!.body.code, 'RATE_LIMITED');
    assert.ok(Number(theirs[9]!.headers['retry-after']) >= 1);
    assert.equal((await here()).status, 429, 'and so does the first');
    await stopProcess(other.child);
    await deleteKeys(`${prefix}shared:`);
  });
});

describe('failed authentications', () => {
  afterEach(closeAllApps);

  it('are limited per address and logged as a sample, not a line per attempt', async () => {
    const t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        VIRTGATE_REDIS_PREFIX: `${prefix}authfail:`,
        AUTH_FAILURES_PER_ADDRESS: '10',
        RATE_LIMIT_WINDOW_MS: '60000',
      }),
    );
    const answers = await burst(300, 4, (i) =>
      request(t.server)
        .get('/v1/me')
        .set('authorization', `Bearer wrong-token-${i}-xxxxxxxxxxxx`)
        .set('x-request-id', `authfail-${i}`),
    );
    const unauthenticated = answers.filter((r) => r.status === 401).length;
    const limited = answers.filter((r) => r.status === 429);
    // Failures are counted atomically as they are answered: exactly the limit gets 401.
    assert.equal(unauthenticated, 10);
    assert.equal(unauthenticated + limited.length, 300);
    for (const res of limited) {
      assert.equal(res.body.code, 'RATE_LIMITED');
      assert.match(res.body.detail, /failed authentications from this address/);
      assert.ok(Number(res.headers['retry-after']) >= 1);
    }
    const floodLines = t.logs.lines.filter((l) =>
      String(l.requestId ?? '').startsWith('authfail-'),
    );
    // Unsampled that was 3 lines per attempt (900). The first 10 attempts write their 3;
    // the few in flight with the 10th (4 at a time) at most their incoming line.
    assert.ok(floodLines.length <= 3 * 10 + 4, JSON.stringify(floodLines.map((l) => l.msg)));
    assert.ok(floodLines.length >= 3 * 10);
    assert.ok(floodLines.some((l) => l.msg === 'rejected a bearer token that matches no token'));
    // Closing ends the window: the summary comes out.
    await t.close();
    const summary = t.logs.lines.filter((l) => String(l.msg).startsWith('rejected requests from'));
    assert.equal(summary.length, 1, 'one summary line for the address');
    assert.equal(summary[0]!.remoteAddress, '127.0.0.1');
    assert.equal(
      Number(summary[0]!.unauthenticated) + Number(summary[0]!.rateLimited),
      300,
      'every rejection counted',
    );
    assert.equal(summary[0]!.rateLimited, limited.length);
    // The 10 logged in full, and at most the 4 in flight with the 10th, which had written their
    // line when the count turned their 401 into a 429.
    const suppressed = Number(summary[0]!.suppressed);
    assert.ok(suppressed >= 290 - 4 && suppressed <= 290, `${suppressed} suppressed`);
    await deleteKeys(`${prefix}authfail:`);
  });

  it('meet the limit when sent all at once, and write a sample of log lines', async () => {
    const t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        VIRTGATE_REDIS_PREFIX: `${prefix}authburst:`,
        AUTH_FAILURES_PER_ADDRESS: '10',
      }),
    );
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        request(t.server)
          .get('/v1/me')
          .set('authorization', `Bearer wrong-token-${i}-xxxxxxxxxxxx`)
          .set('x-request-id', `authburst-${i}`),
      ),
    );
    assert.equal(answers.filter((r) => r.status === 401).length, 10);
    assert.equal(answers.filter((r) => r.status === 429).length, 190);
    for (const r of answers.filter((x) => x.status === 429)) {
      assert.equal(r.body.code, 'RATE_LIMITED');
      assert.equal(r.headers['www-authenticate'], undefined, 'a 429 says nothing of the token');
    }
    const lines = t.logs.lines.filter((l) => String(l.requestId ?? '').startsWith('authburst-'));
    assert.ok(lines.length <= 200, `${lines.length} log lines for 200 refused requests`);
    await deleteKeys(`${prefix}authburst:`);
  });

  it('leave a good request from an address not yet limited logged in full', async () => {
    const t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        VIRTGATE_REDIS_PREFIX: `${prefix}authok:`,
        AUTH_FAILURES_PER_ADDRESS: '20',
      }),
    );
    // Past the sample of 10: the address's next lines wait for their outcome.
    for (let i = 0; i < 12; i++) {
      await request(t.server)
        .get('/v1/me')
        .set('authorization', 'Bearer wrong-token-xxxxxxxxxxxxxx')
        .expect(401);
    }
    await request(t.server)
      .get('/v1/me')
      .set('authorization', bearer)
      .set('x-request-id', 'good-after-bad')
      .expect(200);
    const lines = t.logs.lines.filter((l) => l.requestId === 'good-after-bad').map((l) => l.msg);
    assert.deepEqual(lines, ['incoming request', 'request completed']);
    await deleteKeys(`${prefix}authok:`);
  });
});

describe('failed authentications over GraphQL', () => {
  afterEach(closeAllApps);

  it('count toward the limit: answered 401 before the query is parsed', async () => {
    const t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        VIRTGATE_REDIS_PREFIX: `${prefix}authgql:`,
        AUTH_FAILURES_PER_ADDRESS: '3',
      }),
    );
    const query = () =>
      request(t.server)
        .post('/graphql')
        .set('authorization', 'Bearer wrong-token-xxxxxxxxxxxxxx')
        .send({ query: '{ hosts { pageInfo { hasNextPage } } }' });
    for (let i = 0; i < 3; i++) {
      const res = await query();
      assert.equal(res.status, 401);
      assert.equal(res.body.errors[0].extensions.code, 'UNAUTHENTICATED');
    }
    const limited = await query();
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'RATE_LIMITED');
    await deleteKeys(`${prefix}authgql:`);
  });
});

describe('connections', () => {
  afterEach(closeAllApps);

  /** A process opening `count` TCP connections to `port` that never send a byte. */
  function idleFlood(port: number, count: number) {
    const code = `
      const net = require('node:net');
      const [port, count] = process.argv.slice(1).map(Number);
      let connected = 0, failed = 0, closed = 0, started = 0, settled = 0;
      const sockets = [];
      const done = () => {
        if (++settled === count) {
          process.stdout.write(JSON.stringify({ connected, failed }) + '\\n');
        }
      };
      const one = () => {
        if (started >= count) return;
        started++;
        const s = net.connect(port, '127.0.0.1');
        let ok = false;
        s.on('connect', () => { ok = true; connected++; done(); one(); });
        s.on('error', () => {});
        s.on('close', () => { if (ok) closed++; else { failed++; done(); one(); } });
        sockets.push(s);
      };
      for (let i = 0; i < 200; i++) one();
      process.on('message', () => {});
      process.stdin.on('data', () => {
        process.stdout.write(JSON.stringify({ open: connected - closed }) + '\\n');
      });
      process.stdin.on('end', () => process.exit(0));
    `;
    const child = spawn(process.execPath, ['-e', code, String(port), String(count)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(child);
    const lines: string[] = [];
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += String(chunk);
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        lines.push(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    // Its next line, waited for with a deadline: a flood whose connections never settle
    // (on a loaded machine a dropped SYN is retried after 1, 3, 7 … s) fails by name.
    const nextLine = async (what: string): Promise<Record<string, number>> => {
      await waitFor(() => lines.length > 0 || child.exitCode !== null, what, 150_000, 50);
      assert.ok(lines.length > 0, `the flood exited before ${what}`);
      return JSON.parse(lines.shift()!) as Record<string, number>;
    };
    return {
      child,
      nextLine,
      /** How many of its connections are still open, as it sees them. */
      open: async () => {
        child.stdin.write('?\n');
        return (await nextLine('its count of open connections')).open!;
      },
    };
  }

  it('sheds idle connections beyond the cap: /health/live answers with 25,000 open', async () => {
    // Longer timeouts than the test: what makes room here is the cap, not a timeout.
    const t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        HTTP_MAX_CONNECTIONS: '5000',
        HTTP_HEADERS_TIMEOUT_MS: '300000',
        HTTP_REQUEST_TIMEOUT_MS: '300000',
      }),
    );
    await t.app.listen(0, '127.0.0.1');
    const { port } = t.server.address() as AddressInfo;
    // ulimit -n is 20,000 here: each flooding process holds half.
    const floods = [idleFlood(port, 12_500), idleFlood(port, 12_500)];
    const results = await Promise.all(
      floods.map((f) => f.nextLine('every connection of the flood to connect or fail')),
    );
    const connected = results.reduce((n, r) => n + r.connected!, 0);
    assert.equal(connected, 25_000, JSON.stringify(results));
    const health = await request(`http://127.0.0.1:${port}`).get('/health/live');
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'ok' });
    // The server held the cap, and kept the rest open: it shed, it did not drop them all.
    const held = await new Promise<number>((resolve, reject) =>
      t.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
    );
    assert.ok(held <= 5000, `the server holds ${held} connections`);
    const open = (await Promise.all(floods.map((f) => f.open()))).reduce((a, b) => a + b, 0);
    assert.ok(open >= 4000, `${open} flood connections still open`);
    const shedLines = t.logs.lines.filter((l) =>
      String(l.msg).startsWith('connection cap reached'),
    );
    assert.ok(shedLines.length >= 1, 'shedding is logged');
    assert.ok(shedLines.length <= 5, 'as a count, not a line per connection');
    assert.ok(Number(shedLines[0]!.shed) >= 1);
    for (const f of floods) {
      f.child.stdin.end();
      await once(f.child, 'exit');
    }
  });

  it('closes a connection that sends no request within the headers timeout', async () => {
    const t = await startApp(
      testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, HTTP_HEADERS_TIMEOUT_MS: '5000' }),
    );
    await t.app.listen(0, '127.0.0.1');
    assert.equal(t.server.headersTimeout, 5000, "the configured timeout is the server's");
    const { port } = t.server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let closed = false;
    socket.on('data', (chunk: Buffer) => (received += String(chunk)));
    socket.on('close', () => (closed = true));
    await once(socket, 'connect');
    // A slow client: half a request line, then nothing.
    socket.write('GET /health/li');
    // Not cut off at once: while it dawdles, the server answers another client.
    const other = await request(`http://127.0.0.1:${port}`).get('/health/live');
    assert.equal(other.status, 200);
    assert.equal(closed, false, 'the slow connection is still open after another was served');
    assert.equal(received, '');
    await waitFor(() => closed, 'the server to close the slow connection');
    // 408 is what Node's headers timeout answers (a malformed request gets 400).
    assert.match(received, /^HTTP\/1\.1 408/);
  });
});

describe('job quota', () => {
  let client: LibvirtClient;
  const name = `vg-quota-${randomUUID().slice(0, 6)}`;
  const doms: RemoteDomain[] = [];

  after(async () => {
    await closeAllApps();
    for (const dom of doms) {
      await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await client?.close();
  });

  it('refuses a job beyond JOBS_MAX_ACTIVE_PER_CALLER queued with 429 QUOTA_EXCEEDED', async () => {
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    for (let i = 0; i < 4; i++) {
      const xml = testDriverDomainXml(`${name}-${i}`, 64);
      doms.push((await client.rpc.domainDefineXmlFlags({ xml, flags: 0 })).dom);
    }
    // ROLE=api: no worker in this process, so the jobs stay queued.
    const t: TestApp = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        ROLE: 'api',
        VIRTGATE_REDIS_PREFIX: `${prefix}quota:`,
        JOBS_MAX_ACTIVE_PER_CALLER: '3',
      }),
    );
    const http = (method: 'post' | 'delete', url: string) =>
      request(t.server)[method](url).set('authorization', bearer);
    await http('post', '/v1/hosts')
      .send({ name: 'test', uri: 'test+tcp://127.0.0.1/default' })
      .expect(201);
    const start = (i: number, key?: string) => {
      const req = http('post', `/v1/hosts/test/domains/${name}-${i}/actions/start`);
      return key ? req.set('idempotency-key', key).send({}) : req.send({});
    };
    const accepted = [await start(0, 'quota-key-0'), await start(1), await start(2)];
    for (const res of accepted) assert.equal(res.status, 202, JSON.stringify(res.body));
    const refused = await start(3);
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.match(refused.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.equal(refused.body.code, 'QUOTA_EXCEEDED');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    // Replaying an Idempotency-Key is no new job: it gets its job back, not a 429.
    const replay = await start(0, 'quota-key-0');
    assert.equal(replay.status, 202, JSON.stringify(replay.body));
    assert.equal(replay.body.id, accepted[0]!.body.id);
    // A job that ends gives its place back.
    await http('delete', `/v1/jobs/${accepted[1]!.body.id}`).expect(200);
    const now = await start(3);
    assert.equal(now.status, 202, JSON.stringify(now.body));
    assert.equal((await start(3)).status, 429, 'and the quota is full again');
    await deleteKeys(`${prefix}quota:`);
  });
});

describe('browsers', () => {
  afterEach(closeAllApps);

  it('gets security headers on every answer, and CORS only for configured origins', async () => {
    const t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        CORS_ORIGINS: 'https://ui.example',
      }),
    );
    for (const res of [
      await request(t.server).get('/health/live'),
      await request(t.server).get('/v1/me'),
      await request(t.server).get('/v1/me').set('authorization', bearer),
    ]) {
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
      assert.match(res.headers['content-security-policy'] ?? '', /^default-src 'none'/);
      assert.equal(res.headers['x-powered-by'], undefined);
    }
    const docs = await request(t.server).get('/docs').set('authorization', bearer).redirects(1);
    assert.equal(docs.status, 200);
    assert.match(docs.headers['content-type'] ?? '', /^text\/html/);
    assert.match(docs.headers['content-security-policy'] ?? '', /script-src 'self'/);

    const preflight = await request(t.server)
      .options('/v1/me')
      .set('origin', 'https://ui.example')
      .set('access-control-request-method', 'GET')
      .set('access-control-request-headers', 'authorization');
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://ui.example');
    assert.match(preflight.headers['access-control-allow-headers'] ?? '', /authorization/);
    const allowed = await request(t.server)
      .get('/v1/me')
      .set('origin', 'https://ui.example')
      .set('authorization', bearer);
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://ui.example');
    assert.match(allowed.headers['access-control-expose-headers'] ?? '', /x-request-id/);
    const other = await request(t.server)
      .get('/v1/me')
      .set('origin', 'https://evil.example')
      .set('authorization', bearer);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  it('sends no CORS headers by default', async () => {
    const t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    const res = await request(t.server)
      .get('/v1/me')
      .set('origin', 'https://ui.example')
      .set('authorization', bearer);
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  });
});
