/**
 * One round of one workload of the RPC benchmark, for this project's
 * TypeScript libvirt client, on ONE connection: sequentially, with a window of
 * 64 operations in flight, and with every operation issued at once. Prints one
 * JSON line per measurement; scripts/bench-rpc.sh runs the rounds and reports.
 *
 *   node dist/scripts/bench/rpc-bench.js URI libVersion|lookupInfo [N=10000] [WARMUP=5000]
 */
import { LibvirtClient } from '#src/libvirt/index.js';

const [uri = 'test+unix:///default', workload = 'libVersion', n = '10000', warmup = '5000'] =
  process.argv.slice(2);
const N = Number(n);

/** An operation; `lookupInfo` is two RPCs (lookup by name, then get info) counted as one. */
const workloads: Record<string, (c: LibvirtClient) => Promise<unknown>> = {
  libVersion: (c) => c.rpc.connectGetLibVersion(),
  lookupInfo: async (c) => c.rpc.domainGetInfo(await c.rpc.domainLookupByName({ name: 'test' })),
};

/** Operations in flight: 1 is sequential; N issues every operation in the same tick. */
const modes = { sequential: 1, window64: 64, allAtOnce: N };

/** Runs `count` operations, at most `window` in flight; returns wall and CPU seconds. */
async function measure(op: () => Promise<unknown>, count: number, window: number) {
  let started = 0;
  const lane = async () => {
    while (started < count) {
      started++; // before awaiting, so that the lanes together start exactly `count`
      await op();
    }
  };
  const [t0, cpu0] = [performance.now(), process.cpuUsage()];
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
  const cpu = process.cpuUsage(cpu0);
  return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

const fn = workloads[workload];
if (!fn)
  throw new Error(`unknown workload ${workload}; known: ${Object.keys(workloads).join(', ')}`);
const client = await LibvirtClient.connect(uri);
try {
  const op = () => fn(client);
  // V8 needs a few thousand calls before the hot paths are optimised.
  await measure(op, Number(warmup), 1);
  await measure(op, Number(warmup), 64);
  for (const [mode, window] of Object.entries(modes)) {
    const { seconds, cpuSeconds } = await measure(op, N, window);
    const result = { client: 'ts', uri, workload, mode, window, n: N, seconds, cpuSeconds };
    console.log(JSON.stringify({ ...result, rate: N / seconds }));
  }
} finally {
  await client.close();
}
