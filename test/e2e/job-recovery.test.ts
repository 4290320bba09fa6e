/**
 * Recovery through a real crash of a job of every family: domain definitions
 * (define, undefine), domain actions (start, destroy, suspend), snapshots, storage
 * pools (define, start) and volumes (create, delete). The api runs here
 * (ROLE=api); the worker is a process of its own (ROLE=worker,
 * JOB_LOCK_MS=1000) whose libvirt connection goes through a gate
 * (test/support/rpc-gate.ts) to the real libvirtd (QEMU driver, TCG guests).
 * The gate stops the job's one libvirt call that changes something
 * (domainDefineXmlFlags, domainUndefineFlags, domainCreateWithFlags,
 * domainDestroyFlags, domainSuspend, domainSnapshotCreateXml, storagePoolDefineXml,
 * storagePoolCreate, storageVolCreateXml, storageVolDelete) either once
 * libvirtd has done it and answered (the answer held: the worker never hears
 * it) or before libvirtd sees it; the worker is then killed (SIGKILL) there.
 * Its BullMQ lock lapses, the stalled check of a second worker process hands
 * the job to that one, and its handler finishes the job. (That second worker,
 * alive and alone, is the first worker of the next test.)
 *
 * Each time: one completion (the record completed on attempt 2, one
 * job.state-changed event to completed, one "completed" in the workers'
 * logs), a result saying whether this run made the change (not if libvirtd
 * had done it already), and the change made exactly once, as the gateway's
 * own views show it and as libvirt (its events, its pools), qemu-img and the
 * files do; nothing else changed.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DOMParser } from '@xmldom/xmldom';
import request from 'supertest';
import {
  DomainEventId,
  DomainEventLifecycle,
  DomainState,
  LibvirtClient,
  StoragePoolState,
  uuidString,
  type DomainEvent,
  type RemoteDomain,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import { MessageStatus } from '#src/libvirt/rpc/header.js';
import { buildXml } from '#src/xml/xml.js';
import { tcgDomainXml, volumeXml } from '../support/domain-xml.js';
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
  domainCreateWithFlags: 196,
  domainDestroyFlags: 234,
  domainSuspend: 34,
  storagePoolDefineXml: 77,
  storagePoolCreate: 78,
  storageVolDelete: 94,
} as const;

/** virDomainEvent{Defined,Undefined,Started,Stopped}DetailType. */
const DEFINED_ADDED = 0;
const UNDEFINED_REMOVED = 0;
const STARTED_BOOTED = 0;
const STOPPED_DESTROYED = 1;
const SUSPENDED_PAUSED = 0;

/** A dir pool's XML. */
function dirPoolXml(name: string, dir: string): string {
  return buildXml({
    name: 'pool',
    attrs: { type: 'dir' },
    children: [
      { name: 'name', text: name },
      { name: 'target', children: [{ name: 'path', text: dir }] },
    ],
  });
}

interface Job {
  id: string;
  type: string;
  state: string;
  attempts: number;
  domainUuid: string | null;
  result: (Record<string, unknown> & { changed: boolean }) | null;
  error: { code: string; message: string } | null;
}

/** A pool as the gateway shows it (the fields looked at). */
interface PoolView {
  name: string;
  uuid: string;
  state: string;
  path: string | null;
  persistent: boolean;
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
  /** The worker that finished the last recovered job, alive and the only one, or null. */
  let spare: WorkerProcess | null = null;
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
    // The worker that recovered the last test's job, if it is still the only one, takes this
    // one (a worker less to start); otherwise a new one. No other worker may take the job:
    // the one killed must be the one that has it.
    const first = spare ?? (await startWorker());
    spare = null;
    for (const w of workers) if (w !== first) await w.kill();
    try {
      const { job: done, second } = await killAndRecover(first, proc, point, submit, afterKill);
      spare = second;
      return done;
    } catch (err) {
      for (const w of workers) await w.kill();
      throw err;
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
  ): Promise<{ job: Job; second: WorkerProcess }> {
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
    return { job: done, second };
  }

  /** libvirt's lifecycle events for the domain with `uuid`, as `event/detail`. */
  function lifecycleOf(uuid: string): string[] {
    return lifecycle
      .filter((e) => uuidString(e.dom.uuid) === uuid)
      .map((e) => `${e.event}/${e.detail}`);
  }

