/**
 * The job store against the real Redis: filtered listings read the filter's
 * index and give exactly what a full scan would, page after page, jobs
 * created meanwhile or created in the same millisecond included; a state
 * change moves a job between indexes; finished records are pruned with every
 * index entry once their retention ran out, running ones never; a late update
 * never resurrects a record.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { JobStore, type JobFilter, type JobPosition, type JobRecord } from '#jobs/job-store.js';
import type { JobState, JobType } from '#jobs/job-types.js';
import { redisKeys } from '#src/redis/keys.js';
import { deleteKeys, REDIS_URL, scanKeys, uniquePrefix } from '../e2e/helpers.js';

const prefix = uniquePrefix(import.meta.url);
const keys = redisKeys(prefix);

function record(
  createdMs: number,
  fields: Partial<Pick<JobRecord, 'host' | 'state' | 'type' | 'domain' | 'domainUuid'>> = {},
): JobRecord {
  const at = new Date(createdMs).toISOString();
  return {
    id: randomUUID(),
    type: 'domain.start',
    host: 'h1',
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
    adopted: false,
    ...fields,
  };
}

/** Newest first, as listings order them (same millisecond: the greater id first). */
function newestFirst(a: JobRecord, b: JobRecord): number {
  const t = Date.parse(b.createdAt) - Date.parse(a.createdAt);
  return t !== 0 ? t : a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

describe('job store', () => {
  let redis: Redis;
  let store: JobStore;

  /** Every page of a listing, `limit` at a time, joined. */
  async function listAll(filter: JobFilter, limit: number): Promise<string[]> {
    const seen: string[] = [];
    let position: JobPosition | null = null;
    for (;;) {
      const page: { items: JobRecord[]; more: boolean } = await store.list(filter, limit, position);
      seen.push(...page.items.map((j) => j.id));
      if (!page.more) return seen;
      const last = page.items.at(-1)!;
      position = { createdAtMs: Date.parse(last.createdAt), id: last.id };
    }
  }

  before(() => {
    redis = new Redis(REDIS_URL);
    store = new JobStore(redis, keys, 1);
  });

  beforeEach(async () => {
    await deleteKeys(prefix);
  });

  after(async () => {
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it('lists by every filter exactly what a full scan finds, page after page', async () => {
    const hosts = ['h1', 'h2', 'h3'];
    const states: JobState[] = ['queued', 'running', 'completed', 'failed'];
    const types: JobType[] = ['domain.start', 'block.commit', 'volume.create'];
    const all: JobRecord[] = [];
    const t0 = Date.now() - 1_000_000;
    for (let i = 0; i < 600; i++) {
      // Three jobs per millisecond: pages must split and resume inside a millisecond.
      const r = record(t0 + Math.floor(i / 3), {
        host: hosts[i % 3]!,
        state: states[(i >> 1) % 4]!,
        type: types[(i >> 2) % 3]!,
        domain: i % 50 === 0 ? null : `vm${i % 7}`,
        domainUuid: i % 50 === 0 ? null : `uuid-${i % 7}`,
      });
      all.push(r);
      await store.create(r);
    }
    // Some change state after they were created: they move between the state indexes.
    for (const r of all.filter((_, i) => i % 5 === 0)) {
      await store.update(r.id, { state: 'running' });
      r.state = 'running';
    }
    const filters: JobFilter[] = [
      {},
      { state: 'running' },
      { state: 'failed', host: 'h2' },
      { host: 'h3' },
      { type: 'block.commit', domain: 'vm3' },
      { domain: 'uuid-4' },
      { domain: 'vm0', state: 'queued', type: 'volume.create', host: 'h1' },
      { domain: 'nothing' },
    ];
    for (const filter of filters) {
      const expected = all
        .filter(
          (r) =>
            (filter.host === undefined || r.host === filter.host) &&
            (filter.state === undefined || r.state === filter.state) &&
            (filter.type === undefined || r.type === filter.type) &&
            (filter.domain === undefined ||
              r.domain === filter.domain ||
              r.domainUuid === filter.domain),
        )
        .sort(newestFirst)
        .map((r) => r.id);
      for (const limit of [7, 500]) {
        assert.deepEqual(await listAll(filter, limit), expected, JSON.stringify({ filter, limit }));
      }
    }
    assert.equal(
      await redis.zcard(keys.jobsBy('state', 'running')),
      all.filter((r) => r.state === 'running').length,
      'the state index holds what is running now, no more',
    );
  });

  it('goes on from where the page before ended, whatever was created meanwhile', async () => {
    const t0 = Date.now() - 1_000_000;
    const old: JobRecord[] = [];
    for (let i = 0; i < 30; i++) {
      const r = record(t0 + i, { state: 'running' });
      old.push(r);
      await store.create(r);
    }
    const first = await store.list({ state: 'running' }, 10, null);
    for (let i = 0; i < 20; i++) await store.create(record(t0 + 100 + i, { state: 'running' }));
    const last = first.items.at(-1)!;
    const rest = await store.list({ state: 'running' }, 100, {
      createdAtMs: Date.parse(last.createdAt),
      id: last.id,
    });
    assert.deepEqual(
      [...first.items, ...rest.items].map((r) => r.id),
      old.sort(newestFirst).map((r) => r.id),
    );
  });

  it('prunes finished jobs past their retention with their index entries, never running ones', async () => {
    const running = record(Date.now(), { domainUuid: 'u-1' });
    const done = record(Date.now(), { domainUuid: 'u-1' });
    await store.create(running);
    await store.create(done);
    await store.update(running.id, { state: 'running' });
    const finished = await store.update(done.id, {
      state: 'completed',
      result: { ok: true },
      finishedAt: new Date().toISOString(),
    });
    assert.equal(finished?.state, 'completed');
    assert.deepEqual(finished?.result, { ok: true });
    assert.equal(await store.prune(), 0, 'not yet: its retention (1 s) runs');

    assert.equal(await store.prune(Date.now() + 1500), 1);
    assert.equal(await store.get(done.id), null);
    assert.equal((await store.get(running.id))?.state, 'running');
    for (const key of await scanKeys(redis, prefix)) {
      if ((await redis.type(key)) !== 'zset') continue;
      assert.equal(await redis.zscore(key, done.id), null, `${key} still holds the pruned job`);
    }
    assert.deepEqual(
      (await store.list({}, 100, null)).items.map((j) => j.id),
      [running.id],
    );
    assert.equal(await redis.exists(keys.jobsPruneLock), 0, 'the prune lock is let go');
  });

  it('prunes in one process at a time', async () => {
    const r = record(Date.now());
    await store.create(r);
    await store.update(r.id, { state: 'canceled', finishedAt: new Date().toISOString() });
    await redis.set(keys.jobsPruneLock, 'another process', 'PX', 5000);
    assert.equal(await store.prune(Date.now() + 5000), 0, 'another process holds the lock');
    assert.ok(await store.get(r.id));
    await redis.del(keys.jobsPruneLock);
    assert.equal(await store.prune(Date.now() + 5000), 1);
  });

  it('does not write a late update to a record that is gone', async () => {
    const id = randomUUID();
    assert.equal(await store.update(id, { state: 'failed' }), null);
    assert.equal(await redis.exists(keys.job(id)), 0);
    assert.equal(await redis.zcard(keys.jobsFinished), 0);
  });
});
