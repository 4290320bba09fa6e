/**
 * npm run bench:api — the gateway's domain listing under load, beside
 * python3-libvirt doing the same listing directly, in one run.
 *
 * 1,000 domains are defined on the test driver (test+unix:///default). The
 * gateway runs as a child process (ROLE=api), and
 * autocannon drives `GET /v1/hosts/bench/domains?limit=100` and the
 * equivalent GraphQL query; python3-libvirt lists all domains and reads the
 * info of the first 100 by name, sequentially. The api process's memory is
 * read from /proc. Figures are printed; nothing is asserted.
 *
 * The REST listing is also measured with an operator token scoped to the
 * bench host and a pattern every bench domain matches (the same page,
 * filtered by scope on the way), beside the admin's unscoped token: the
 * cost of scopes (target: at most 10 %). The authentication overhead per
 * request is GET /v1/me (authenticated, nothing else) against GET
 * /health/live (public), one client, mean latency.
 *
 * With BENCH_BASELINE_DIR set to another checkout of the gateway (built), its
 * api runs too, and every measurement is taken of both in turns, so that
 * what the machine does meanwhile falls on both alike: rows marked
 * "(baseline)" are that checkout's.
 *
 * Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (16), BENCH_DOMAINS (1000),
 * BENCH_BASELINE_DIR.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { buildXml } from '#src/xml/xml.js';
import { BENCH_LIMITS, freePort } from './bench-util.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 1000);
const URI = 'test+unix:///default';
const TOKEN = `bench-${process.pid}-0123456789abcdef`;
const PREFIX = `vgbench${process.pid}-`;
const run = promisify(execFile);

const GRAPHQL_QUERY = `{ host(name: "bench") { domains(first: 100) { edges { node {
  uuid name id state stateReason vcpus memoryBytes maxMemoryBytes autostart persistent } } } } }`;

interface LoadResult {
  rps: number;
  /** Mean latency, ms (autocannon's percentiles have a 1 ms resolution). */
  mean: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

function domainXml(name: string): string {
  return buildXml({
    name: 'domain',
    attrs: { type: 'test' },
    children: [
      { name: 'name', text: name },
      { name: 'memory', attrs: { unit: 'MiB' }, text: 128 },
      { name: 'vcpu', text: 2 },
      { name: 'os', children: [{ name: 'type', text: 'hvm' }] },
    ],
  });
}

const BASELINE = process.env.BENCH_BASELINE_DIR;

async function startGateway(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    cwd: dir,
    env: {
      ...process.env,
      ROLE: 'api',
      PORT: String(port),
      VIRTGATE_REDIS_PREFIX: `vgbench:${process.pid}:${port}:`,
      VIRTGATE_ADMIN_TOKEN: TOKEN,
      LOG_LEVEL: 'warn',
      ...BENCH_LIMITS,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health/live`);
      if (res.ok) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error('the gateway did not start');
}

async function stopGateway(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await once(child, 'exit');
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

async function load(opts: autocannon.Options, connections = CONNECTIONS): Promise<LoadResult> {
  const r = await autocannon({ connections, duration: SECONDS, ...opts });
  return {
    rps: r.requests.average,
    mean: r.latency.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
  };
}

async function python(): Promise<{ rps: number; mean: number; p50: number; p99: number }> {
  const { stdout } = await run(
    '/usr/bin/python3',
    ['scripts/bench/api_bench.py', URI, String(SECONDS)],
    {
      maxBuffer: 1 << 20,
    },
  );
  return JSON.parse(stdout) as { rps: number; mean: number; p50: number; p99: number };
}

interface Side {
  label: string;
  gateway: ChildProcess;
  base: string;
  gqlOk: boolean;
  /** An operator token scoped to the bench host's domains; null where the checkout has no tokens. */
  scoped: string | null;
}

/** The api of the checkout in `dir`, started, with the bench host registered and checked. */
async function side(dir: string, label: string): Promise<Side> {
  const port = await freePort();
  const gateway = await startGateway(port, dir);
  const base = `http://127.0.0.1:${port}`;
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const created = await fetch(`${base}/v1/hosts`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'bench', uri: URI }),
  });
  if (created.status !== 201 && created.status !== 409) {
    throw new Error(`POST /v1/hosts${label}: ${created.status}`);
  }
  const page = (await (
    await fetch(`${base}/v1/hosts/bench/domains?limit=100`, { headers })
  ).json()) as { items: unknown[] };
  if (page.items.length !== 100) {
    throw new Error(`the REST listing${label} returned ${page.items.length} domains`);
  }
  const gql = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query: GRAPHQL_QUERY }),
  });
  const gqlBody = (await gql.json()) as { data?: { host?: { domains?: { edges?: unknown[] } } } };
  const gqlOk = gqlBody.data?.host?.domains?.edges?.length === 100;
  if (!gqlOk) {
    console.log(
      `GraphQL check${label} failed (${gql.status}): ${JSON.stringify(gqlBody).slice(0, 300)}`,
    );
  }
  const made = await fetch(`${base}/v1/tokens`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      name: 'bench-scoped',
      role: 'operator',
      scopes: [{ host: 'bench', domains: [`${PREFIX}*`] }],
    }),
  });
  const scoped = made.status === 201 ? ((await made.json()) as { token: string }).token : null;
  if (scoped !== null) {
    const scopedPage = (await (
      await fetch(`${base}/v1/hosts/bench/domains?limit=100`, {
        headers: { authorization: `Bearer ${scoped}` },
      })
    ).json()) as { items: unknown[]; scopeFiltered: boolean };
    if (scopedPage.items.length !== 100 || scopedPage.scopeFiltered !== true) {
      throw new Error(
        `the scoped REST listing${label} returned ${scopedPage.items.length} domains`,
      );
    }
  }
  return { label, gateway, base, gqlOk, scoped };
}

