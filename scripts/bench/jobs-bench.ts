/**
 * npm run bench:jobs — what going through a job costs, beside the same libvirt
 * call made directly, in one run.
 *
 * On the test driver (whose lifecycle calls take microseconds, so the job
 * machinery is what is measured): POST …/actions/start with `Prefer: wait`
 * until the finished job comes back, then destroy the same way, N times,
 * against python3-libvirt's `create()`/`destroy()`; then 50 concurrent short
 * jobs (autostart on/off) across 10 domains. Prints medians and p99s; asserts
 * nothing. Environment: BENCH_N (100).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { buildXml } from '#src/xml/xml.js';

const N = Number(process.env.BENCH_N ?? 100);
const URI = 'test+unix:///default';
const TOKEN = `bench-${process.pid}-0123456789abcdef`;
const PREFIX = `vgjobs${process.pid}-`;
const run = promisify(execFile);

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  s.close();
  return port;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

function summary(ms: number[]): { median: number; p99: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
}

async function startGateway(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env: {
      ...process.env,
      ROLE: 'all',
      PORT: String(port),
      VIRTGATE_REDIS_PREFIX: `vgbenchjobs:${process.pid}:`,
      VIRTGATE_ADMIN_TOKEN: TOKEN,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
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

async function main(): Promise<void> {
  const client = await LibvirtClient.connect(URI);
  const doms: RemoteDomain[] = [];
  const port = await freePort();
  const gateway = await startGateway(port);
  const base = `http://127.0.0.1:${port}`;
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  try {
    for (let i = 0; i < 10; i++) {
      const xml = buildXml({
        name: 'domain',
        attrs: { type: 'test' },
        children: [
          { name: 'name', text: `${PREFIX}${i}` },
          { name: 'memory', attrs: { unit: 'MiB' }, text: 64 },
          { name: 'os', children: [{ name: 'type', text: 'hvm' }] },
        ],
      });
      doms.push((await client.rpc.domainDefineXmlFlags({ xml, flags: 0 })).dom);
    }
    const created = await fetch(`${base}/v1/hosts`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'bench', uri: URI }),
    });
    if (created.status !== 201) throw new Error(`POST /v1/hosts: ${created.status}`);

    const action = async (domain: string, act: string, body: object = {}): Promise<number> => {
      const t0 = performance.now();
      const res = await fetch(`${base}/v1/hosts/bench/domains/${domain}/actions/${act}`, {
        method: 'POST',
        headers: { ...headers, prefer: 'wait=30' },
        body: JSON.stringify(body),
      });
      const job = (await res.json()) as { state?: string };
      if (res.status !== 200 || job.state !== 'completed') {
        throw new Error(`${act} ${domain}: ${res.status} ${JSON.stringify(job)}`);
      }
      return performance.now() - t0;
    };

    // warm up
    for (let i = 0; i < 10; i++) {
      await action(`${PREFIX}0`, 'start');
      await action(`${PREFIX}0`, 'destroy');
    }
    const start: number[] = [];
    const destroy: number[] = [];
    for (let i = 0; i < N; i++) {
      start.push(await action(`${PREFIX}1`, 'start'));
      destroy.push(await action(`${PREFIX}1`, 'destroy'));
    }

    const concurrentStarted = performance.now();
    const concurrent = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        action(`${PREFIX}${i % 10}`, 'autostart', { enabled: Math.floor(i / 10) % 2 === 0 }),
      ),
    );
    const concurrentWall = performance.now() - concurrentStarted;

    const { stdout } = await run('/usr/bin/python3', [
      'scripts/bench/jobs_bench.py',
      URI,
      `${PREFIX}2`,
      String(N),
    ]);
    const py = JSON.parse(stdout) as { create: number[]; destroy: number[] };

    const rows: [string, number[]][] = [
      ['gateway: POST start, Prefer: wait → completed job', start],
      ['gateway: POST destroy, Prefer: wait → completed job', destroy],
      ['python3-libvirt: dom.create()', py.create],
      ['python3-libvirt: dom.destroy()', py.destroy],
      ['gateway: 50 concurrent autostart jobs, 10 domains (each)', concurrent],
    ];
    console.log(`${N} sequential jobs of each kind on ${URI}; milliseconds`);
    console.log(`\n${'what'.padEnd(58)} median      p99`);
    for (const [what, ms] of rows) {
      const s = summary(ms);
      console.log(
        `${what.padEnd(58)} ${s.median.toFixed(2).padStart(6)} ${s.p99.toFixed(2).padStart(8)}`,
      );
    }
    console.log(`50 concurrent jobs: all done in ${concurrentWall.toFixed(0)} ms`);
    const overhead = summary(start).median - summary(py.create).median;
    console.log(
      `\nqueueing overhead at the median (start job − direct create): ${overhead.toFixed(2)} ms ` +
        `— ${overhead < 20 ? 'PASS' : 'MISS'} (target < 20 ms)`,
    );
    console.log('block jobs (POST → running): not measured yet — see the closing note');
  } finally {
    gateway.kill('SIGTERM');
    await once(gateway, 'exit');
    for (const dom of doms) {
      await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await client.close();
  }
}

await main();
