/**
 * Part of npm run bench:jobs — how long a worker process takes from its spawn
 * to taking jobs ("processing queues" in its log): what a worker that died
 * costs before another takes its jobs over (plus JOB_LOCK_MS). With
 * BENCH_BASELINE_DIR set to another checkout of the gateway (built), its
 * worker is started too, in turns with this one, and printed beside it.
 * Environment: BENCH_WORKER_STARTS (7).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { summary } from './bench-util.js';

const STARTS = Number(process.env.BENCH_WORKER_STARTS ?? 7);
// dist/scripts/bench/ → repository root
const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BASELINE = process.env.BENCH_BASELINE_DIR;

/** Milliseconds from spawning a worker in `dir` to its first "processing queues" line. */
async function startOnce(dir: string): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    cwd: dir,
    env: {
      ...process.env,
      ROLE: 'worker',
      VIRTGATE_REDIS_PREFIX: `vgbenchworker:${process.pid}:`,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no worker ready in ${dir}`)), 30_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('processing queues')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`the worker in ${dir} exited (${code})`)));
    });
    return performance.now() - started;
  } finally {
    child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
}

const sides = BASELINE ? { this: HERE, baseline: path.resolve(BASELINE) } : { this: HERE };
const times: Record<string, number[]> = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
for (let i = 0; i < STARTS; i++) {
  // In turns, so that what the machine does meanwhile falls on both alike.
  const order = i % 2 ? Object.entries(sides).reverse() : Object.entries(sides);
  for (const [name, dir] of order) times[name]!.push(await startOnce(dir));
}
console.log(`\nworker start (spawn → processing queues), ${STARTS} times each; milliseconds`);
for (const [name, dir] of Object.entries(sides)) {
  const { median } = summary(times[name]!);
  const sorted = [...times[name]!].sort((a, b) => a - b);
  console.log(
    `${`${name}: ${dir}`.padEnd(58)} median ${median.toFixed(0).padStart(6)}   min ${sorted[0]!.toFixed(0)}   max ${sorted.at(-1)!.toFixed(0)}`,
  );
}
