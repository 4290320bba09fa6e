/**
 * Recovery of the define, undefine, snapshot and volume-create jobs through
 * a real crash: the api runs here (ROLE=api); the worker is a process of its
 * own (ROLE=worker, JOB_LOCK_MS=1000) whose libvirt connection goes through a
 * gate (test/support/rpc-gate.ts) to the real libvirtd. The gate stops the
 * job's one libvirt call that changes something (domainDefineXmlFlags,
 * domainUndefineFlags, domainSnapshotCreateXml, storageVolCreateXml) either
 * once libvirtd has done it and answered (the answer held: the worker never
 * hears it) or before libvirtd sees it; the worker is then killed (SIGKILL)
 * there. Its BullMQ lock lapses, the stalled check of a second worker
 * process hands the job to that one, and its handler finishes the job.
 *
 * Each time: one completion (the record completed on attempt 2, one
 * job.state-changed event to completed, one "completed" in the workers'
 * logs), a result saying whether this run made it (not if libvirtd had done
 * it already), and what the job made exists exactly once, as the gateway's
 * own listings show it and as libvirt (its events) and qemu-img do.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import {
  DomainEventId,
  DomainEventLifecycle,
  LibvirtClient,
  uuidString,
  type DomainEvent,
  type RemoteDomain,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import { MessageStatus } from '#src/libvirt/rpc/header.js';
import { buildXml } from '#src/xml/xml.js';
import { tcgDomainXml } from '../support/domain-xml.js';
import {
  backingChain,
  createChain,
  hasPattern,
  makeImageDir,
  qemuImg,
  writePattern,
} from '../support/qemu-images.js';
import { RpcGate, type GatePoint } from '../support/rpc-gate.js';
import { waitFor } from '../support/wait.js';
import { WorkerProcess } from '../support/worker-process.js';
import {
  closeAllApps,
  deleteKeys,
  REDIS_URL,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'job-recovery-test-admin-token-0123456789';
const tag = `vgrec-${randomUUID().slice(0, 6)}`;
const HOST = 'gated';
const MiB = 1024 * 1024;

/** The remote procedures (libvirt's remote_protocol.x) each job makes its thing with. */
const PROC = {
  domainDefineXmlFlags: 350,
  domainUndefineFlags: 231,
  domainSnapshotCreateXml: 185,
  storageVolCreateXml: 93,
} as const;

/** virDomainEventDefinedDetailType / virDomainEventUndefinedDetailType. */
const DEFINED_ADDED = 0;
const UNDEFINED_REMOVED = 0;

interface Job {
  id: string;
  type: string;
  state: string;
  attempts: number;
  domainUuid: string | null;
  result: (Record<string, unknown> & { changed: boolean }) | null;
  error: { code: string; message: string } | null;
}

interface JobEvent {
  type: string;
  job: { id: string; state: string; previousState: string | null } | null;
}