  /** libvirt's pools named `name` or whose directory is `dir`, as `name uuid dir`. */
  async function poolsNamedOrAt(name: string, dir: string): Promise<string[]> {
    const { pools } = await qemu.rpc.connectListAllStoragePools({ needResults: 1, flags: 0 });
    const out: string[] = [];
    for (const p of pools) {
      const { xml } = await qemu.rpc.storagePoolGetXmlDesc({ pool: p, flags: 0 });
      const target = new DOMParser()
        .parseFromString(xml, 'text/xml')
        .getElementsByTagName('target');
      const at = target[0]?.getElementsByTagName('path')[0]?.textContent ?? null;
      if (p.name === name || at === dir) out.push(`${p.name} ${uuidString(p.uuid)} ${at}`);
    }
    return out;
  }

  /** The test pool's volumes as the gateway lists them, and its directory's files, sorted. */
  async function poolContents(): Promise<{ volumes: string[]; files: string[] }> {
    const page = await http.get(`/v1/hosts/${HOST}/pools/${POOL}/volumes?limit=100`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.equal(page.body.nextCursor ?? null, null, 'one page holds them all');
    return {
      volumes: (page.body.items as { name: string }[]).map((v) => v.name).sort(),
      files: (await readdir(pooldir)).sort(),
    };
  }

  /** A small TCG domain of the test's own (no OS, one qcow2 disk), defined, shut off. */
  async function tcgDomain(name: string): Promise<RemoteDomain> {
    const dir = path.join(images.dir, name);
    await mkdir(dir);
    const [base] = (await createChain(dir, ['base'])) as [string];
    const { dom } = await qemu.rpc.domainDefineXmlFlags({
      xml: tcgDomainXml(name, base),
      flags: 0,
    });
    domains.push(dom);
    return dom;
  }

  /**
   * The domain's lifecycle events that count definitions, starts, pauses and stops (the
   * QEMU driver adds a RESUMED to each start and a SHUTDOWN to each destroy: not counted).
   */
  function runsOf(uuid: string): string[] {
    const counted: number[] = [
      DomainEventLifecycle.DEFINED,
      DomainEventLifecycle.UNDEFINED,
      DomainEventLifecycle.STARTED,
      DomainEventLifecycle.SUSPENDED,
      DomainEventLifecycle.STOPPED,
    ];
    return lifecycleOf(uuid).filter((e) => counted.includes(Number(e.split('/')[0])));
  }

  /** Checks, when the first worker is dead, what libvirtd did of its call. */
  async function stateIs(dom: RemoteDomain, expected: number): Promise<void> {
    const { state } = await qemu.rpc.domainGetState({ dom, flags: 0 });
    assert.equal(state, expected, 'what libvirtd did for the killed worker (nothing at the call)');
  }

  /** Waits for libvirt's lifecycle event `event/detail` of the domain with `uuid`. */
  async function eventOf(uuid: string, event: number, detail: number): Promise<void> {
    await waitFor(
      () => lifecycleOf(uuid).includes(`${event}/${detail}`),
      `libvirt's lifecycle event ${event}/${detail} of domain ${uuid}`,
    );
  }

  before(async () => {
    qemu = await LibvirtClient.connect('qemu:///system');
    qemu.on('domainEvent', (e) => {
      if (e.kind === 'lifecycle') lifecycle.push(e);
    });
    await qemu.domainEventRegisterAny(DomainEventId.LIFECYCLE, null);
    images = await makeImageDir(tag);
    pooldir = path.join(images.dir, 'pool');
    ({ pool } = await qemu.rpc.storagePoolDefineXml({ xml: dirPoolXml(POOL, pooldir), flags: 0 }));
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
    const { pools } = await qemu.rpc.connectListAllStoragePools({ needResults: 1, flags: 0 });
    for (const p of pools.filter((x) => x.name.startsWith(tag))) {
      await qemu.rpc.storagePoolDestroy({ pool: p }).catch(() => undefined);
      await qemu.rpc.storagePoolUndefine({ pool: p }).catch(() => undefined);
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
    it(`start, the worker killed ${when}: completed once, the domain started once`, async () => {
      const name = `${tag}-start-${point}`;
      const dom = await tcgDomain(name);
      const uuid = uuidString(dom.uuid);
      const done = await killedMidJob(
        PROC.domainCreateWithFlags,
        point,
        () => http.post(`/v1/hosts/${HOST}/domains/${name}/actions/start`, {}),
        () => stateIs(dom, point === 'reply' ? DomainState.RUNNING : DomainState.SHUTOFF),
      );
      assert.equal(done.domainUuid, uuid);
      assert.deepEqual(done.result, { state: 'running', changed: point === 'call' });
      const view = await http.get(`/v1/hosts/${HOST}/domains/${name}`);
      assert.equal(view.body.state, 'running', JSON.stringify(view.body));
      // libvirt's own word: started once (a start of a running domain is refused; the test
      // started nothing). Its events come in order: once the destroy's has come, any start's has.
      await qemu.rpc.domainDestroyFlags({ dom, flags: 0 });
      await eventOf(uuid, DomainEventLifecycle.STOPPED, STOPPED_DESTROYED);
      assert.deepEqual(runsOf(uuid), [
        `${DomainEventLifecycle.DEFINED}/${DEFINED_ADDED}`,
        `${DomainEventLifecycle.STARTED}/${STARTED_BOOTED}`,
        `${DomainEventLifecycle.STOPPED}/${STOPPED_DESTROYED}`,
      ]);
    });

    it(`destroy, the worker killed ${when}: completed once, the domain stopped once`, async () => {
      const name = `${tag}-destroy-${point}`;
      const dom = await tcgDomain(name);
      const uuid = uuidString(dom.uuid);
      await qemu.rpc.domainCreateWithFlags({ dom, flags: 0 });
      const done = await killedMidJob(
        PROC.domainDestroyFlags,
        point,
        () => http.post(`/v1/hosts/${HOST}/domains/${name}/actions/destroy`, {}),
        () => stateIs(dom, point === 'reply' ? DomainState.SHUTOFF : DomainState.RUNNING),
      );
      assert.equal(done.domainUuid, uuid);
      assert.deepEqual(done.result, { state: 'shutoff', changed: point === 'call' });
      const view = await http.get(`/v1/hosts/${HOST}/domains/${name}`);
      assert.equal(view.body.state, 'shutoff', JSON.stringify(view.body));
      // libvirt's own word: started once (by the test), stopped once (by the job); the
      // undefine's event, once it has come, follows anything the job made libvirt do.
      await qemu.rpc.domainUndefineFlags({ dom, flags: 0 });
      await eventOf(uuid, DomainEventLifecycle.UNDEFINED, UNDEFINED_REMOVED);
      assert.deepEqual(runsOf(uuid), [
        `${DomainEventLifecycle.DEFINED}/${DEFINED_ADDED}`,
        `${DomainEventLifecycle.STARTED}/${STARTED_BOOTED}`,
        `${DomainEventLifecycle.STOPPED}/${STOPPED_DESTROYED}`,
        `${DomainEventLifecycle.UNDEFINED}/${UNDEFINED_REMOVED}`,
      ]);
    });

    it(`suspend, the worker killed ${when}: completed once, the domain paused once`, async () => {
      const name = `${tag}-suspend-${point}`;
      const dom = await tcgDomain(name);
      const uuid = uuidString(dom.uuid);
      await qemu.rpc.domainCreateWithFlags({ dom, flags: 0 });
      const done = await killedMidJob(
        PROC.domainSuspend,
        point,
        () => http.post(`/v1/hosts/${HOST}/domains/${name}/actions/suspend`, {}),
        () => stateIs(dom, point === 'reply' ? DomainState.PAUSED : DomainState.RUNNING),
      );
      assert.equal(done.domainUuid, uuid);
      assert.deepEqual(done.result, { state: 'paused', changed: point === 'call' });
      const view = await http.get(`/v1/hosts/${HOST}/domains/${name}`);
      assert.equal(view.body.state, 'paused', JSON.stringify(view.body));
      // libvirt's own word: paused once, by the job; the destroy's event follows anything else.
      await qemu.rpc.domainDestroyFlags({ dom, flags: 0 });
      await eventOf(uuid, DomainEventLifecycle.STOPPED, STOPPED_DESTROYED);
      assert.deepEqual(runsOf(uuid), [
        `${DomainEventLifecycle.DEFINED}/${DEFINED_ADDED}`,
        `${DomainEventLifecycle.STARTED}/${STARTED_BOOTED}`,
        `${DomainEventLifecycle.SUSPENDED}/${SUSPENDED_PAUSED}`,
        `${DomainEventLifecycle.STOPPED}/${STOPPED_DESTROYED}`,
      ]);
    });

    it(`pool define, the worker killed ${when}: completed once, one pool, the job's`, async () => {
      const name = `${tag}-pdef-${point}`;
      const dir = path.join(images.dir, `pdef-${point}`);
      const done = await killedMidJob(
        PROC.storagePoolDefineXml,
        point,
        () => http.post(`/v1/hosts/${HOST}/pools`, { name, path: dir }),
        async () => {
          assert.equal(
            (await poolsNamedOrAt(name, dir)).length,
            point === 'reply' ? 1 : 0,
            point === 'reply' ? 'libvirtd defined it for the killed worker' : 'not defined yet',
          );
        },
      );
      const made = done.result?.pool as PoolView;
      assert.deepEqual(
        [made.name, made.state, made.path, made.persistent],
        [name, 'inactive', dir, true],
      );
      const seen = await http.get(`/v1/hosts/${HOST}/pools/${name}`);
      assert.equal(seen.status, 200, JSON.stringify(seen.body));
      assert.equal((seen.body as PoolView).uuid, made.uuid, 'the pool of that name is the job’s');
      // libvirt's own word: one pool of that name or with that directory, the job's.
      assert.deepEqual(await poolsNamedOrAt(name, dir), [`${name} ${made.uuid} ${dir}`]);
    });

    it(`pool start, the worker killed ${when}: completed once, the pool built and running`, async () => {
      const name = `${tag}-pstart-${point}`;
      const dir = path.join(images.dir, `pstart-${point}`);
      const { pool: p } = await qemu.rpc.storagePoolDefineXml({
        xml: dirPoolXml(name, dir),
        flags: 0,
      });
      const done = await killedMidJob(
        PROC.storagePoolCreate,
        point,
        () => http.post(`/v1/hosts/${HOST}/pools/${name}/actions/start`, { build: true }),
        async () => {
          const { state } = await qemu.rpc.storagePoolGetInfo({ pool: p });
          assert.equal(
            state,
            point === 'reply' ? StoragePoolState.RUNNING : StoragePoolState.INACTIVE,
            point === 'reply' ? 'libvirtd started it for the killed worker' : 'not started yet',
          );
        },
      );
      const made = done.result?.pool as PoolView;
      assert.deepEqual(
        [made.name, made.uuid, made.state, made.path],
        [name, uuidString(p.uuid), 'running', dir],
      );
      const seen = await http.get(`/v1/hosts/${HOST}/pools/${name}`);
      assert.equal((seen.body as PoolView).state, 'running', JSON.stringify(seen.body));
      assert.equal(
        (await qemu.rpc.storagePoolGetInfo({ pool: p })).state,
        StoragePoolState.RUNNING,
      );
      assert.ok((await stat(dir)).isDirectory(), 'the build made its directory');
      assert.deepEqual(await poolsNamedOrAt(name, dir), [`${name} ${uuidString(p.uuid)} ${dir}`]);
    });

    it(`volume delete, the worker killed ${when}: completed once, that volume gone, no other`, async () => {
      const volume = `del-${point}.img`;
      const file = path.join(pooldir, volume);
      for (const v of [volume, `keep-${point}.img`]) {
        await qemu.rpc.storageVolCreateXml({ pool, xml: volumeXml(v, 1), flags: 0 });
      }
      const before = await poolContents();
      assert.ok(before.volumes.includes(volume) && before.files.includes(volume), 'made');
      const done = await killedMidJob(
        PROC.storageVolDelete,
        point,
        () => http.del(`/v1/hosts/${HOST}/pools/${POOL}/volumes/${volume}`),
        async () => {
          assert.equal(
            (await readdir(pooldir)).includes(volume),
            point === 'call',
            point === 'reply' ? 'libvirtd deleted it for the killed worker' : 'not deleted yet',
          );
        },
      );
      assert.deepEqual(done.result, { changed: point === 'call', pool: POOL, volume, path: file });
      const gone = await http.get(`/v1/hosts/${HOST}/pools/${POOL}/volumes/${volume}`);
      assert.equal(gone.status, 404, JSON.stringify(gone.body));
      const without = (names: string[]): string[] => names.filter((n) => n !== volume);
      assert.deepEqual(
        await poolContents(),
        { volumes: without(before.volumes), files: without(before.files) },
        'that volume and its file gone, every other one still there',
      );
    });
  }
});
