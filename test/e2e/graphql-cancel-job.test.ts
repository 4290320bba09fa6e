/**
 * GraphQL's cancelJob does what DELETE /v1/jobs/{id} does (issue 14's planted
 * bug 3: it was only listed by name in a schema test). The gateway runs the api
 * role alone, so a job stays queued until it is canceled; cancelJob ends it as
 * `canceled`, REST agrees, BullMQ no longer holds it, and a second cancel is a
 * 409-coded INVALID_STATE.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { testDriverDomainXml } from '../support/domain-xml.js';
import { codes, graphql } from './graphql-helpers.js';
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
const ADMIN = 'graphql-cancel-test-admin-token-01';

describe('GraphQL cancelJob', () => {
  let t: TestApp;
  let client: LibvirtClient;
  let dom: RemoteDomain;
  const name = `vg-gqlcancel-${randomUUID().slice(0, 6)}`;
  const rest = (url: string) => as(t, ADMIN).get(url);

  before(async () => {
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    dom = (await client.rpc.domainDefineXmlFlags({ xml: testDriverDomainXml(name, 64), flags: 0 }))
      .dom;
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }));
    await registerTestDriverHost(t, ADMIN);
  });

  after(async () => {
    await closeAllApps();
    await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    await client.close();
    await deleteKeys(prefix);
  });

  it('cancels a queued job: canceled for REST too, gone from its queue, never to run', async () => {
    const queued = await as(t, ADMIN).post(`/v1/hosts/test/domains/${name}/actions/start`);
    assert.equal(queued.status, 202, JSON.stringify(queued.body));
    const id = queued.body.id as string;
    assert.equal(queued.body.state, 'queued');

    // BullMQ holds it (no worker runs here): the cancel must take it out.
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue('domain-ops', { connection, prefix: `${prefix}bull` });
    try {
      const held = async () =>
        (await queue.getJobs(['waiting', 'prioritized', 'delayed'])).map((j) => j.id);
      assert.ok((await held()).includes(id), `BullMQ holds ${id} before the cancel`);

      const res = await graphql(
        t,
        ADMIN,
        'mutation($id: ID!) { cancelJob(id: $id) { id state finishedAt } }',
        { id },
      );
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(res.body.data.cancelJob.id, id);
      assert.equal(res.body.data.cancelJob.state, 'canceled');
      assert.ok(res.body.data.cancelJob.finishedAt);

      const seen = await rest(`/v1/jobs/${id}`);
      assert.equal(seen.body.state, 'canceled');
      assert.ok(!(await held()).includes(id), 'nothing left in BullMQ to run it');
    } finally {
      await queue.close();
      connection.disconnect();
    }
    assert.equal((await client.rpc.domainGetState({ dom, flags: 0 })).state, 5, 'still shut off');

    const again = await graphql(t, ADMIN, 'mutation($id: ID!) { cancelJob(id: $id) { id } }', {
      id,
    });
    assert.deepEqual(codes(again.body), ['INVALID_STATE']);
    assert.match(again.body.errors![0]!.message, /already canceled/);
  });
});
