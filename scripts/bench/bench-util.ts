/** What the benchmarks share: a free port, a gateway process, medians and p99s. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  s.close();
  return port;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

export function summary(ms: number[]): { median: number; p99: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
}

/**
 * Limits a bench must not trip (it measures throughput, not 429s) but that still
 * run, so their cost is in the figures.
 */
export const BENCH_LIMITS = {
  RATE_LIMIT_PER_TOKEN: '10000000',
  RATE_LIMIT_PER_ADDRESS: '10000000',
  JOBS_MAX_ACTIVE_PER_CALLER: '1000000',
};

/**
 * Starts `dist/src/main.js` (ROLE=all unless `env` says otherwise) and waits until it answers.
 * `nodeArgs` go to node before the script; `ipc` opens an IPC channel to the child (for a
 * preloaded probe such as memory-probe.js).
 */
export async function startGateway(
  port: number,
  env: Record<string, string>,
  options: { nodeArgs?: string[]; ipc?: boolean } = {},
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), 'dist/src/main.js'], {
    env: {
      ...process.env,
      ROLE: 'all',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      ...BENCH_LIMITS,
      ...env,
    },
    stdio: options.ipc ? ['ignore', 'ignore', 'inherit', 'ipc'] : ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health/live`)).ok) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error('the gateway did not start');
}
