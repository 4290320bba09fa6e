/**
 * Finished jobs leave after JOB_RETENTION_HOURS, removed by the gateway's own
 * prune timer (issue 14's planted bugs 4 and 5: the hours-to-seconds
 * conversion and the timer were untested). Two real jobs run to completion;
 * then their finish times are moved back (the gateway indexes finished jobs
 * by that time, so this is what an hour passing looks like to it): one to 61
 * minutes ago, one to 59, with JOB_RETENTION_HOURS=1. The timer, every 200 ms
 * here, removes the first and keeps the second. Idempotency keys live as long
 * as the job, at most 24 h.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { waitFor } from '../support/wait.js';
import {
  as,
  closeAllApps,
  deleteKeys,
  REDIS_URL,
  registerTestDriverHost,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'job-retention-test-admin-token-012';
const MINUTE = 60_000;

describe('job retention', () => {
  let t: TestApp;
  let client: LibvirtClient;
  let redis: Redis;
  let dom: RemoteDomain;
  const name = `vg-retain-${randomUUID().slice(0, 6)}`;
  const get = (url: string) => as(t, ADMIN).get(url);
  const autostart = (enabled: boolean, key: string) =>
    as(t, ADMIN).post(
      `/v1/hosts/test/domains/${name}/actions/autostart`,
      { enabled },
      { prefer: 'wait=10', 'idempotency-key': key },
    );

  before(async () => {
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    dom = (await client.rpc.domainDefineXmlFlags({ xml: testDriverDomainXml(name, 64), flags: 0 }))
      .dom;
    redis = new Redis(REDIS_URL);
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        JOB_RETENTION_HOURS: '1',
        JOB_PRUNE_INTERVAL_MS: '200',
      }),
    );
    await registerTestDriverHost(t, ADMIN);
  });

  after(async () => {
    await closeAllApps();
    await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    await client.close();
    redis.disconnect();
    await deleteKeys(prefix);
  });

  it('removes a job finished over an hour ago, on its own, and keeps one finished 59 minutes ago', async () => {
    const old = await autostart(true, `retain-old-${name}`);
    const young = await autostart(false, `retain-young-${name}`);
    for (const res of [old, young]) {
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.state, 'completed');
    }
    // An idempotency key lasts as long as its job may (here JOB_RETENTION_HOURS=1).
    const [keyName] = await redis.keys(`${prefix}idempotency:*:retain-old-${name}`);
    assert.ok(keyName, 'the idempotency record');
    const keyTtl = await redis.ttl(keyName);
    assert.ok(keyTtl > 3500 && keyTtl <= 3600, `idempotency key TTL ${keyTtl} s`);

    const finished = `${prefix}jobs:finished`;
    assert.notEqual(await redis.zscore(finished, old.body.id), null, 'the finished index holds it');
    await redis.zadd(finished, Date.now() - 59 * MINUTE, young.body.id);
    await redis.zadd(finished, Date.now() - 61 * MINUTE, old.body.id);

    await waitFor(
      async () => (await get(`/v1/jobs/${old.body.id}`)).status === 404,
      'the prune timer to remove the job finished 61 minutes ago',
      10_000,
    );
    // The pass that removed the old one looked at the young one too: still there.
    const kept = await get(`/v1/jobs/${young.body.id}`);
    assert.equal(kept.status, 200);
    assert.equal(kept.body.state, 'completed');
    const listed = (await get(`/v1/jobs?domain=${name}`)).body.items.map(
      (j: { id: string }) => j.id,
    );
    assert.ok(listed.includes(young.body.id) && !listed.includes(old.body.id), listed.join(','));
  });
});
