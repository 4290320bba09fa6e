/**
 * Part of npm run bench:jobs — GET /v1/jobs among many job records: the
 * records are written straight into the gateway's Redis (a week of heavy
 * automation: BENCH_JOBS, 50,000), then each listing is asked for 30 times
 * over HTTP. A filtered listing reads the filter's index, so its cost follows
 * what it returns, not how many jobs exist. Prints medians and p99s; asserts
 * nothing.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { JobStore, type JobRecord } from '#jobs/job-store.js';
import { redisKeys } from '#src/redis/keys.js';
import { freePort, startGateway, summary } from './bench-util.js';

const JOBS = Number(process.env.BENCH_JOBS ?? 50_000);
const ROUNDS = 30;
const TOKEN = `bench-list-${process.pid}-0123456789abcdef`;
const PREFIX = `vgbenchlist:${process.pid}:`;

function record(i: number, createdMs: number): JobRecord {
  const at = new Date(createdMs).toISOString();
  return {
    id: randomUUID(),
    type: i % 4 === 0 ? 'block.commit' : 'domain.start',
    host: i % 10 === 0 ? 'h2' : 'h1',
    domain: `vm${i % 500}`,
    domainUuid: null,
    disk: null,
    request: {},
    resolved: {},
    // A handful still running among thousands finished.
    state: i % 5000 === 7 ? 'running' : 'completed',
    progress: null,
    result: { state: 'running', changed: true },
    error: null,
    requestedBy: 'admin',
    requestId: 'bench',
    createdAt: at,
    startedAt: at,
    finishedAt: at,
    updatedAt: at,
    attempts: 1,
    cancelRequested: false,
    adopted: false,
  };
}

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const keys = redisKeys(PREFIX);
try {
  const store = new JobStore(redis, keys, 3600);
  const t0 = Date.now() - JOBS;
  for (let i = 0; i < JOBS; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, JOBS - i) }, (_, k) =>
        store.create(record(i + k, t0 + i + k)),
      ),
    );
  }
  const port = await freePort();
  const gateway = await startGateway(port, {
    VIRTGATE_REDIS_PREFIX: PREFIX,
    VIRTGATE_ADMIN_TOKEN: TOKEN,
    ROLE: 'api',
  });
  try {
    console.log(
      `\nGET /v1/jobs among ${JOBS.toLocaleString('en')} job records, ${ROUNDS} times each; milliseconds\n`,
    );
    console.log(
      `${'query'.padEnd(48)}${'items'.padStart(6)}${'median'.padStart(10)}${'p99'.padStart(9)}`,
    );
    for (const query of [
      'limit=100',
      'state=running',
      'domain=vm7&limit=100',
      'host=h2&limit=100',
      'host=h1&type=block.commit&domain=vm8',
      'domain=no-such-vm',
    ]) {
      const times: number[] = [];
      let items = 0;
      for (let r = 0; r < ROUNDS; r++) {
        const started = performance.now();
        const res = await fetch(`http://127.0.0.1:${port}/v1/jobs?${query}`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        const body = (await res.json()) as { items: unknown[] };
        times.push(performance.now() - started);
        items = body.items.length;
      }
      const { median, p99 } = summary(times);
      console.log(
        `${query.padEnd(48)}${String(items).padStart(6)}${median.toFixed(2).padStart(10)}${p99.toFixed(2).padStart(9)}`,
      );
    }
  } finally {
    gateway.kill();
  }
} finally {
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    if (found.length > 0) await redis.del(...found);
  } while (cursor !== '0');
  redis.disconnect();
}