async function main(): Promise<void> {
  // The test driver's state lives while a connection to it is open: keep this one until the end.
  const client = await LibvirtClient.connect(URI);
  const defined: RemoteDomain[] = [];
  const results: {
    what: string;
    r: LoadResult | { rps: number; mean: number; p50: number; p99: number };
    rss?: number;
  }[] = [];
  try {
    for (let i = 0; i < DOMAINS; i += 50) {
      const batch = Array.from({ length: Math.min(50, DOMAINS - i) }, (_, j) =>
        client.rpc.domainDefineXmlFlags({
          xml: domainXml(`${PREFIX}${String(i + j).padStart(4, '0')}`),
          flags: 0,
        }),
      );
      defined.push(...(await Promise.all(batch)).map((r) => r.dom));
    }
    const { ret } = await client.rpc.connectListAllDomains({ needResults: 0, flags: 0 });
    console.log(
      `${ret} domains on ${URI}; ${SECONDS} s per measurement, ${CONNECTIONS} connections`,
    );

    const sides: Side[] = [await side(process.cwd(), '')];
    if (BASELINE) sides.push(await side(path.resolve(BASELINE), ' (baseline)'));
    try {
      const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
      const body = JSON.stringify({ query: GRAPHQL_QUERY });
      const rest = (s: Side) => ({ url: `${s.base}/v1/hosts/bench/domains?limit=100`, headers });
      const gql = (s: Side) => ({
        url: `${s.base}/graphql`,
        method: 'POST' as const,
        headers,
        body,
      });
      for (const s of sides) {
        await autocannon({ ...rest(s), duration: 2, connections: 4 }); // warm up
        if (s.gqlOk) await autocannon({ ...gql(s), duration: 2, connections: 4 });
      }
      const scopedRest = (s: Side) => ({
        url: `${s.base}/v1/hosts/bench/domains?limit=100`,
        headers: { authorization: `Bearer ${s.scoped}` },
      });
      const me = (s: Side) => ({ url: `${s.base}/v1/me`, headers });
      const live = (s: Side) => ({ url: `${s.base}/health/live` });
      type Measurement = [string, (s: Side) => autocannon.Options, number, boolean, boolean?];
      const measurements: Measurement[] = [
        ['REST  …/domains?limit=100, 1 client', rest, 1, false],
        ['REST  …/domains?limit=100, scoped operator, 1 client', scopedRest, 1, false, true],
        [`REST  …/domains?limit=100, ${CONNECTIONS} clients`, rest, CONNECTIONS, false],
        [
          `REST  …/domains?limit=100, scoped operator, ${CONNECTIONS} clients`,
          scopedRest,
          CONNECTIONS,
          false,
          true,
        ],
        ['GET /health/live (no auth), 1 client', live, 1, false],
        ['GET /v1/me (bearer token), 1 client', me, 1, false],
        ['GraphQL domains(first: 100), 1 client', gql, 1, true],
        [`GraphQL domains(first: 100), ${CONNECTIONS} clients`, gql, CONNECTIONS, true],
      ];
      for (const [i, [what, opts, connections, graphql, scoped]] of measurements.entries()) {
        // In turns: this checkout first, then the baseline, then the other way round.
        for (const s of i % 2 ? [...sides].reverse() : sides) {
          if (graphql && !s.gqlOk) continue;
          if (scoped && s.scoped === null) continue;
          results.push({
            what: `${what}${s.label}`,
            r: await load(opts(s), connections),
            rss: connections > 1 ? rssMiB(s.gateway.pid!) : undefined,
          });
        }
      }
    } finally {
      for (const s of sides) await stopGateway(s.gateway);
    }
    results.push({
      what: 'python3-libvirt: listAllDomains + info() x100, sequential',
      r: await python(),
    });
  } finally {
    for (let i = 0; i < defined.length; i += 50) {
      await Promise.all(
        defined.slice(i, i + 50).map((dom) => client.rpc.domainUndefineFlags({ dom, flags: 0 })),
      );
    }
    await client.close();
  }

  const py = results.at(-1)!.r;
  console.log(`\n${'what'.padEnd(62)}   req/s  mean ms   p50 ms   p99 ms   errors  api RSS MiB`);
  for (const { what, r, rss } of results) {
    const errs = 'errors' in r ? String(r.errors + r.non2xx) : '-';
    console.log(
      `${what.padEnd(62)} ${r.rps.toFixed(0).padStart(7)} ${r.mean.toFixed(2).padStart(8)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${errs.padStart(8)}  ${rss === undefined ? '-' : rss.toFixed(0)}`,
    );
  }
  console.log(
    '\nratios (gateway / python3-libvirt direct listing; latency targets apply to 1 client):',
  );
  for (const { what, r } of results.slice(0, -1)) {
    console.log(
      `${what.padEnd(62)} mean latency ${(r.mean / py.mean).toFixed(2)}x python's${what.includes(' 1 client') ? ' (target <= 1.00)' : ''}, throughput ${(r.rps / py.rps).toFixed(2)}x`,
    );
  }
  const find = (what: string) => results.find((x) => x.what === what)?.r;
  for (const n of ['1 client', `${CONNECTIONS} clients`]) {
    const admin = find(`REST  …/domains?limit=100, ${n}`);
    const scoped = find(`REST  …/domains?limit=100, scoped operator, ${n}`);
    if (admin && scoped) {
      const cost = (scoped.mean / admin.mean - 1) * 100;
      console.log(
        `${cost <= 10 ? 'PASS' : 'MISS'}  scoped operator listing, ${n}: mean ${scoped.mean.toFixed(2)} ms vs admin ${admin.mean.toFixed(2)} ms, ${cost >= 0 ? '+' : ''}${cost.toFixed(1)} % (target <= +10 %)`,
      );
    }
  }
  const liveR = find('GET /health/live (no auth), 1 client');
  const meR = find('GET /v1/me (bearer token), 1 client');
  if (liveR && meR) {
    console.log(
      `authentication overhead per request: ${(meR.mean - liveR.mean).toFixed(3)} ms mean latency (GET /v1/me ${meR.mean.toFixed(3)} ms, /health/live ${liveR.mean.toFixed(3)} ms, 1 client)`,
    );
  }
  const rest = results.filter(
    (x) => x.what.startsWith('REST') && !x.what.includes(' 1 client') && !x.what.includes('scoped'),
  );
  for (const { what, r } of rest) {
    console.log(
      `${r.rps >= 500 ? 'PASS' : 'MISS'}  ${what}: ${r.rps.toFixed(0)} req/s (target >= 500)`,
    );
  }
}

await main();