describe('job recovery: a worker killed (SIGKILL) mid-job, the job redelivered by BullMQ', () => {
  let t: TestApp;
  let qemu: LibvirtClient;
  let images: { dir: string; remove(): Promise<void> };
  let pool: RemoteStoragePool;
  let pooldir: string;
  const POOL = `${tag}-pool`;
  const gate = new RpcGate();
  const workers: WorkerProcess[] = [];
  const domains: RemoteDomain[] = [];
  const lifecycle: Extract<DomainEvent, { kind: 'lifecycle' }>[] = [];

  const http = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).send(body),
    del: (url: string) => request(t.server).delete(url).set('authorization', `Bearer ${ADMIN}`),
  };

  async function startWorker(): Promise<WorkerProcess> {
    // The worker role alone, with a short job lock so that a dead one is noticed soon.
    const w = await WorkerProcess.start({
      REDIS_URL,
      VIRTGATE_REDIS_PREFIX: prefix,
      VIRTGATE_PATH_ROOTS: tmpdir(),
      JOB_LOCK_MS: '1000',
    });
    workers.push(w);
    return w;
  }

  async function job(id: string): Promise<Job> {
    return (await http.get(`/v1/jobs/${id}`)).body as Job;
  }

  /** The id of a job the api accepted (202). */
  function accepted(res: request.Response): string {
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  }

  /** The job's state changes as the event feed has them, `previous→state`. */
  async function stateChanges(id: string): Promise<string[]> {
    const page = await http.get(`/v1/events?job=${id}&limit=100`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    return (page.body.items as JobEvent[])
      .filter((e) => e.type === 'job.state-changed' && e.job?.id === id)
      .map((e) => `${e.job!.previousState ?? 'null'}→${e.job!.state}`);
  }

  /**
   * Submits a job with a first worker running, stops its `proc` call at
   * `point`, kills that worker there, and lets a second one finish the job;
   * checks that the job ran to completion exactly once. Returns the job.
   */
  async function killedMidJob(
    proc: number,
    point: GatePoint,
    submit: () => Promise<request.Response>,
    afterKill: () => Promise<void> = async () => undefined,
  ): Promise<Job> {
    // No worker of an earlier test may take the job: the one killed must be the one that has it.
    for (const w of workers) await w.kill();
    const first = await startWorker();
    try {
      return await killAndRecover(first, proc, point, submit, afterKill);
    } finally {
      for (const w of workers) await w.kill();
    }
  }

  /** Lines `w` logged about job `id` containing `text`, once at least one has come. */
  async function logged(w: WorkerProcess, id: string, text: string): Promise<string[]> {
    return waitFor(() => {
      const lines = w.linesOf(id).filter((l) => l.includes(text));
      return lines.length > 0 ? lines : null;
    }, `the worker's log line '${text}' about job ${id}`);
  }

  async function killAndRecover(
    first: WorkerProcess,
    proc: number,
    point: GatePoint,
    submit: () => Promise<request.Response>,
    afterKill: () => Promise<void>,
  ): Promise<Job> {
    gate.arm(proc, point);
    const id = accepted(await submit());
    const held = await waitFor(
      () => gate.held,
      `the worker's call ${proc} stopped at the ${point}`,
      60_000,
    );
    assert.equal(held.call.proc, proc);
    if (point === 'reply') {
      assert.equal(held.reply?.status, MessageStatus.ok, 'libvirtd did the call and said so');
    }
    await first.kill();
    // Everything it wrote before it died, read to the end of its output.
    const out = first.child.stdout!;
    await waitFor(() => out.readableEnded || out.destroyed, "the killed worker's output to end");
    assert.equal((await logged(first, id, ': running')).length, 1, 'its handler was called once');
    assert.ok(!first.linesOf(id).some((l) => l.includes(': completed')), first.log);
    const meanwhile = await job(id);
    assert.equal(meanwhile.state, 'running', 'the record does not know of the call');
    await afterKill();

    const second = await startWorker();
    const done = await waitFor(
      async () => {
        const j = await job(id);
        return ['completed', 'failed', 'canceled'].includes(j.state) ? j : null;
      },
      `job ${id} to end in the second worker`,
      60_000,
    );
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(done.attempts, 2, 'the first worker’s attempt and the second’s');
    assert.equal(
      done.result?.changed,
      point === 'call',
      point === 'call'
        ? 'libvirtd never saw the first call: the second run made it'
        : 'libvirtd had done it: the second run found it done',
    );
    assert.equal((await logged(second, id, ': completed')).length, 1, second.log);
    assert.equal(
      second.linesOf(id).filter((l) => l.includes(': running')).length,
      1,
      'the second worker called the handler once',
    );
    assert.deepEqual(
      await stateChanges(id),
      ['null→queued', 'queued→running', 'running→completed'],
      'one start, one completion, nothing after it',
    );
    return done;
  }

  /** libvirt's lifecycle events for the domain with `uuid`, as `event/detail`. */
  function lifecycleOf(uuid: string): string[] {
    return lifecycle
      .filter((e) => uuidString(e.dom.uuid) === uuid)
      .map((e) => `${e.event}/${e.detail}`);
  }

  before(async () => {
    qemu = await LibvirtClient.connect('qemu:///system');
    qemu.on('domainEvent', (e) => {
      if (e.kind === 'lifecycle') lifecycle.push(e);
    });
    await qemu.domainEventRegisterAny(DomainEventId.LIFECYCLE, null);
    images = await makeImageDir(tag);
    pooldir = path.join(images.dir, 'pool');
    ({ pool } = await qemu.rpc.storagePoolDefineXml({
      xml: buildXml({
        name: 'pool',
        attrs: { type: 'dir' },
        children: [
          { name: 'name', text: POOL },
          { name: 'target', children: [{ name: 'path', text: pooldir }] },
        ],
      }),
      flags: 0,
    }));
    await qemu.rpc.storagePoolBuild({ pool, flags: 0 });
    await qemu.rpc.storagePoolCreate({ pool, flags: 0 });
    await gate.open();
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }));
    const host = await http.post('/v1/hosts', {
      name: HOST,
      uri: `qemu+tcp://127.0.0.1:${gate.port}/system`,
    });
    assert.equal(host.status, 201, JSON.stringify(host.body));
  });

  after(async () => {
    for (const w of workers) await w.kill();
    await closeAllApps();
    await gate.close();
    const { domains: all } = await qemu.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
    for (const dom of [...domains, ...all.filter((d) => d.name.startsWith(tag))]) {
      await qemu.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await qemu.rpc.domainUndefineFlags({ dom, flags: 2 }).catch(() => undefined);
    }
    if (pool) {
      await qemu.rpc.storagePoolDestroy({ pool }).catch(() => undefined);
      await qemu.rpc.storagePoolUndefine({ pool }).catch(() => undefined);
    }
    await qemu.close();
    await images.remove();
    await deleteKeys(prefix);
  });

  for (const point of ['reply', 'call'] as const) {
    const when =
      point === 'reply'
        ? 'after libvirtd did the call, before the worker heard'
        : 'before libvirtd got the call';

    it(`define, the worker killed ${when}: completed once, one domain defined once`, async () => {
      const name = `${tag}-def-${point}`;
      const done = await killedMidJob(PROC.domainDefineXmlFlags, point, () =>
        http.post(`/v1/hosts/${HOST}/domains`, { name, type: 'qemu', memoryMiB: 64, vcpus: 1 }),
      );
      const uuid = done.domainUuid!;
      assert.deepEqual(done.result, { uuid, name, changed: point === 'call' });
      const listed = (
        (await http.get(`/v1/hosts/${HOST}/domains?namePrefix=${name}&limit=100`)).body.items as {
          name: string;
          uuid: string;
        }[]
      ).filter((d) => d.name === name);
      assert.deepEqual(
        listed.map((d) => d.uuid),
        [uuid],
        'one domain of that name, the job’s',
      );
      // libvirt's own word: defined once (a second define would be an UPDATED event). Its
      // events come in order: once the undefine's has come, any define's before it has too.
      const { dom } = await qemu.rpc.domainLookupByName({ name });
      await qemu.rpc.domainUndefineFlags({ dom, flags: 0 });
      await waitFor(
        () => lifecycleOf(uuid).includes(`${DomainEventLifecycle.UNDEFINED}/${UNDEFINED_REMOVED}`),
        `libvirt's event of the undefine of ${name}`,
      );
      assert.deepEqual(lifecycleOf(uuid), [
        `${DomainEventLifecycle.DEFINED}/${DEFINED_ADDED}`,
        `${DomainEventLifecycle.UNDEFINED}/${UNDEFINED_REMOVED}`,
      ]);
    });

    it(`undefine, the worker killed ${when}: completed once, the domain undefined once`, async () => {
      const name = `${tag}-undef-${point}`;
      const { dom } = await qemu.rpc.domainDefineXmlFlags({
        xml: buildXml({
          name: 'domain',
          attrs: { type: 'qemu' },
          children: [
            { name: 'name', text: name },
            { name: 'memory', attrs: { unit: 'MiB' }, text: 64 },
            { name: 'os', children: [{ name: 'type', attrs: { arch: 'x86_64' }, text: 'hvm' }] },
          ],
        }),
        flags: 0,
      });
      const uuid = uuidString(dom.uuid);
      const done = await killedMidJob(PROC.domainUndefineFlags, point, () =>
        http.del(`/v1/hosts/${HOST}/domains/${name}`),
      );
      assert.deepEqual(done.result, { uuid, name, changed: point === 'call' });
      assert.equal((await http.get(`/v1/hosts/${HOST}/domains/${name}`)).status, 404);
      // libvirt's own word: undefined once, by the job (the test defined it, and undefines nothing).
      await waitFor(
        () => lifecycleOf(uuid).includes(`${DomainEventLifecycle.UNDEFINED}/${UNDEFINED_REMOVED}`),
        `libvirt's event of the undefine of ${name}`,
      );
      assert.deepEqual(lifecycleOf(uuid), [
        `${DomainEventLifecycle.DEFINED}/${DEFINED_ADDED}`,
        `${DomainEventLifecycle.UNDEFINED}/${UNDEFINED_REMOVED}`,
      ]);
    });

    it(`snapshot, the worker killed ${when}: completed once, one snapshot, one overlay`, async () => {
      const name = `${tag}-snap-${point}`;
      const dir = path.join(images.dir, name);
      await mkdir(dir);
      const [base] = (await createChain(dir, ['base'])) as [string];
      const { dom } = await qemu.rpc.domainDefineXmlFlags({
        xml: tcgDomainXml(name, base),
        flags: 0,
      });
      domains.push(dom);
      await qemu.rpc.domainCreateWithFlags({ dom, flags: 0 });
      const overlay = path.join(dir, 'base.s1.qcow2');

      const done = await killedMidJob(PROC.domainSnapshotCreateXml, point, () =>
        http.post(`/v1/hosts/${HOST}/domains/${name}/snapshots`, { name: 's1', metadata: true }),
      );
      assert.deepEqual(done.result?.overlays, [{ target: 'vda', path: overlay }]);
      const snapshots = (await http.get(`/v1/hosts/${HOST}/domains/${name}/snapshots`)).body as {
        name: string;
      }[];
      assert.deepEqual(
        snapshots.map((s) => s.name),
        ['s1'],
        'one snapshot in libvirt’s metadata',
      );
      const disk = (await http.get(`/v1/hosts/${HOST}/domains/${name}/disks/vda`)).body as {
        chain: { path: string }[];
      };
      assert.deepEqual(
        disk.chain.map((c) => c.path),
        [overlay, base],
        'one overlay on the disk',
      );
      assert.deepEqual(
        (await backingChain(overlay)).map((i) => i.filename),
        [overlay, base],
        'qemu-img agrees',
      );
      assert.deepEqual((await readdir(dir)).sort(), ['base.qcow2', 'base.s1.qcow2']);
    });

    it(`volume create, the worker killed ${when}: completed once, one volume, one file`, async () => {
      const volume = `${point}.qcow2`;
      const file = path.join(pooldir, volume);
      const done = await killedMidJob(
        PROC.storageVolCreateXml,
        point,
        () =>
          http.post(`/v1/hosts/${HOST}/pools/${POOL}/volumes`, {
            name: volume,
            capacityBytes: 16 * MiB,
          }),
        // The volume libvirtd made for the killed worker, marked: one made again would be blank.
        point === 'reply' ? () => writePattern(file, 0x5a, 3) : undefined,
      );
      const made = done.result?.volume as { name: string; path: string; capacityBytes: number };
      assert.deepEqual([made.name, made.path, made.capacityBytes], [volume, file, 16 * MiB]);
      const listed = (
        (await http.get(`/v1/hosts/${HOST}/pools/${POOL}/volumes?limit=100`)).body.items as {
          name: string;
        }[]
      ).filter((v) => v.name === volume);
      assert.equal(listed.length, 1, 'one volume of that name');
      assert.equal(
        (await readdir(pooldir)).filter((f) => f === volume).length,
        1,
        'one file of that name',
      );
      const info = JSON.parse(await qemuImg('info', '-U', '--output=json', file)) as {
        format: string;
        'virtual-size': number;
      };
      assert.deepEqual([info.format, info['virtual-size']], ['qcow2', 16 * MiB]);
      if (point === 'reply') {
        assert.ok(await hasPattern(file, 0x5a, 3), 'the volume the first call made, not another');
      }
    });
  }
});
