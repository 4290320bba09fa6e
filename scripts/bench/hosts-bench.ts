/**
 * npm run bench:hosts — one host falling silent does not slow the others.
 *
 * A gateway (ROLE=api) has three real hosts: the system libvirtd, the
 * session-mode libvirtd of scripts/services.sh, and the system libvirtd
 * again through a TCP forwarder that freezes (test/support/forwarder.ts).
 * Clients list the session host's domains while others list the forwarded
 * host. In the baseline every host answers; in the other run the forwarded
 * host falls silent shortly after the start. The latency of the session
 * host's listings is printed for both, runs alternating (BENCH_REPS pairs),
 * in one process on the same machine. Prints figures; asserts nothing.
 * A run lasts BENCH_SECONDS, long enough for the gateway to find the silent
 * host out (keepalive 0.5 s × 2) and answer 503 for it at once.
 * Environment: BENCH_REPS (3), BENCH_SECONDS (4 per run), BENCH_CLIENTS (4).
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Forwarder } from '../../test/support/forwarder.js';
import { SESSION_URI } from '../../test/support/services.js';
import { freePort, startGateway, summary } from './bench-util.js';

const REPS = Number(process.env.BENCH_REPS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4);
const TOKEN = `bench-hosts-${process.pid}-0123456789abcdef`;

async function main(): Promise<void> {
  const fwd = new Forwarder();
  await fwd.open();
  const port = await freePort();
  const gateway = await startGateway(port, {
    ROLE: 'api',
    VIRTGATE_REDIS_PREFIX: `vgbenchhosts:${process.pid}:`,
    VIRTGATE_ADMIN_TOKEN: TOKEN,
    LIBVIRT_KEEPALIVE_INTERVAL_MS: '500',
    LIBVIRT_KEEPALIVE_COUNT: '2',
  });
  const base = `http://127.0.0.1:${port}`;
  const call = async (method: string, path: string, body?: object): Promise<Response> =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  try {
    for (const [name, uri] of [
      ['session', SESSION_URI],
      ['remote', `qemu+tcp://127.0.0.1:${fwd.port}/system`],
    ]) {
      const res = await call('POST', '/v1/hosts', { name, uri });
      if (res.status !== 201)
        throw new Error(`registering ${name}: ${res.status} ${await res.text()}`);
    }
    const list = async (host: string): Promise<{ ms: number; status: number }> => {
      const started = performance.now();
      const res = await call('GET', `/v1/hosts/${host}/domains?limit=50`);
      await res.arrayBuffer();
      return { ms: performance.now() - started, status: res.status };
    };
    for (let i = 0; i < 50; i++) await list('session'); // warm up
    const runs: Record<'baseline' | 'silent', number[]> = { baseline: [], silent: [] };
    let failed = 0;
    let remote503 = 0;
    for (let rep = 0; rep < REPS; rep++) {
      for (const kind of ['baseline', 'silent'] as const) {
        // The forwarded host answers again before each run.
        fwd.resume();
        for (let i = 0; i < 200 && (await list('remote')).status !== 200; i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        const until = performance.now() + SECONDS * 1000;
        let done = false;
        const session = async (): Promise<void> => {
          while (performance.now() < until) {
            const r = await list('session');
            runs[kind].push(r.ms);
            if (r.status !== 200) failed++;
          }
        };
        const remote = async (): Promise<void> => {
          while (!done) {
            const r = await list('remote');
            if (r.status === 503) remote503++;
          }
        };
        const remotes = [remote(), remote()];
        const freeze = kind === 'silent' ? setTimeout(() => fwd.freeze(), 100) : null;
        await Promise.all(Array.from({ length: CLIENTS }, session));
        done = true;
        if (freeze) clearTimeout(freeze);
        fwd.resume();
        await Promise.all(remotes);
      }
    }
    const fmt = (ms: number[]) => {
      const s = summary(ms);
      return `median ${s.median.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms (${ms.length} requests)`;
    };
    const b = summary(runs.baseline);
    const s = summary(runs.silent);
    console.log(
      `GET /v1/hosts/session/domains, ${CLIENTS} clients, 2 clients listing the forwarded host:`,
    );
    console.log(`  every host answers                  ${fmt(runs.baseline)}`);
    console.log(`  the forwarded host falls silent     ${fmt(runs.silent)}`);
    console.log(
      `  ratio silent/baseline: median ${(s.median / b.median).toFixed(2)}x, p99 ${(s.p99 / b.p99).toFixed(2)}x; ` +
        `session listings failed: ${failed}; 503s for the silent host: ${remote503}`,
    );
  } finally {
    gateway.kill();
    await once(gateway as ChildProcess, 'exit');
    await fwd.cut();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
