import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import request from 'supertest';
import { Redis } from 'ioredis';
import { CHECK_TIMEOUT_MS } from '#modules/health/libvirt-probe.js';
import { LibvirtClient } from '#src/libvirt/index.js';
import { REDIS } from '#src/redis/redis.module.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN_TOKEN = 'health-test-admin-token-0123456789';

/** libvirt's version on qemu:///system, read directly with the client: what readiness must report. */
async function expectedLibvirtVersion(): Promise<string> {
  const client = await LibvirtClient.connect('qemu:///system', { readOnly: true });
  try {
    const v = Number((await client.rpc.connectGetLibVersion()).libVer);
    return `${Math.floor(v / 1e6)}.${Math.floor(v / 1e3) % 1e3}.${v % 1e3}`;
  } finally {
    await client.close();
  }
}

/** A TCP server that accepts connections and never says a word: a hung libvirtd. */
async function silentServer(): Promise<{
  port: number;
  accepted: () => number;
  close: () => Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('health', () => {
  let t: TestApp | undefined;

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
  });

  it('GET /health/live answers 200 {status: ok} without a token', async () => {
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN }));
    const res = await request(t.server).get('/health/live').expect(200);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  it('GET /health/ready answers 200 with the details of Redis and libvirt', async () => {
    assert.ok(t);
    const res = await request(t.server).get('/health/ready').expect(200);
    const { status, checks } = res.body as {
      status: string;
      checks: { redis: Record<string, unknown>; libvirt: Record<string, unknown> };
    };
    assert.equal(status, 'ok');
    assert.deepEqual(Object.keys(checks).sort(), ['credentials', 'libvirt', 'recovery', 'redis']);
    assert.equal(checks.redis.status, 'up');
    assert.equal(typeof checks.redis.latencyMs, 'number');
    assert.equal(checks.redis.error, undefined);
    assert.equal(checks.libvirt.status, 'up');
    assert.equal(checks.libvirt.uri, 'qemu:///system');
    assert.equal(checks.libvirt.libvirtVersion, await expectedLibvirtVersion());
    assert.equal(typeof checks.libvirt.latencyMs, 'number');
    assert.equal(checks.libvirt.error, undefined);
  });

  it('keeps one long-lived libvirt connection across readiness checks', async () => {
    const tcp = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN,
        LIBVIRT_DEFAULT_URI: 'qemu+tcp://127.0.0.1:16509/system',
      }),
    );
    try {
      for (let i = 0; i < 5; i++) {
        const res = await request(tcp.server).get('/health/ready').expect(200);
        assert.equal(res.body.checks.libvirt.uri, 'qemu+tcp://127.0.0.1:16509/system');
      }
      assert.equal(connectionsOfThisProcessTo(16509), 1);
    } finally {
      await tcp.close();
    }
    assert.equal(connectionsOfThisProcessTo(16509), 0, 'closing the app closes the connection');
  });

  it('answers 503 with the Redis error when the Redis connection is gone', async () => {
    assert.ok(t);
    t.app.get<Redis>(REDIS).disconnect();
    const res = await request(t.server).get('/health/ready').expect(503);
    assert.equal(res.body.status, 'unavailable');
    assert.equal(res.body.checks.redis.status, 'down');
    assert.match(res.body.checks.redis.error, /closed/i);
    assert.equal(res.body.checks.libvirt.status, 'up');
    await t.close();
    t = undefined;
  });

  it('answers 503 when the libvirt host refuses connections, the refusal its reason', async () => {
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN,
        LIBVIRT_DEFAULT_URI: 'qemu+tcp://127.0.0.1:1/system',
      }),
    );
    const res = await request(t.server).get('/health/ready').expect(503);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(res.body.status, 'unavailable');
    assert.equal(res.body.checks.redis.status, 'up');
    const { libvirt } = res.body.checks;
    assert.equal(libvirt.status, 'down');
    assert.equal(libvirt.uri, 'qemu+tcp://127.0.0.1:1/system');
    assert.equal(libvirt.libvirtVersion, undefined);
    // Refused, not timed out: the check waited on no deadline.
    assert.match(libvirt.error, /ECONNREFUSED/);
    // Liveness does not depend on dependencies.
    await request(t.server).get('/health/live').expect(200);
    await t.close();
    t = undefined;
  });

  it("answers 503 by the check's deadline when the libvirt host accepts but never answers", async (ctx) => {
    const silent = await silentServer();
    try {
      t = await startApp(
        testConfig(prefix, {
          VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN,
          LIBVIRT_DEFAULT_URI: `qemu+tcp://127.0.0.1:${silent.port}/system`,
        }),
      );
      const started = Date.now();
      const res = await request(t.server).get('/health/ready').expect(503);
      ctx.diagnostic(`readiness answered after ${Date.now() - started} ms`);
      assert.equal(res.body.checks.redis.status, 'up');
      assert.equal(res.body.checks.libvirt.status, 'down');
      // The host took the connection and said nothing: the check's own deadline ended it
      // (the connect's or the call's, both CHECK_TIMEOUT_MS), not a refusal.
      assert.ok(silent.accepted() >= 1, 'the check reached the silent host');
      assert.match(
        res.body.checks.libvirt.error,
        new RegExp(`(no answer|no reply|timed out).* ${CHECK_TIMEOUT_MS} ms`),
      );
    } finally {
      await t?.close();
      t = undefined;
      await silent.close();
    }
  });
});

/** Established TCP connections of this process to 127.0.0.1:`port` (from /proc). */
function connectionsOfThisProcessTo(port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols[2] === remote && cols[3] === '01' && inodes.has(cols[9] ?? '')).length;
}
