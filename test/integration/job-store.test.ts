/**
 * The job store against the real Redis: finished records expire after their
 * retention, running ones do not, a late update never resurrects a record,
 * and listings skip (and drop) what expired without losing or repeating any.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { JobStore, type JobRecord } from '#jobs/job-store.js';
import { redisKeys } from '#src/redis/keys.js';
import { deleteKeys, REDIS_URL, uniquePrefix } from '../e2e/helpers.js';

const prefix = uniquePrefix(import.meta.url);
const keys = redisKeys(prefix);

function record(id: string, createdMs: number, host = 'h1'): JobRecord {
  const at = new Date(createdMs).toISOString();
  return {
    id,
    type: 'domain.start',
    host,
    domain: 'vm',
    domainUuid: null,
    disk: null,
    request: {},
    resolved: {},
    state: 'queued',
    progress: null,
    result: null,
    error: null,
    requestedBy: 'test',
    requestId: 'r',
    createdAt: at,
    startedAt: null,
    finishedAt: null,
    updatedAt: at,
    attempts: 0,
    cancelRequested: false,
  };
}

describe('job store', () => {
  let redis: Redis;
  let store: JobStore;

  before(() => {
    redis = new Redis(REDIS_URL);
    store = new JobStore(redis, keys, 1);
  });

  after(async () => {
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it('lets a finished record expire after its retention, and keeps a running one', async () => {
    const done = randomUUID();
    const running = randomUUID();
    await store.create(record(done, Date.now()));
    await store.create(record(running, Date.now()));
    await store.update(running, { state: 'running' });
    const finished = await store.update(done, { state: 'completed', result: { ok: true } });
    assert.equal(finished?.state, 'completed');
    assert.deepEqual(finished?.result, { ok: true });
    assert.equal(await redis.ttl(keys.job(running)), -1, 'a running job has no expiry');
    assert.equal(await redis.ttl(keys.job(done)), 1);

    await new Promise((r) => setTimeout(r, 1300));
    assert.equal(await store.get(done), null);
    assert.equal((await store.get(running))?.state, 'running');
    const { items } = await store.list({}, 100, null);
    assert.deepEqual(
      items.map((j) => j.id),
      [running],
    );
    assert.equal(await redis.zscore(keys.jobsByCreation, done), null, 'the listing dropped its id');
  });

  it('does not write a late update to a record that is gone', async () => {
    const id = randomUUID();
    assert.equal(await store.update(id, { state: 'failed' }), null);
    assert.equal(await redis.exists(keys.job(id)), 0);
  });

  it('lists across expired records, in chunks, without losing or repeating one', async () => {
    await redis.del(keys.jobsByCreation);
    const t0 = Date.now() - 1_000_000;
    const kept: string[] = [];
    for (let i = 0; i < 450; i++) {
      const id = `${String(i).padStart(4, '0')}-${randomUUID()}`;
      await store.create(record(id, t0 + i, i % 2 === 0 ? 'h1' : 'h2'));
      // Two of every three expire (deleted here, as the expiry would).
      if (i % 3 === 0) kept.push(id);
      else await redis.del(keys.job(id));
    }
    const newestFirst = kept.reverse();
    // Pages of 7 filtered on h1: chunks of 100 ids, most of them expired.
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: { items: JobRecord[]; more: boolean } = await store.list(
        { host: 'h1' },
        7,
        after,
      );
      seen.push(...page.items.map((j) => j.id));
      if (!page.more) break;
      after = page.items.at(-1)!.id;
    }
    assert.deepEqual(
      seen,
      newestFirst.filter((id) => Number(id.slice(0, 4)) % 2 === 0),
    );
    assert.equal(await redis.zcard(keys.jobsByCreation), kept.length, 'expired ids dropped');
  });
});
