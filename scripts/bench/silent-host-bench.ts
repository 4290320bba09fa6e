/**
 * Part of npm run bench:jobs — how long a host that falls silent holds the API.
 *
 * A gateway (ROLE=api) reaches the test driver of the real libvirtd through a
 * TCP forwarder (test/support/forwarder.ts) that freezes: sockets stay open,
 * new connections are accepted, no byte moves, as with a stopped libvirtd
 * after its handshake. For each keepalive setting (the gateway's default,
 * a tight one, and libvirt's own 5 s × 5 for comparison), BENCH_REPS times on
 * a fresh host: the time from the freeze to the first 503, the time of the
 * following 503s, of DELETE of the silent host, and of DELETE of a host just
 * gone silent with a request in flight (and when that request is let go). Prints figures; asserts
 * nothing. Environment: BENCH_REPS (3), BENCH_FOLLOWING (20), BENCH_LEGACY
 * (1: include 5 s × 5, which takes about 30 s a repetition).
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { CONFIG_DEFAULTS } from '#src/config/config.js';
import { RpcConnection } from '#src/libvirt/index.js';
import { Forwarder } from '../../test/support/forwarder.js';
import { freePort, startGateway, summary } from './bench-util.js';

const REPS = Number(process.env.BENCH_REPS ?? 3);
const FOLLOWING = Number(process.env.BENCH_FOLLOWING ?? 20);
const LEGACY = (process.env.BENCH_LEGACY ?? '1') === '1';
const TOKEN = `bench-${process.pid}-0123456789abcdef`;

interface Setting {
  label: string;
  intervalMs: number;
  count: number;
  reps: number;
}

const settings: Setting[] = [
  {
    label: 'default',
    intervalMs: Number(CONFIG_DEFAULTS.LIBVIRT_KEEPALIVE_INTERVAL_MS),
    count: Number(CONFIG_DEFAULTS.LIBVIRT_KEEPALIVE_COUNT),
    reps: REPS,
  },
  { label: 'tight', intervalMs: 500, count: 2, reps: REPS },
  ...(LEGACY ? [{ label: "libvirt's 5 s × 5", intervalMs: 5000, count: 5, reps: 1 }] : []),
];

async function main(): Promise<void> {
  console.log(
    `silent host (forwarder frozen after the handshake), ROLE=api, ` +
      `LIBVIRT_CALL_TIMEOUT_MS ${CONFIG_DEFAULTS.LIBVIRT_CALL_TIMEOUT_MS}:`,
  );
  for (const s of settings) await measure(s);
}

async function measure(s: Setting): Promise<void> {
  const port = await freePort();
  const gateway = await startGateway(port, {
    ROLE: 'api',
    VIRTGATE_REDIS_PREFIX: `vgbenchsilent:${process.pid}:${s.intervalMs}:`,
    VIRTGATE_ADMIN_TOKEN: TOKEN,
    LIBVIRT_KEEPALIVE_INTERVAL_MS: String(s.intervalMs),
    LIBVIRT_KEEPALIVE_COUNT: String(s.count),
  });
  const base = `http://127.0.0.1:${port}`;
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const call = async (method: string, url: string, body?: object) => {
    const t0 = performance.now();
    const res = await fetch(`${base}${url}`, {
      method,
      headers,
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    await res.arrayBuffer();
    return { status: res.status, ms: performance.now() - t0, at: performance.now() };
  };
  const first: number[] = [];
  const following: number[] = [];
  const removal: number[] = [];
  const removalInFlight: number[] = [];
  const released: number[] = [];
  const forwarders: Forwarder[] = [];
  try {
    for (let rep = 0; rep < s.reps; rep++) {
      const fwd = new Forwarder();
      forwarders.push(fwd);
      await fwd.open();
      const name = `silent-${rep}`;
      const created = await call('POST', '/v1/hosts', {
        name,
        uri: `test+tcp://127.0.0.1:${fwd.port}/default`,
      });
      if (created.status !== 201) throw new Error(`POST /v1/hosts: ${created.status}`);
      const one = `/v1/hosts/${name}/domains/test`;
      for (let i = 0; i < 5; i++) {
        const ok = await call('GET', one);
        if (ok.status !== 200) throw new Error(`GET ${one}: ${ok.status}`);
      }
      // Frozen at a random point of the keepalive's cycle, as a host would fall silent.
      await new Promise((r) => setTimeout(r, Math.random() * s.intervalMs));
      const frozenAt = performance.now();
      fwd.freeze();
      const firstRes = await call('GET', one);
      if (firstRes.status !== 503)
        throw new Error(`first request on a silent host: ${firstRes.status}`);
      first.push(firstRes.at - frozenAt);
      for (let i = 0; i < FOLLOWING; i++) {
        const next = await call('GET', one);
        if (next.status !== 503) throw new Error(`following request: ${next.status}`);
        following.push(next.ms);
      }
      const del = await call('DELETE', `/v1/hosts/${name}`);
      if (del.status !== 204) throw new Error(`DELETE: ${del.status}`);
      removal.push(del.ms);

      // Removal of a host just gone silent, a request of it still waiting for its reply.
      const fwd2 = new Forwarder();
      forwarders.push(fwd2);
      await fwd2.open();
      const name2 = `doomed-${rep}`;
      const created2 = await call('POST', '/v1/hosts', {
        name: name2,
        uri: `test+tcp://127.0.0.1:${fwd2.port}/default`,
      });
      if (created2.status !== 201) throw new Error(`POST /v1/hosts: ${created2.status}`);
      const ok = await call('GET', `/v1/hosts/${name2}/domains/test`);
      if (ok.status !== 200) throw new Error(`GET: ${ok.status}`);
      fwd2.freeze();
      const pending = call('GET', `/v1/hosts/${name2}/domains/test`);
      await new Promise((r) => setTimeout(r, 100));
      const del2 = await call('DELETE', `/v1/hosts/${name2}`);
      if (del2.status !== 204) throw new Error(`DELETE: ${del2.status}`);
      removalInFlight.push(del2.ms);
      released.push((await pending).at - del2.at);
    }
  } finally {
    for (const f of forwarders) await f.cut();
    await stop(gateway);
  }
  const bound = RpcConnection.keepaliveBoundMs(s.intervalMs, s.count);
  const f = first.map((ms) => Math.round(ms)).join(', ');
  const n = summary(following);
  const max = (xs: number[]): string => Math.max(...xs).toFixed(1);
  console.log(
    `  ${s.label.padEnd(18)} keepalive ${s.intervalMs} ms × ${s.count} (bound ${bound} ms): ` +
      `freeze → first 503 [${f}] ms; following 503s median ${n.median.toFixed(1)} ms, ` +
      `p99 ${n.p99.toFixed(1)} ms (n=${following.length}); DELETE of the unreachable host ` +
      `max ${max(removal)} ms; DELETE of a host just silent, a request in flight: ` +
      `max ${max(removalInFlight)} ms, the request answered ≤ ${max(released)} ms after`,
  );
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

await main();
