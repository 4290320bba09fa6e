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
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { freePort, startGateway, summary } from './bench-util.js';
import { buildXml } from '#src/xml/xml.js';

const N = Number(process.env.BENCH_N ?? 100);
const URI = 'test+unix:///default';
const TOKEN = `bench-${process.pid}-0123456789abcdef`;
const PREFIX = `vgjobs${process.pid}-`;
const run = promisify(execFile);

async function main(): Promise<void> {
  const client = await LibvirtClient.connect(URI);
  const doms: RemoteDomain[] = [];
  const port = await freePort();
  const gateway = await startGateway(port, {
    VIRTGATE_REDIS_PREFIX: `vgbenchjobs:${process.pid}:`,
    VIRTGATE_ADMIN_TOKEN: TOKEN,
  });
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
    await blockJobs(client, base, headers, rows.length);
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

/**
 * Block jobs: POST an active commit (pivot: false) on a running TCG domain and
 * time until the job is `running`, then cancel it (the chain stays as it was);
 * beside python3-libvirt's blockCommit() call on another such domain.
 */
async function blockJobs(
  client: LibvirtClient,
  base: string,
  headers: Record<string, string>,
  _rowsBefore: number,
): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vgbench-bj-'));
  const domains: RemoteDomain[] = [];
  const rw = await LibvirtClient.connect('qemu:///system');
  try {
    const created = await fetch(`${base}/v1/hosts`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'qemu', uri: 'qemu:///system' }),
    });
    if (created.status !== 201) throw new Error(`POST /v1/hosts: ${created.status}`);
    for (const which of ['gw', 'py']) {
      const basePath = path.join(dir, `${which}-base.qcow2`);
      const top = path.join(dir, `${which}-top.qcow2`);
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', basePath, '16M']);
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', basePath, '-F', 'qcow2', top]);
      const xml = buildXml({
        name: 'domain',
        attrs: { type: 'qemu' },
        children: [
          { name: 'name', text: `${PREFIX}bj-${which}` },
          { name: 'memory', attrs: { unit: 'MiB' }, text: 64 },
          {
            name: 'os',
            children: [{ name: 'type', attrs: { arch: 'x86_64', machine: 'pc' }, text: 'hvm' }],
          },
          {
            name: 'devices',
            children: [
              {
                name: 'disk',
                attrs: { type: 'file', device: 'disk' },
                children: [
                  { name: 'driver', attrs: { name: 'qemu', type: 'qcow2' } },
                  { name: 'source', attrs: { file: top } },
                  { name: 'target', attrs: { dev: 'vda', bus: 'virtio' } },
                ],
              },
            ],
          },
        ],
      });
      const { dom } = await rw.rpc.domainDefineXmlFlags({ xml, flags: 0 });
      domains.push((await rw.rpc.domainCreateWithFlags({ dom, flags: 0 })).dom);
    }
    const domName = `${PREFIX}bj-gw`;
    const job = async (id: string): Promise<{ state: string; progress: unknown }> =>
      (await (await fetch(`${base}/v1/jobs/${id}`, { headers })).json()) as {
        state: string;
        progress: unknown;
      };
    const toRunning: number[] = [];
    const toProgress: number[] = [];
    const accepted: number[] = [];
    const cancelInReady: number[] = [];
    for (let i = 0; i < 15; i++) {
      const disk = (await (
        await fetch(`${base}/v1/hosts/qemu/domains/${domName}/disks/vda`, { headers })
      ).json()) as { chain: { ref: string }[] };
      const t0 = performance.now();
      const res = await fetch(`${base}/v1/hosts/qemu/domains/${domName}/disks/vda/block-jobs`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ type: 'commit', base: disk.chain[1]!.ref, pivot: false }),
      });
      const body = (await res.json()) as { id: string };
      if (res.status !== 202) throw new Error(`block job: ${res.status} ${JSON.stringify(body)}`);
      accepted.push(performance.now() - t0);
      let running = false;
      for (;;) {
        const { state, progress } = await job(body.id);
        if (!running && state !== 'queued') {
          running = true;
          toRunning.push(performance.now() - t0);
        }
        if (progress !== null) break;
        await new Promise((r) => setTimeout(r, 1));
      }
      toProgress.push(performance.now() - t0);
      while ((await job(body.id)).state !== 'ready') await new Promise((r) => setTimeout(r, 5));
      const c0 = performance.now();
      const canceled = await fetch(`${base}/v1/jobs/${body.id}`, {
        method: 'DELETE',
        headers: { ...headers, prefer: 'wait=30' },
      });
      const end = (await canceled.json()) as { state: string };
      if (end.state !== 'canceled')
        throw new Error(`cancel: ${canceled.status} ${JSON.stringify(end)}`);
      cancelInReady.push(performance.now() - c0);
    }
    const { stdout } = await run('/usr/bin/python3', [
      'scripts/bench/blockjob_bench.py',
      `${PREFIX}bj-py`,
      '15',
    ]);
    const py = JSON.parse(stdout) as number[];
    console.log('\nblock jobs (active commit, pivot: false, then canceled), 15 each; milliseconds');
    for (const [what, ms] of [
      ['gateway: POST answered (202)', accepted],
      ['gateway: POST → job running (a worker took it)', toRunning],
      ["gateway: POST → libvirt's first progress on the job", toProgress],
      ['python3-libvirt: blockCommit() returns', py],
      ['gateway: DELETE in ready, Prefer: wait → canceled job', cancelInReady],
    ] as const) {
      const s = summary(ms);
      console.log(
        `${what.padEnd(58)} ${s.median.toFixed(2).padStart(6)} ${s.p99.toFixed(2).padStart(8)}`,
      );
    }
    const added = summary(toRunning).median - summary(py).median;
    console.log(
      `block job overhead at the median (POST → running − direct blockCommit): ${added.toFixed(2)} ms ` +
        `— ${added < 20 ? 'PASS' : 'MISS'} (target < 20 ms)`,
    );
  } finally {
    for (const dom of domains) {
      await rw.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await rw.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await rw.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
