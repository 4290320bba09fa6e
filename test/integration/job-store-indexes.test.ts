/**
 * The job store's indexes, case by case, on a real Redis (small data, so
 * each case is quick: job-store.test.ts is the large randomised one): which
 * indexes a record enters and leaves, with which score; which index a
 * listing reads (seen by the stale entries it cleans up in it); how pages
 * end and resume inside a millisecond; what prune removes at exactly its
 * cutoff.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { JobStore, type JobFilter, type JobRecord } from '#jobs/job-store.js';
import { redisKeys } from '#src/redis/keys.js';
import { deleteKeys, REDIS_URL, scanKeys, uniquePrefix } from '../e2e/helpers.js';

const prefix = uniquePrefix(import.meta.url);
const keys = redisKeys(prefix);
const RETENTION_S = 60;
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

function record(createdMs: number, fields: Partial<JobRecord> = {}): JobRecord {
  const at = new Date(createdMs).toISOString();
  return {
    id: randomUUID(),
    type: 'domain.start',
    host: 'h1',
    domain: 'vm',
    domainUuid: 'uuid-vm',
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

describe('job store indexes', () => {
  let redis: Redis;
  let store: JobStore;

  /** Every sorted set of the store that holds `id`, with its score there. */
  async function indexesHolding(id: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const key of await scanKeys(redis, prefix)) {
      if ((await redis.type(key)) !== 'zset') continue;
      const score = await redis.zscore(key, id);
      if (score !== null) out[key.slice(prefix.length)] = Number(score);
    }
    return out;
  }

  async function ids(filter: JobFilter, limit = 100): Promise<string[]> {
    return (await store.list(filter, limit, null)).items.map((r) => r.id);
  }

  before(() => {
    redis = new Redis(REDIS_URL);
    store = new JobStore(redis, keys, RETENTION_S);
  });

  beforeEach(async () => {
    await deleteKeys(prefix);
  });

  after(async () => {
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it('puts a new job in the creation index and in one index per filter value, scored by creation', async () => {
    const both = record(T0 + 1, { host: 'h2', type: 'block.commit', state: 'running' });
    await store.create(both);
    assert.deepEqual(await indexesHolding(both.id), {
      jobs: T0 + 1,
      'jobs:by-state:running': T0 + 1,
      'jobs:by-host:h2': T0 + 1,
      'jobs:by-type:block.commit': T0 + 1,
      'jobs:by-domain:vm': T0 + 1,
      'jobs:by-domain:uuid-vm': T0 + 1,
    });
    // a domain known by name only, by uuid only, by a name equal to its uuid, or none
    const nameOnly = record(T0 + 2, { domainUuid: null });
    const uuidOnly = record(T0 + 3, { domain: null, domainUuid: 'uuid-x' });
    const same = record(T0 + 4, { domain: 'uuid-y', domainUuid: 'uuid-y' });
    const hostJob = record(T0 + 5, { domain: null, domainUuid: null });
    for (const r of [nameOnly, uuidOnly, same, hostJob]) await store.create(r);
    const domainIndexes = async (id: string) =>
      Object.keys(await indexesHolding(id)).filter((k) => k.startsWith('jobs:by-domain:'));
    assert.deepEqual(await domainIndexes(nameOnly.id), ['jobs:by-domain:vm']);
    assert.deepEqual(await domainIndexes(uuidOnly.id), ['jobs:by-domain:uuid-x']);
    assert.deepEqual(await domainIndexes(same.id), ['jobs:by-domain:uuid-y']);
    assert.deepEqual(await domainIndexes(hostJob.id), []);
    assert.deepEqual(await redis.zrange(keys.jobsByCreation, 0, -1), [
      both.id,
      nameOnly.id,
      uuidOnly.id,
      same.id,
      hostJob.id,
    ]);
  });

  it('moves a job between state indexes with its creation score, and notes when it finished', async () => {
    const r = record(T0 + 10);
    await store.create(r);
    const running = await store.update(r.id, { state: 'running', attempts: 1 });
    assert.equal(running?.state, 'running');
    assert.equal(running?.attempts, 1);
    assert.equal(running?.host, 'h1', 'the whole record comes back');
    assert.notEqual(running?.updatedAt, r.updatedAt);
    let held = await indexesHolding(r.id);
    assert.equal(held['jobs:by-state:running'], T0 + 10);
    assert.equal(held['jobs:by-state:queued'], undefined);
    assert.equal(held['jobs:finished'], undefined);
    // a change of something else leaves the indexes as they are
    await store.update(r.id, { progress: { cur: 1, end: 2, percent: 50 } });
    assert.deepEqual(await indexesHolding(r.id), held);
    const finishedAt = new Date(T0 + 5000).toISOString();
    const done = await store.update(r.id, { state: 'failed', finishedAt });
    assert.equal(done?.finishedAt, finishedAt);
    held = await indexesHolding(r.id);
    assert.equal(held['jobs:by-state:failed'], T0 + 10);
    assert.equal(held['jobs:by-state:running'], undefined);
    assert.equal(held['jobs:finished'], T0 + 5000);
    assert.deepEqual(await ids({ state: 'failed' }), [r.id]);
    assert.deepEqual(await ids({ state: 'running' }), []);
    // final without a finishedAt: it finished when the update was made
    const s = record(T0 + 11);
    await store.create(s);
    const canceled = await store.update(s.id, { state: 'canceled' });
    assert.ok(canceled);
    assert.equal((await indexesHolding(s.id))['jobs:finished'], Date.parse(canceled.updatedAt));
  });

  it('lists newest first by every filter, the domain by name or uuid', async () => {
    const a = record(T0 + 1, {
      host: 'h1',
      type: 'domain.start',
      domain: 'web',
      domainUuid: 'u-web',
    });
    const b = record(T0 + 2, { host: 'h2', type: 'block.copy', domain: 'db', domainUuid: 'u-db' });
    const c = record(T0 + 3, {
      host: 'h1',
      type: 'block.copy',
      domain: 'web',
      domainUuid: 'u-web',
    });
    for (const r of [a, b, c]) await store.create(r);
    await store.update(b.id, { state: 'running' });
    assert.deepEqual(await ids({}), [c.id, b.id, a.id]);
    assert.deepEqual(await ids({ host: 'h1' }), [c.id, a.id]);
    assert.deepEqual(await ids({ type: 'block.copy' }), [c.id, b.id]);
    assert.deepEqual(await ids({ state: 'queued' }), [c.id, a.id]);
    assert.deepEqual(await ids({ domain: 'web' }), [c.id, a.id]);
    assert.deepEqual(await ids({ domain: 'u-db' }), [b.id]);
    assert.deepEqual(await ids({ host: 'h1', type: 'block.copy' }), [c.id]);
    assert.deepEqual(await ids({ host: 'h2', state: 'queued' }), []);
    assert.deepEqual(await ids({ domain: 'web', state: 'running' }), []);
    assert.deepEqual(await ids({ type: 'volume.create' }), []);
  });

  it('shows only what matches the filter, whatever an index holds', async () => {
    const r = record(T0 + 1);
    await store.create(r);
    // entries that do not say the truth of the record (an index a crash left half written)
    await redis.zadd(keys.jobsBy('state', 'failed'), T0 + 1, r.id);
    await redis.zadd(keys.jobsBy('host', 'h9'), T0 + 1, r.id);
    await redis.zadd(keys.jobsBy('type', 'block.pull'), T0 + 1, r.id);
    await redis.zadd(keys.jobsBy('domain', 'other'), T0 + 1, r.id);
    for (const filter of [
      { state: 'failed' },
      { host: 'h9' },
      { type: 'block.pull' },
      { domain: 'other' },
    ] as JobFilter[]) {
      assert.deepEqual(await ids(filter), [], JSON.stringify(filter));
    }
    assert.deepEqual(await ids({ state: 'queued' }), [r.id]);
  });

  it('reads the smallest index the filters allow, and drops its entries for jobs that are gone', async () => {
    const jobs = [0, 1, 2, 3].map((i) => record(T0 + i, { state: i === 0 ? 'running' : 'queued' }));
    for (const r of jobs) await store.create(r);
    await store.update(jobs[0]!.id, { state: 'running' });
    // a job gone from its hash but not from the indexes: by-state:running (2) is smaller than by-host:h1 (5)
    const gone = randomUUID();
    for (const key of [
      keys.jobsBy('state', 'running'),
      keys.jobsBy('host', 'h1'),
      keys.jobsByCreation,
    ]) {
      await redis.zadd(key, T0 + 9, gone);
    }
    assert.deepEqual(await ids({ host: 'h1', state: 'running' }), [jobs[0]!.id]);
    assert.equal(
      await redis.zscore(keys.jobsBy('state', 'running'), gone),
      null,
      'cleaned where read',
    );
    assert.notEqual(
      await redis.zscore(keys.jobsBy('host', 'h1'), gone),
      null,
      'not read: left as is',
    );
    assert.notEqual(await redis.zscore(keys.jobsByCreation, gone), null);
    // the order of the filters does not matter: by-state is still the smaller
    await redis.zadd(keys.jobsBy('state', 'running'), T0 + 9, gone);
    assert.deepEqual(await ids({ state: 'running', host: 'h1' }), [jobs[0]!.id]);
    assert.equal(await redis.zscore(keys.jobsBy('state', 'running'), gone), null);
    // one filter: its own index
    assert.deepEqual(
      await ids({ host: 'h1' }),
      [...jobs].reverse().map((r) => r.id),
    );
    assert.equal(await redis.zscore(keys.jobsBy('host', 'h1'), gone), null);
    // no filter: the creation index, cleaned even when the page ends with more to come
    assert.deepEqual(
      (await store.list({}, 1, null)).items.map((r) => r.id),
      [jobs[3]!.id],
      'the gone job is newest, and skipped',
    );
    assert.equal(await redis.zscore(keys.jobsByCreation, gone), null);
  });

  it('ends a page at its limit, says whether more follow, and resumes inside a millisecond', async () => {
    // five jobs in one millisecond, two in the one before
    const tie = [0, 1, 2, 3, 4].map(() => record(T0 + 5));
    const earlier = [0, 1].map(() => record(T0 + 4));
    for (const r of [...earlier, ...tie]) await store.create(r);
    const byId = (rs: JobRecord[]) =>
      rs
        .map((r) => r.id)
        .sort()
        .reverse();
    const order = [...byId(tie), ...byId(earlier)];
    const first = await store.list({}, 2, null);
    assert.deepEqual(
      first.items.map((r) => r.id),
      order.slice(0, 2),
    );
    assert.equal(first.more, true);
    const pos = (r: JobRecord) => ({ createdAtMs: Date.parse(r.createdAt), id: r.id });
    const second = await store.list({}, 2, pos(first.items[1]!));
    assert.deepEqual(
      second.items.map((r) => r.id),
      order.slice(2, 4),
    );
    assert.equal(second.more, true);
    const third = await store.list({}, 3, pos(second.items[1]!));
    assert.deepEqual(
      third.items.map((r) => r.id),
      order.slice(4, 7),
    );
    assert.equal(third.more, false, 'exactly the limit left: no more');
    const none = await store.list({}, 3, pos(third.items[2]!));
    assert.deepEqual(none, { items: [], more: false });
    // resuming after the last of the tie goes on with the millisecond before
    const afterTie = await store.list({}, 10, pos(tie.find((r) => r.id === order[4])!));
    assert.deepEqual(
      afterTie.items.map((r) => r.id),
      order.slice(5),
    );
    // resuming inside the tie from a position whose job is gone
    const cut = { createdAtMs: T0 + 5, id: order[1]!.slice(0, 8) };
    const resumed = await store.list({}, 10, cut);
    assert.ok(resumed.items.every((r) => r.id < cut.id || Date.parse(r.createdAt) < T0 + 5));
    assert.deepEqual(
      resumed.items.map((r) => r.id),
      order.filter((id, i) => i >= 5 || id < cut.id),
    );
    // a limit the ties alone fill
    const tied = await store.list({}, 1, pos(first.items[0]!));
    assert.deepEqual(
      tied.items.map((r) => r.id),
      [order[1]],
    );
    assert.equal(tied.more, true);
  });

  it('prunes a finished job at its cutoff, not a millisecond before, with every index entry', async () => {
    const r = record(T0, { domainUuid: 'u-1', type: 'block.pull' });
    await store.create(r);
    await store.update(r.id, { state: 'completed', finishedAt: new Date(T0 + 1000).toISOString() });
    const cutoff = T0 + 1000 + RETENTION_S * 1000;
    assert.equal(await store.prune(cutoff - 1), 0);
    assert.ok(await store.get(r.id));
    assert.equal(await store.prune(cutoff), 1);
    assert.equal(await store.get(r.id), null);
    assert.deepEqual(await indexesHolding(r.id), {});
    assert.equal(await redis.exists(keys.jobsPruneLock), 0);
  });

  it('forgets finished-index entries of jobs that are running again or gone, counting only those it removes', async () => {
    const live = record(T0);
    await store.create(live);
    // noted as finished, yet running (it never should be): kept, its note dropped
    await redis.zadd(keys.jobsFinished, T0, live.id);
    // a note whose record is gone: the note and its creation entry go
    const gone = randomUUID();
    await redis.zadd(keys.jobsFinished, T0, gone);
    await redis.zadd(keys.jobsByCreation, T0, gone);
    const done = record(T0);
    await store.create(done);
    await store.update(done.id, { state: 'failed', finishedAt: new Date(T0).toISOString() });
    assert.equal(await store.prune(T0 + RETENTION_S * 1000), 2);
    assert.ok(await store.get(live.id));
    assert.deepEqual(Object.keys(await indexesHolding(live.id)).sort(), [
      'jobs',
      'jobs:by-domain:uuid-vm',
      'jobs:by-domain:vm',
      'jobs:by-host:h1',
      'jobs:by-state:queued',
      'jobs:by-type:domain.start',
    ]);
    assert.deepEqual(await indexesHolding(gone), {});
    assert.deepEqual(await indexesHolding(done.id), {});
    assert.equal(await store.prune(T0 + RETENTION_S * 1000), 0, 'nothing left to prune');
  });

  it("lets go of its own prune lock only, never another process's", async () => {
    assert.equal(await store.prune(T0), 0);
    assert.equal(await redis.exists(keys.jobsPruneLock), 0);
    await redis.set(keys.jobsPruneLock, 'another process', 'PX', 60_000);
    assert.equal(await store.prune(T0), 0);
    assert.equal(await redis.get(keys.jobsPruneLock), 'another process');
  });

  it('restores a lost record of a job still running, and nothing else', async () => {
    const lost = record(T0 + 7, { state: 'running' });
    assert.equal(await store.restore(lost), true);
    assert.equal((await store.get(lost.id))?.state, 'running');
    assert.equal((await indexesHolding(lost.id))['jobs:by-state:running'], T0 + 7);
    assert.equal(await store.restore({ ...lost, state: 'queued' }), false, 'it exists');
    assert.equal((await store.get(lost.id))?.state, 'running');
    const final = record(T0 + 8, { state: 'completed' });
    assert.equal(await store.restore(final), false);
    assert.equal(await store.get(final.id), null);
  });
});
