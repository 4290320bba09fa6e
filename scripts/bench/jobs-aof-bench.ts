/**
 * npm run bench:jobs (part) — the queueing overhead of a durable Redis: two
 * redis-servers of this bench's own on loopback, one with AOF (appendonly
 * yes, appendfsync everysec), one without, each under a gateway (ROLE=all)
 * of its own, measured in the same run, in alternating rounds so that the
 * machine's load hits both alike. Per job: the time to accept and queue it
 * (POST …/actions/autostart until the 202), and a small job end to end
 * (the same with `Prefer: wait` until the finished job comes back). Prints
 * medians and p99s side by side with the ratio, against the target of at
 * most 20 % more with AOF; asserts nothing. Environment: BENCH_N (200).
 */
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { buildXml } from '#src/xml/xml.js';
import { startRedisServer, stopAllRedisServers } from '../../test/support/redis-servers.js';
import { freePort, startGateway, summary } from './bench-util.js';

const N = Number(process.env.BENCH_N ?? 200);
const ROUNDS = 10;
const URI = 'test+unix:///default';
const TOKEN = `bench-aof-${process.pid}-0123456789abcdef`;
const DOMAIN_PREFIX = `vgaof${process.pid}-`;

interface Side {
  label: string;
  base: string;
  accept: number[];
  endToEnd: number[];
}

async function main(): Promise<void> {
  const client = await LibvirtClient.connect(URI);
  const doms: RemoteDomain[] = [];
  const gateways: Array<{ kill(): boolean }> = [];
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  try {
    for (let i = 0; i < 4; i++) {
      const xml = buildXml({
        name: 'domain',
        attrs: { type: 'test' },
        children: [
          { name: 'name', text: `${DOMAIN_PREFIX}${i}` },
          { name: 'memory', attrs: { unit: 'MiB' }, text: 64 },
          { name: 'os', children: [{ name: 'type', text: 'hvm' }] },
        ],
      });
      doms.push((await client.rpc.domainDefineXmlFlags({ xml, flags: 0 })).dom);
    }
    const sides: Side[] = [];
    for (const aof of [true, false]) {
      const redis = await startRedisServer({ aof });
      const port = await freePort();
      gateways.push(
        await startGateway(port, {
          REDIS_URL: redis.url,
          VIRTGATE_REDIS_PREFIX: `vgbenchaof:${process.pid}:`,
          VIRTGATE_ADMIN_TOKEN: TOKEN,
        }),
      );
      const base = `http://127.0.0.1:${port}`;
      const created = await fetch(`${base}/v1/hosts`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ name: 'bench', uri: URI }),
      });
      if (created.status !== 201) throw new Error(`POST /v1/hosts: ${created.status}`);
      sides.push({ label: aof ? 'AOF everysec' : 'AOF off', base, accept: [], endToEnd: [] });
    }

    let turn = 0;
    const job = async (side: Side, wait: boolean): Promise<number> => {
      const i = turn++;
      const domain = `${DOMAIN_PREFIX}${i % doms.length}`;
      const t0 = performance.now();
      const res = await fetch(`${side.base}/v1/hosts/bench/domains/${domain}/actions/autostart`, {
        method: 'POST',
        headers: wait ? { ...headers, prefer: 'wait=10' } : headers,
        body: JSON.stringify({ enabled: i % 2 === 0 }),
      });
      const body = (await res.json()) as { state?: string };
      const ms = performance.now() - t0;
      if (res.status !== (wait ? 200 : 202) || (wait && body.state !== 'completed')) {
        throw new Error(`${side.label}: ${res.status} ${JSON.stringify(body)}`);
      }
      return ms;
    };
    // Warm-up, then alternating rounds.
    for (const side of sides) for (let i = 0; i < 20; i++) await job(side, true);
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        for (let i = 0; i < N / ROUNDS; i++) side.accept.push(await job(side, false));
        for (let i = 0; i < N / ROUNDS / 2; i++) side.endToEnd.push(await job(side, true));
      }
    }

    const [on, off] = sides as [Side, Side];
    const row = (what: string, a: number[], b: number[]): void => {
      const sa = summary(a);
      const sb = summary(b);
      const ratio = sa.median / sb.median;
      const verdict = ratio <= 1.2 ? 'within' : 'OVER';
      console.log(
        `  ${what.padEnd(28)} ${fmt(sa.median)} / ${fmt(sa.p99)}   ${fmt(sb.median)} / ${fmt(sb.p99)}   ${ratio.toFixed(2)}x (${((ratio - 1) * 100).toFixed(0)} %, ${verdict} the target of ≤ 20 % more)`,
      );
    };
    console.log(
      `\nqueueing overhead, AOF everysec beside AOF off (two redis-servers, same run, ${ROUNDS} alternating rounds; ms median / p99)`,
    );
    console.log(`  ${''.padEnd(28)} ${on.label.padEnd(17)} ${off.label.padEnd(17)} ratio (median)`);
    row(`accept+queue (n=${on.accept.length})`, on.accept, off.accept);
    row(`small job end to end (n=${on.endToEnd.length})`, on.endToEnd, off.endToEnd);
  } finally {
    for (const g of gateways) g.kill();
    await stopAllRedisServers();
    for (const dom of doms) await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => 0);
    await client.close();
  }
}

function fmt(ms: number): string {
  return `${ms.toFixed(2)}`.padStart(7);
}

await main();
