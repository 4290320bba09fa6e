/**
 * The gateway's store going away under a running app: requests that need it
 * get 503 UNAVAILABLE with Retry-After at once, never a 500 or a hang, and
 * service resumes when Redis is back. Uses a Redis server of its own (the
 * shared one must stay up for the other tests).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import request from 'supertest';
import { closeAllApps, PROBLEM_JSON, startApp, testConfig, uniquePrefix } from './helpers.js';

const ADMIN_TOKEN = 'redis-outage-admin-token-0123456789';

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  try {
    for await (const chunk of child.stdout!) {
      out += String(chunk);
      if (out.includes('Ready to accept connections')) return child;
    }
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`redis-server on ${port} did not start within 10 s: ${out}`);
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

describe('Redis outage', () => {
  let redis: ChildProcess | undefined;

  after(async () => {
    await closeAllApps();
    if (redis) await stopRedis(redis);
  });

  it('answers 503 UNAVAILABLE while Redis is down, and recovers when it is back', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    const t = await startApp(
      testConfig(uniquePrefix(import.meta.url), {
        REDIS_URL: `redis://127.0.0.1:${port}`,
        VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      }),
    );
    const me = (): request.Test =>
      request(t.server).get('/v1/me').set('authorization', `Bearer ${ADMIN_TOKEN}`);
    assert.equal((await me()).status, 200);

    await stopRedis(redis);
    const started = Date.now();
    const res = await me();
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.equal(res.body.code, 'UNAVAILABLE');
    assert.equal(res.headers['retry-after'], '5');
    assert.ok(Date.now() - started < 6000, `answered after ${Date.now() - started} ms`);
    const ready = await request(t.server).get('/health/ready');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.checks.redis.status, 'down');

    // The token lived only in that Redis: after a restart of an empty one, the app
    // re-registers nothing by itself, so a fresh server answers 401, not 503.
    redis = await startRedis(port);
    let status = 0;
    for (let i = 0; i < 50 && status !== 401; i++) {
      status = (await me()).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, 401, 'service resumed against the new, empty Redis');
  });
});
