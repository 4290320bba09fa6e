/**
 * Reads the JSON lines of rpc-bench.ts and rpc_bench.py (several rounds) and
 * prints the median of each measurement, the ratios to python3-libvirt's
 * sequential rate, and one PASS/MISS line per target of issue 2.
 *
 *   node dist/scripts/bench/rpc-report.js RESULTS.jsonl
 */
import { readFileSync } from 'node:fs';

interface Result {
  client: 'ts' | 'python';
  uri: string;
  workload: string;
  mode: string;
  window: number;
  n: number;
  cpuSeconds: number;
  rate: number;
}

const results = readFileSync(process.argv[2]!, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as Result);

/** `test+tls://…` → tls; a URI without a transport (`test:///default`) is the UNIX socket. */
const transportOf = (uri: string) => /^[a-z0-9-]+\+([a-z0-9]+):/.exec(uri)?.[1] ?? 'unix';
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Group {
  first: Result;
  rates: number[];
  cpuUs: number[];
}
const groups = new Map<string, Group>();
const keyOf = (transport: string, workload: string, client: string, mode: string) =>
  `${transport} ${workload} ${client} ${mode}`;
for (const r of results) {
  const key = keyOf(transportOf(r.uri), r.workload, r.client, r.mode);
  const g = groups.get(key) ?? { first: r, rates: [], cpuUs: [] };
  g.rates.push(r.rate);
  g.cpuUs.push((r.cpuSeconds / r.n) * 1e6);
  groups.set(key, g);
}
const rateOf = (transport: string, workload: string, client: string, mode: string) =>
  median(groups.get(keyOf(transport, workload, client, mode))?.rates ?? [NaN]);

const modeNames: Record<string, string> = {
  sequential: 'sequential (1 in flight)',
  window64: 'concurrent, window of 64 in flight',
  allAtOnce: 'concurrent, all N issued at once',
};
const head = ['transport', 'workload', 'client', 'mode', 'median ops/s', 'each round', 'CPU us/op'];
const rows = [...groups.values()].map(({ first: r, rates, cpuUs }) => [
  transportOf(r.uri),
  r.workload,
  r.client === 'ts' ? 'typescript' : 'python3-libvirt',
  modeNames[r.mode] ?? `concurrent, ${r.window} threads`,
  fmt(median(rates)),
  rates.map(fmt).join(' '),
  median(cpuUs).toFixed(1),
]);
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
const n = results[0]?.n ?? 0;
console.log(
  `\n== Operations per second: ${fmt(n)} per measurement, one connection, median of rounds`,
);
console.log('libVersion = 1 RPC (connectGetLibVersion). lookupInfo = 2 RPCs (domainLookupByName');
console.log(
  "'test', then domainGetInfo) counted as ONE operation. CPU us/op = the client process's",
);
console.log('own CPU time (user + system) per operation, median.\n');
for (const row of [head, ...rows]) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  '));

const targets = [
  { label: 'TS sequential / python sequential', mode: 'sequential', min: 1, counts: true },
  { label: 'TS all at once / python sequential', mode: 'allAtOnce', min: 2, counts: true },
  { label: 'TS window of 64 / python sequential', mode: 'window64', min: 2, counts: false },
];
const cases = [...new Set(rows.map(([transport, workload]) => `${transport} ${workload}`))];
console.log('\n== Ratios (median TS rate / median python3-libvirt sequential rate)');
const verdicts = targets.map((t) => {
  const ratios = cases.map((c) => {
    const [transport = '', workload = ''] = c.split(' ');
    const ratio =
      rateOf(transport, workload, 'ts', t.mode) /
      rateOf(transport, workload, 'python', 'sequential');
    console.log(
      `${t.label.padEnd(36)} ${c.padEnd(16)} ${ratio.toFixed(2)}  (target >= ${t.min.toFixed(1)})`,
    );
    return { ratio, c };
  });
  return { ...t, worst: ratios.reduce((a, b) => (b.ratio < a.ratio || isNaN(b.ratio) ? b : a)) };
});
console.log('');
for (const v of verdicts) {
  const verdict = v.worst.ratio >= v.min ? 'PASS' : 'MISS';
  const note = v.counts ? '' : ' (informational)';
  console.log(
    `${verdict}  ${v.label} >= ${v.min.toFixed(1)}${note}: lowest ${v.worst.ratio.toFixed(2)} (${v.worst.c})`,
  );
}
