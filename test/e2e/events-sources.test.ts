/**
 * Where the stream's events come from, tried as they fail: a block commit
 * through the gateway comes out as job events and libvirt block-job events
 * named with the job's id; a host whose connection is cut says so, and when
 * it is back announces what changed meanwhile (reconciled) before
 * host.reconnected; a worker holding a host that is SIGKILLed is replaced by
 * another within the lease, and events go on.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import request from 'supertest';
import { redisKeys } from '#src/redis/keys.js';
import type { GatewayEvent } from '#src/events/event.js';
import { LibvirtClient } from '#src/libvirt/index.js';
import { tcgDomainXml } from '../support/domain-xml.js';
import { Forwarder } from '../support/forwarder.js';
import { eventSchemaErrors } from '../support/json-schema.js';
import { createChain, makeImageDir } from '../support/qemu-images.js';
import { SseClient } from '../support/sse-client.js';
import { TcgChainDomain } from '../support/tcg-chain.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  REDIS_URL,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const run = promisify(execFile);
const virsh = (...args: string[]) => run('virsh', ['-c', 'qemu:///system', ...args]);
const ADMIN = 'events-sources-test-admin-token';
const auth = { authorization: `Bearer ${ADMIN}` };
const id = randomUUID().slice(0, 6);

async function listen(t: TestApp): Promise<string> {
  await t.app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(t.server.address() as AddressInfo).port}`;
}

describe('events of a block commit through the gateway', () => {
  const prefix = uniquePrefix(import.meta.url) + 'commit:';
  let t: TestApp;
  let base: string;
  let client: LibvirtClient;
  let d: TcgChainDomain | null = null;

  before(async () => {
    client = await LibvirtClient.connect('qemu:///system');
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    base = await listen(t);
  });

  after(async () => {
    await d?.remove();
    await client.close();
    await closeAllApps();
    await deleteKeys(prefix);
  });

  it('yields the job state changes and the block-job events, both naming the job', async () => {
    d = await TcgChainDomain.create(client, `vg-evc-${id}`);
    const sse = await SseClient.open(`${base}/v1/events?domain=${d.name}`, auth);
    await waitFor(() => sse.comments.includes('connected'), 'the stream to open');
    const res = await request(t.server)
      .post(`/v1/hosts/local/domains/${d.name}/disks/vda/block-jobs`)
      .set(auth)
      .set('prefer', 'wait=60')
      .send({ type: 'commit', pivot: true });
    assert.ok([200, 202].includes(res.status), JSON.stringify(res.body));
    const jobId = res.body.id as string;
    await sse.waitForEvents<GatewayEvent>(
      (e) => e.type === 'job.state-changed' && e.job?.state === 'completed',
      1,
      'the job to complete',
    );
    await sse.waitForEvents<GatewayEvent>(
      (e) => e.type === 'block-job.completed',
      1,
      "libvirt's completion",
    );
    const events = sse.parsed<GatewayEvent>();
    for (const e of events) assert.deepEqual(eventSchemaErrors(e), [], e.type);
    const states = events
      .filter((e) => e.type === 'job.state-changed' && e.job?.id === jobId)
      .map((e) => `${e.job!.previousState}→${e.job!.state}`);
    assert.deepEqual(states, [
      'null→queued',
      'queued→running',
      'running→ready',
      'ready→pivoting',
      'pivoting→completed',
    ]);
    const completed = events.find((e) => e.job?.state === 'completed')!;
    assert.ok(completed.job!.result, 'the final event carries the result');
    const blockJobs = events.filter((e) => e.type.startsWith('block-job.'));
    assert.deepEqual(
      blockJobs.map((e) => [e.type, e.blockJob!.disk, e.blockJob!.type, e.blockJob!.jobId]),
      [
        ['block-job.ready', 'vda', 'active-commit', jobId],
        ['block-job.completed', 'vda', 'active-commit', jobId],
      ],
    );
    // The job filter selects both kinds, by the job's id.
    const page = await request(t.server).get(`/v1/events?job=${jobId}`).set(auth);
    assert.deepEqual(
      (page.body.items as GatewayEvent[]).map((e) => e.type),
      events.filter((e) => e.job?.id === jobId || e.blockJob?.jobId === jobId).map((e) => e.type),
    );
    sse.close();
  });
});

describe('events of a host whose connection is lost and comes back', () => {
  const prefix = uniquePrefix(import.meta.url) + 'reconnect:';
  let t: TestApp;
  let base: string;
  const forwarder = new Forwarder();
  let removeDir: () => Promise<void> = async () => {};
  const name = `vg-evr-${id}`;

  before(async () => {
    const images = await makeImageDir(name);
    removeDir = images.remove;
    const [disk] = await createChain(images.dir, ['disk']);
    const client = await LibvirtClient.connect('qemu:///system');
    await client.rpc.domainDefineXmlFlags({ xml: tcgDomainXml(name, disk!), flags: 0 });
    await client.close();
    await forwarder.open();
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        EVENTS_LEASE_MS: '1500',
        LIBVIRT_CONNECT_TIMEOUT_MS: '1000',
      }),
    );
    base = await listen(t);
    const added = await request(t.server)
      .post('/v1/hosts')
      .set(auth)
      .send({ name: 'fwd', uri: `qemu+tcp://127.0.0.1:${forwarder.port}/system` });
    assert.equal(added.status, 201, JSON.stringify(added.body));
  });

  after(async () => {
    await forwarder.cut();
    await virsh('destroy', name).catch(() => undefined);
    await virsh('undefine', name).catch(() => undefined);
    await closeAllApps();
    await removeDir();
    await deleteKeys(prefix);
  });

  it('says host.disconnected, then the missed changes as reconciled events, then host.reconnected', async () => {
    const sse = await SseClient.open(`${base}/v1/events?host=fwd`, auth);
    await waitFor(() => sse.comments.includes('connected'), 'the stream to open');
    // Once the host is held and its state taken, a change made now is heard live.
    const redis = new Redis(REDIS_URL);
    await waitFor(
      async () => (await redis.get(redisKeys(prefix).eventsHostLink('fwd'))) === 'up',
      'the forwarded host to be followed',
    );
    redis.disconnect();
    await virsh('start', name);
    await sse.waitForEvents<GatewayEvent>((e) => e.type === 'domain.started', 1, 'a live start');
    const live = sse.parsed<GatewayEvent>().find((e) => e.type === 'domain.started')!;
    assert.equal(live.reconciled, false);

    await forwarder.cut();
    await sse.waitForEvents<GatewayEvent>(
      (e) => e.type === 'host.disconnected',
      1,
      'host.disconnected',
    );
    // Meanwhile, while nothing listens on that host's link:
    await virsh('suspend', name);
    await forwarder.open();
    const [reconnected] = await sse.waitForEvents<GatewayEvent>(
      (e) => e.type === 'host.reconnected',
      1,
      'host.reconnected',
    );
    const after = sse.parsed<GatewayEvent>();
    const between = after.slice(
      after.findIndex((e) => e.type === 'host.disconnected') + 1,
      after.findIndex((e) => e.type === 'host.reconnected'),
    );
    // Other tests define domains on the same daemon meanwhile: those come reconciled too.
    assert.ok(between.every((e) => e.reconciled && e.domain !== null));
    assert.deepEqual(
      between.filter((e) => e.domain!.name === name).map((e) => e.type),
      ['domain.suspended'],
    );
    assert.ok(reconnected);
    // Then events come live again.
    await virsh('destroy', name);
    await sse.waitForEvents<GatewayEvent>(
      (e) => e.type === 'domain.stopped' && !e.reconciled,
      1,
      'a live stop after the reconnect',
    );
    for (const e of sse.parsed<GatewayEvent>()) assert.deepEqual(eventSchemaErrors(e), [], e.type);
    sse.close();

    // A host removed loses its holder, and what was kept to reconcile it.
    await request(t.server).delete('/v1/hosts/fwd').set(auth).expect(204);
    const keys = redisKeys(prefix);
    const check = new Redis(REDIS_URL);
    await waitFor(
      async () =>
        (await check.exists(
          keys.eventsLease('fwd'),
          keys.eventsDomains('fwd'),
          keys.eventsHostLink('fwd'),
        )) === 0,
      'the removed host to be let go',
    );
    check.disconnect();
  });
});

/** The worker role alone, in a process of its own. */
class WorkerProcess {
  out = '';
  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk) => (this.out += String(chunk)));
  }

  static start(prefix: string): WorkerProcess {
    const child = spawn(process.execPath, ['dist/src/main.js'], {
      env: {
        ...process.env,
        ROLE: 'worker',
        // Other test files' block jobs run on the same libvirtd: none is this worker's to adopt.
        BLOCK_JOB_ADOPT: 'false',
        REDIS_URL,
        VIRTGATE_REDIS_PREFIX: prefix,
        EVENTS_LEASE_MS: '1500',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return new WorkerProcess(child);
  }

  get holdsLocal(): boolean {
    return this.out.includes(`host 'local': holding its event registration`);
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await once(this.child, 'exit');
  }
}

describe('events when the worker holding a host is killed', () => {
  const prefix = uniquePrefix(import.meta.url) + 'takeover:';
  let t: TestApp;
  let base: string;
  const workers: WorkerProcess[] = [];
  let removeDir: () => Promise<void> = async () => {};
  const name = `vg-evk-${id}`;

  before(async () => {
    const images = await makeImageDir(name);
    removeDir = images.remove;
    const [disk] = await createChain(images.dir, ['disk']);
    const client = await LibvirtClient.connect('qemu:///system');
    await client.rpc.domainDefineXmlFlags({ xml: tcgDomainXml(name, disk!), flags: 0 });
    await client.close();
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }));
    base = await listen(t);
    workers.push(WorkerProcess.start(prefix), WorkerProcess.start(prefix));
  });

  after(async () => {
    for (const w of workers) await w.kill();
    await virsh('destroy', name).catch(() => undefined);
    await virsh('undefine', name).catch(() => undefined);
    await closeAllApps();
    await removeDir();
    await deleteKeys(prefix);
  });

  it('moves the host to the other worker within the lease; events keep their ids and keep coming', async () => {
    const owner = await waitFor(
      () => workers.find((w) => w.holdsLocal),
      'a worker to hold the host',
    );
    const other = workers.find((w) => w !== owner)!;
    assert.ok(!other.holdsLocal, 'exactly one worker holds the host');
    // Held is not yet followed: once the holder has registered and taken the host's state,
    // the link is announced up, and a change made now is heard live.
    const redis = new Redis(REDIS_URL);
    await waitFor(
      async () => (await redis.get(redisKeys(prefix).eventsHostLink('local'))) === 'up',
      'the host to be followed',
    );
    redis.disconnect();
    const sse = await SseClient.open(`${base}/v1/events?domain=${name}&type=domain.*`, auth);
    await waitFor(() => sse.comments.includes('connected'), 'the stream to open');
    await virsh('start', name);
    await sse.waitForEvents<GatewayEvent>((e) => e.type === 'domain.started', 1, 'the start');

    await owner.kill();
    // Changed while no worker listens (the owner is dead, the lease not yet lapsed) …
    await virsh('suspend', name);
    await waitFor(() => other.holdsLocal, 'the other worker to take the host over', 15_000);
    // … and after: both come out, the first as found by the new owner's reconciliation.
    await sse.waitForEvents<GatewayEvent>((e) => e.type === 'domain.suspended', 1, 'the pause');
    // The new owner registered before it reconciled: a change now is heard live.
    await virsh('resume', name);
    await sse.waitForEvents<GatewayEvent>(
      (e) => e.type === 'domain.resumed' && !e.reconciled,
      1,
      'a live event from the new owner',
    );
    await virsh('destroy', name);
    await sse.waitForEvents<GatewayEvent>((e) => e.type === 'domain.stopped', 1, 'the stop');
    const events = sse.parsed<GatewayEvent>();
    const suspended = events.filter((e) => e.type === 'domain.suspended');
    assert.equal(suspended.length, 1, 'the pause, announced once');
    assert.equal(suspended[0]!.reconciled, true, 'found by the new owner');
    const ids = events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'every event has its own id');
    sse.close();
  });
});
