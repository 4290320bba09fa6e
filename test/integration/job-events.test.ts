/**
 * The events the job store appends (built in Lua from the job's hash, in
 * the same step as the change) against the declared event schema, read
 * back from the real stream in Redis: a block job through its states with
 * progress and a result, a failed job with its error, and a storage job of
 * no domain. What openapi/asyncapi.yaml promises is what the stream holds.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { JobStore, type JobRecord } from '#jobs/job-store.js';
import { ErrorCode } from '#src/common/errors/app-error.js';
import { EventStream } from '#src/events/event-stream.js';
import { redisKeys } from '#src/redis/keys.js';
import { deleteKeys, REDIS_URL, uniquePrefix } from '../e2e/helpers.js';
import { eventSchemaErrors } from '../support/json-schema.js';

const prefix = uniquePrefix(import.meta.url);
const keys = redisKeys(prefix);

function record(fields: Partial<JobRecord>): JobRecord {
  const at = new Date().toISOString();
  return {
    id: randomUUID(),
    type: 'block.commit',
    host: 'h1',
    domain: 'vm1',
    domainUuid: randomUUID(),
    disk: 'vda',
    request: {},
    resolved: {},
    state: 'queued',
    progress: null,
    result: null,
    error: null,
    requestedBy: 'tester',
    requestId: 'r1',
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

describe('job events against the event schema', () => {
  let redis: Redis;
  let store: JobStore;
  let stream: EventStream;

  before(async () => {
    redis = new Redis(REDIS_URL);
    // No progress gate: every progress update is an event, so the test knows how many.
    store = new JobStore(redis, keys, 3600, { maxLength: 10_000, progressIntervalMs: 0 });
    stream = new EventStream(redis, keys, { maxLength: 10_000, maxAgeMs: 3_600_000 });
    await deleteKeys(prefix);
  });

  after(async () => {
    await deleteKeys(prefix);
    redis.disconnect();
  });

  it('appends events that conform, in order, with the states and parts they announce', async () => {
    const commit = record({});
    await store.create(commit);
    await store.update(commit.id, { state: 'running', startedAt: new Date().toISOString() });
    await store.update(commit.id, { progress: { cur: 1, end: 4, percent: 25 } });
    await store.update(commit.id, { progress: { cur: 4, end: 4, percent: 100 } });
    await store.update(commit.id, { state: 'ready' });
    await store.update(commit.id, { state: 'pivoting' });
    await store.update(commit.id, {
      state: 'completed',
      result: { chain: ['base.qcow2'], pivoted: true },
      finishedAt: new Date().toISOString(),
    });

    const failed = record({ type: 'domain.start', disk: null });
    await store.create(failed);
    await store.update(failed.id, { state: 'running' });
    await store.update(failed.id, {
      state: 'failed',
      error: { code: ErrorCode.INVALID_STATE, message: 'the domain is running', libvirtCode: null },
      finishedAt: new Date().toISOString(),
    });

    const storage = record({
      type: 'volume.create',
      domain: null,
      domainUuid: null,
      disk: null,
      resolved: { pool: 'default', name: 'v1.qcow2' },
    });
    await store.create(storage);
    await store.update(storage.id, { state: 'running' });

    const events = await stream.range(null, 1000);
    for (const e of events) {
      assert.deepEqual(eventSchemaErrors(e), [], `${e.type} ${e.job?.state}: ${JSON.stringify(e)}`);
    }
    const summary = events.map(
      (e) =>
        `${e.job?.id === commit.id ? 'commit' : e.job?.id === failed.id ? 'failed' : 'storage'} ${e.type} ${e.job?.previousState}→${e.job?.state}`,
    );
    assert.deepEqual(summary, [
      'commit job.state-changed null→queued',
      'commit job.state-changed queued→running',
      'commit job.progress null→running',
      'commit job.progress null→running',
      'commit job.state-changed running→ready',
      'commit job.state-changed ready→pivoting',
      'commit job.state-changed pivoting→completed',
      'failed job.state-changed null→queued',
      'failed job.state-changed queued→running',
      'failed job.state-changed running→failed',
      'storage job.state-changed null→queued',
      'storage job.state-changed queued→running',
    ]);
    const last = (id: string) => events.filter((e) => e.job?.id === id).at(-1)!;
    assert.deepEqual(last(commit.id).job?.result, { chain: ['base.qcow2'], pivoted: true });
    assert.deepEqual(last(commit.id).domain, { uuid: commit.domainUuid, name: 'vm1' });
    assert.deepEqual(last(commit.id).job?.progress, { cur: 4, end: 4, percent: 100 });
    assert.equal(last(failed.id).job?.error?.code, 'INVALID_STATE');
    assert.equal(last(storage.id).domain, null);
    assert.equal(last(storage.id).job?.pool, 'default');
  });
});
