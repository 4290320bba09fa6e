/**
 * The GraphQL mutations of the write side, against real Redis and libvirtd,
 * through the same services and jobs as REST: defineDomain (a spec on the
 * QEMU driver, raw XML for admins on the test driver), undefineDomain,
 * createSnapshot on a running TCG domain over a qcow2 image, and the storage
 * mutations on dir pools in a temp dir. Each job is waited for with `wait`
 * and its effect read back from libvirt (and qemu-img where files are made);
 * refusals carry REST's codes in `extensions.code`; Idempotency-Key works
 * across GraphQL and REST.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { LibvirtClient, LibvirtError, type RemoteDomain } from '#src/libvirt/index.js';
import { liveChain, tcgDomainXml, testDriverDomainXml } from '../support/domain-xml.js';
import { waitFor } from '../support/wait.js';
import {
  backingChain,
  createChain,
  hasPattern,
  makeImageDir,
  writePattern,
} from '../support/qemu-images.js';
import { codes, graphql, type GraphqlBody } from './graphql-helpers.js';
import { graphqlEnumName } from '#src/graphql/value-enum.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  storeToken,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const ADMIN = 'graphql-mutations-admin-token-0123456789';
const USER = 'graphql-mutations-user-token-0123456789';
const TEST_URI = 'test+tcp://127.0.0.1/default';
const GiB = 1024 ** 3;

interface Job {
  id: string;
  type: string;
  state: string;
  host: string;
  domain: string | null;
  domainUuid: string | null;
  request: Record<string, unknown>;
  /** As selected by RESULT: its member of the JobResult union, with __typename. */
  result: Record<string, unknown> | null;
  error: { code: string; message: string; libvirtCode: string | null } | null;
  requestedBy: string;
}

const DISK = `target device chain { path ref index depth format } chainComplete persistentChainDiffers`;
const POOL = `name uuid state type path persistent autostart capacityBytes`;
const VOLUME = `name path capacityBytes format type`;
/** Every member of the JobResult union, each field the tests read (and REST's view is compared with). */
const RESULT = `__typename
  ... on StartDomainResult { state changed }
  ... on ShutdownDomainResult { state changed forced }
  ... on DestroyDomainResult { state changed }
  ... on RebootDomainResult { state changed }
  ... on SuspendDomainResult { state changed }
  ... on ResumeDomainResult { state changed }
  ... on AutostartDomainResult { autostart changed }
  ... on DefineDomainResult { uuid name changed }
  ... on UndefineDomainResult { uuid name changed }
  ... on SnapshotResult { name metadata changed overlays { target path } disks { ${DISK} } }
  ... on CommitResult { outcome libvirtStatus pivoted reattached chainBefore persistentChainDiffers disk { ${DISK} } }
  ... on CopyResult { outcome libvirtStatus pivoted reattached chainBefore persistentChainDiffers disk { ${DISK} } }
  ... on PullResult { outcome libvirtStatus pivoted reattached chainBefore persistentChainDiffers disk { ${DISK} } }
  ... on DefinePoolResult { changed pool { ${POOL} } }
  ... on StartPoolResult { changed pool { ${POOL} } }
  ... on StopPoolResult { changed pool { ${POOL} } }
  ... on RefreshPoolResult { changed pool { ${POOL} } }
  ... on UndefinePoolResult { changed poolName uuid }
  ... on CreateVolumeResult { changed volume { ${VOLUME} } }
  ... on DeleteVolumeResult { changed poolName volumeName path }`;

const JOB = `id type state host domain domainUuid request result { ${RESULT} } error { code message libvirtCode } requestedBy`;

/** The JobResult member of each job type the tests run. */
const RESULT_TYPENAME: Record<string, string> = {
  'domain.start': 'StartDomainResult',
  'domain.shutdown': 'ShutdownDomainResult',
  'domain.destroy': 'DestroyDomainResult',
  'domain.define': 'DefineDomainResult',
  'domain.undefine': 'UndefineDomainResult',
  'domain.snapshot': 'SnapshotResult',
  'block.commit': 'CommitResult',
  'block.copy': 'CopyResult',
  'block.pull': 'PullResult',
  'pool.define': 'DefinePoolResult',
  'pool.start': 'StartPoolResult',
  'pool.stop': 'StopPoolResult',
  'pool.refresh': 'RefreshPoolResult',
  'pool.undefine': 'UndefinePoolResult',
  'volume.create': 'CreateVolumeResult',
  'volume.delete': 'DeleteVolumeResult',
};

/** GraphQL's names of result fields whose REST name is taken by a view in other JobResult members. */
const REST_NAME: Record<string, string> = { poolName: 'pool', volumeName: 'volume' };

/**
 * GraphQL's selection of a result is REST's result, as far as it selects:
 * every field selected has REST's value.
 */
function assertSelectionOf(rest: unknown, selected: unknown, at = 'result'): void {
  if (selected === null || typeof selected !== 'object') {
    assert.deepEqual(selected, rest, `${at}: GraphQL and REST differ`);
    return;
  }
  assert.ok(rest !== null && typeof rest === 'object', `${at}: REST has no object here`);
  if (Array.isArray(selected)) {
    assert.ok(Array.isArray(rest), `${at}: REST has no list here`);
    assert.equal(selected.length, rest.length, `${at}: lengths differ`);
    selected.forEach((v, i) => assertSelectionOf(rest[i], v, `${at}[${i}]`));
    return;
  }
  for (const [key, value] of Object.entries(selected)) {
    if (key === '__typename') continue;
    const name = REST_NAME[key] ?? key;
    assertSelectionOf((rest as Record<string, unknown>)[name], value, `${at}.${name}`);
  }
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/** What libvirt answers `find` with, or the code of its refusal. */
async function libvirtSays<T>(find: () => Promise<T>): Promise<T | string> {
  try {
    return await find();
  } catch (err) {
    if (err instanceof LibvirtError) return err.codeName;
    throw err;
  }
}

describe('GraphQL mutations', () => {
  const prefix = `${uniquePrefix(import.meta.url)}`;
  const tag = `vgmut-${randomUUID().slice(0, 6)}`;
  let t: TestApp;
  let qemu: LibvirtClient;
  let testdrv: LibvirtClient;
  let tmp: { dir: string; remove(): Promise<void> };
  /** The running TCG domain the snapshot test makes, and its first image. */
  const snapName = `${tag}-snap`;
  let snapBase: string;

  const as = (token: string | null) => async (query: string, variables?: object) => {
    const res = await graphql(t, token, query, variables as Record<string, unknown>);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as GraphqlBody<Record<string, Job>>;
  };
  const admin = as(ADMIN);
  const user = as(USER);
  const rest = {
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
    post: (url: string, body: object, headers: Record<string, string> = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).set(headers).send(body),
  };

  /** The job a mutation answered, which must have no error. */
  function jobOf(body: GraphqlBody<Record<string, Job>>, field: string): Job {
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    const job = body.data?.[field];
    assert.ok(job, `no ${field} in ${JSON.stringify(body)}`);
    return job;
  }

  /** A job the mutation waited for: completed, with REST's view of it the same. */
  async function completed(
    body: GraphqlBody<Record<string, Job>>,
    field: string,
    type: string,
  ): Promise<Job> {
    const job = jobOf(body, field);
    assert.equal(job.type, graphqlEnumName(type), 'GraphQL names the type with _ for .');
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    const viaRest = (await rest.get(`/v1/jobs/${job.id}`)).body as Job;
    assert.equal(viaRest.type, type);
    assert.equal(viaRest.state, 'completed');
    assert.ok(job.result, `a completed ${type} job has a result`);
    assert.equal(job.result.__typename, RESULT_TYPENAME[type], "the result is its job type's");
    assertSelectionOf(viaRest.result, job.result);
    return job;
  }

  /** The one error of a refused mutation: its REST code, and no data. */
  function refused(body: GraphqlBody, code: string, field?: string): string {
    assert.deepEqual(codes(body), [code], JSON.stringify(body));
    const error = body.errors![0]!;
    assert.match(error.extensions.requestId, /\S/);
    if (field !== undefined) {
      assert.ok(
        error.extensions.fields?.some((f) => f.field === field),
        `a field error for ${field}: ${JSON.stringify(error.extensions.fields)}`,
      );
    }
    return error.message;
  }

  /** Polls job(id) through GraphQL until the job is in `state` (and never failed or canceled). */
  async function reaches(id: string, state: string): Promise<void> {
    const polled = await waitFor(
      async () => {
        const answer = await admin(`query($id: ID!) { job(id: $id) { state error { code } } }`, {
          id,
        });
        const now = answer.data?.job?.state ?? '';
        return now === state || ['failed', 'canceled'].includes(now) ? answer : null;
      },
      `job ${id} to reach ${state}`,
      60_000,
    );
    assert.equal(polled.data?.job?.state, state, JSON.stringify(polled));
  }

  async function domainOn(client: LibvirtClient, name: string): Promise<RemoteDomain | string> {
    return libvirtSays(async () => (await client.rpc.domainLookupByName({ name })).dom);
  }

  before(async () => {
    await storeToken(prefix, USER, { id: 'user-1', role: 'operator' });
    qemu = await LibvirtClient.connect('qemu:///system');
    testdrv = await LibvirtClient.connect(TEST_URI);
    tmp = await makeImageDir(tag);
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    const host = await rest.post('/v1/hosts', { name: 'test', uri: TEST_URI });
    assert.equal(host.status, 201, JSON.stringify(host.body));
  });

  after(async () => {
    await closeAllApps();
    for (const client of [qemu, testdrv]) {
      if (!client) continue;
      const { domains } = await client.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
      for (const dom of domains.filter((d) => d.name.startsWith(tag))) {
        await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
        await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
      }
    }
    if (qemu) {
      const { pools } = await qemu.rpc.connectListAllStoragePools({ needResults: 1, flags: 0 });
      for (const pool of pools.filter((p) => p.name.startsWith(tag))) {
        await qemu.rpc.storagePoolDestroy({ pool }).catch(() => undefined);
        await qemu.rpc.storagePoolUndefine({ pool }).catch(() => undefined);
      }
    }
    await qemu?.close();
    await testdrv?.close();
    await tmp?.remove();
    await deleteKeys(prefix);
  });

  it('defines a domain from a spec (a user may), refuses a second and bad input, and undefines it', async () => {
    const name = `${tag}-spec`;
    const [image] = await createChain(tmp.dir, [`${name}-vda`]);
    const define = `mutation($input: DefineDomainInput!) {
      defineDomain(host: "local", input: $input, wait: 30) { ${JOB} } }`;
    // Fields sent as null are fields not given: `xml: null` is no raw XML (which users may not give).
    const input = {
      name,
      memoryMiB: 64,
      vcpus: 1,
      type: 'qemu',
      xml: null,
      uuid: null,
      disks: [{ path: image, format: 'qcow2', bus: null }],
      interfaces: null,
    };
    const job = await completed(await user(define, { input }), 'defineDomain', 'domain.define');
    assert.equal(job.requestedBy, 'user-1');
    assert.equal(job.host, 'local');
    assert.equal(job.domain, name);
    const dom = await domainOn(qemu, name);
    assert.ok(typeof dom !== 'string', `libvirt has no domain ${name}: ${String(dom)}`);
    assert.equal(job.result!.uuid, job.domainUuid);
    assert.equal(job.result!.name, name);
    const { state } = await qemu.rpc.domainGetState({ dom, flags: 0 });
    assert.equal(state, 5, 'defined, shut off');
    assert.equal((await qemu.rpc.domainIsPersistent({ dom })).persistent, 1);
    const xml = (await qemu.rpc.domainGetXmlDesc({ dom, flags: 0 })).xml;
    assert.deepEqual(
      liveChain(xml, 'vda').map((c) => [c.path, c.format]),
      [[image, 'qcow2']],
    );

    assert.match(refused(await user(define, { input }), 'ALREADY_EXISTS'), /already exists/);
    refused(
      await user(define, { input: { ...input, name: `${tag}-small`, memoryMiB: 8 } }),
      'INVALID_ARGUMENT',
      'input.memoryMiB',
    );
    refused(await user(define, { input: { memoryMiB: 64, vcpus: 1 } }), 'INVALID_ARGUMENT', 'name');
    refused(
      await user(define, {
        input: { ...input, name: `${tag}-nodisk`, disks: [{ path: image }] },
      }),
      'INVALID_ARGUMENT',
      'disks.0.format',
    );
    refused(
      await user(
        `mutation($input: DefineDomainInput!) {
          defineDomain(host: "nowhere", input: $input) { id } }`,
        { input },
      ),
      'NOT_FOUND',
    );

    const undefine = `mutation($d: String!, $o: UndefineDomainOptions) {
      undefineDomain(host: "local", domain: $d, options: $o, wait: 30) { ${JOB} } }`;
    const gone = await completed(
      await user(undefine, { d: job.domainUuid, o: { nvram: null, managedSave: false } }),
      'undefineDomain',
      'domain.undefine',
    );
    assert.equal(gone.result!.changed, true);
    assert.equal(await domainOn(qemu, name), 'VIR_ERR_NO_DOMAIN');
    assert.ok(await exists(image!), 'the image stays');
    refused(await user(undefine, { d: name }), 'NOT_FOUND');
  });

  it('defines from raw XML for admins only (test driver), and undefines only a shut-off domain', async () => {
    const name = `${tag}-xml`;
    const define = `mutation($input: DefineDomainInput!) {
      defineDomain(host: "test", input: $input, wait: 30) { ${JOB} } }`;
    const xml = testDriverDomainXml(name, 96);
    assert.match(
      refused(await user(define, { input: { xml } }), 'FORBIDDEN'),
      /define domains from raw XML/,
    );
    assert.equal(await domainOn(testdrv, name), 'VIR_ERR_NO_DOMAIN', 'nothing was defined');
    refused(await admin(define, { input: { xml, name } }), 'INVALID_ARGUMENT', 'name');
    refused(await admin(define, { input: { xml: '<domain>' } }), 'INVALID_ARGUMENT', 'xml');

    const job = await completed(
      await admin(define, { input: { xml } }),
      'defineDomain',
      'domain.define',
    );
    assert.equal(job.requestedBy, 'admin');
    const dom = await domainOn(testdrv, name);
    assert.ok(typeof dom !== 'string', `libvirt has no domain ${name}: ${String(dom)}`);
    const { memory } = await testdrv.rpc.domainGetInfo({ dom });
    assert.equal(memory, BigInt(96 * 1024), 'the XML as given');

    await testdrv.rpc.domainCreateWithFlags({ dom, flags: 0 });
    const undefine = `mutation($d: String!) {
      undefineDomain(host: "test", domain: $d, wait: 30) { ${JOB} } }`;
    assert.match(refused(await admin(undefine, { d: name }), 'INVALID_STATE'), /not shut off/);
    await testdrv.rpc.domainDestroyFlags({ dom, flags: 0 });
    await completed(await admin(undefine, { d: name }), 'undefineDomain', 'domain.undefine');
    assert.equal(await domainOn(testdrv, name), 'VIR_ERR_NO_DOMAIN');
  });

  it('takes an external disk-only snapshot of a running TCG domain, waiting or not', async () => {
    const name = snapName;
    const [base] = (await createChain(tmp.dir, [`${name}-base`])) as [string];
    snapBase = base;
    await writePattern(base, 0x5a, 1);
    const { dom: defined } = await qemu.rpc.domainDefineXmlFlags({
      xml: tcgDomainXml(name, base),
      flags: 0,
    });
    const { dom } = await qemu.rpc.domainCreateWithFlags({ dom: defined, flags: 0 });
    const snapshot = `mutation($d: String!, $input: CreateSnapshotInput, $wait: Int) {
      createSnapshot(host: "local", domain: $d, input: $input, wait: $wait) { ${JOB} } }`;
    const overlay = path.join(tmp.dir, `${name}-base.s1.qcow2`);

    const job = await completed(
      await admin(snapshot, { d: name, input: { name: 's1', description: null }, wait: 30 }),
      'createSnapshot',
      'domain.snapshot',
    );
    assert.deepEqual(job.result!.overlays, [{ target: 'vda', path: overlay }]);
    const live = () => qemu.rpc.domainGetXmlDesc({ dom, flags: 0 }).then((r) => r.xml);
    assert.deepEqual(
      liveChain(await live(), 'vda').map((c) => c.path),
      [overlay, base],
      'libvirt writes to the overlay now',
    );
    assert.deepEqual(
      (await backingChain(overlay)).map((i) => i.filename),
      [overlay, base],
    );
    const [disk] = job.result!.disks as { chain: { path: string; ref: string }[] }[];
    assert.deepEqual(
      disk!.chain.map((c) => c.path),
      [overlay, base],
    );
    await qemu.rpc.domainSuspend({ dom });
    try {
      assert.ok(await hasPattern(overlay, 0x5a, 1), 'the data, read through the overlay');
    } finally {
      await qemu.rpc.domainResume({ dom });
    }

    // The overlay is an image of the domain now: no new overlay goes there.
    assert.match(
      refused(
        await admin(snapshot, { d: name, input: { disks: [{ target: 'vda', path: overlay }] } }),
        'ALREADY_EXISTS',
      ),
      /is an image of disk 'vda'/,
    );
    refused(
      await admin(snapshot, { d: name, input: { disks: [{ target: 'vdz' }] } }),
      'INVALID_ARGUMENT',
      'disks.0.target',
    );
    refused(
      await admin(snapshot, { d: name, input: { name: 'no/slash' } }),
      'INVALID_ARGUMENT',
      'input.name',
    );
    refused(await admin(snapshot, { d: `${tag}-none` }), 'NOT_FOUND');

    // Without wait, the job as it is; it finishes all the same.
    const queued = jobOf(
      await admin(snapshot, { d: name, input: { name: 's2' } }),
      'createSnapshot',
    );
    assert.ok(['queued', 'running', 'completed'].includes(queued.state), queued.state);
    await reaches(queued.id, 'completed');
    assert.equal(
      liveChain(await live(), 'vda')[0]!.path,
      path.join(tmp.dir, `${name}-base.s1.s2.qcow2`),
    );
  });

  it('merges the overlays back with startBlockJob, waits in ready, and pivots with pivotBlockJob', async () => {
    const live = async () => {
      const { dom } = await qemu.rpc.domainLookupByName({ name: snapName });
      return liveChain((await qemu.rpc.domainGetXmlDesc({ dom, flags: 0 })).xml, 'vda');
    };
    const before = await live();
    assert.equal(before.length, 3, 'two overlays on the base');
    // The base as the API names it: its ref in the live chain.
    const disks = await admin(
      `query($d: String!) { host(name: "local") { domain(name: $d) { disks { target chain { ref path } } } } }`,
      { d: snapName },
    );
    assert.equal(disks.errors, undefined, JSON.stringify(disks.errors));
    const chain = (
      disks.data as unknown as {
        host: { domain: { disks: { chain: { ref: string; path: string }[] }[] } };
      }
    ).host.domain.disks[0]!.chain;
    const baseRef = chain.find((c) => c.path === snapBase)!.ref;
    assert.equal(baseRef, `vda[${before.at(-1)!.index}]`);

    const start = `mutation($d: String!, $input: StartBlockJobInput!) {
      startBlockJob(host: "local", domain: $d, disk: "vda", input: $input) { ${JOB} } }`;
    const started = jobOf(
      await admin(start, { d: snapName, input: { type: 'commit', base: baseRef, pivot: false } }),
      'startBlockJob',
    );
    assert.equal(started.type, 'block_commit');
    await reaches(started.id, 'ready');
    assert.match(
      refused(await admin(start, { d: snapName, input: { type: 'pull' } }), 'CONFLICT'),
      /one block job per disk/,
    );
    assert.deepEqual(
      (await live()).map((c) => c.path),
      before.map((c) => c.path),
      'ready, not pivoted: the guest still writes to the top overlay',
    );

    const pivot = `mutation($id: ID!) { pivotBlockJob(id: $id, wait: 30) { ${JOB} } }`;
    const done = await completed(
      await admin(pivot, { id: started.id }),
      'pivotBlockJob',
      'block.commit',
    );
    assert.deepEqual(
      (await live()).map((c) => c.path),
      [snapBase],
      'libvirt writes to the base now',
    );
    assert.deepEqual(
      (done.result!.disk as { chain: { path: string }[] }).chain.map((c) => c.path),
      [snapBase],
    );
    const { dom } = await qemu.rpc.domainLookupByName({ name: snapName });
    await qemu.rpc.domainSuspend({ dom });
    try {
      assert.ok(await hasPattern(snapBase, 0x5a, 1), 'the data is still there');
    } finally {
      await qemu.rpc.domainResume({ dom });
    }
    refused(await admin(pivot, { id: started.id }), 'INVALID_STATE');
  });

  it('defines, starts (building), refreshes, stops and undefines a pool; creates and deletes volumes', async () => {
    const pool = `${tag}-pool`;
    const dir = path.join(tmp.dir, 'pool');
    const lookupPool = () =>
      libvirtSays(async () => (await qemu.rpc.storagePoolLookupByName({ name: pool })).pool);

    const definePool = `mutation($input: DefinePoolInput!) {
      definePool(host: "local", input: $input, wait: 30) { ${JOB} } }`;
    // Pool definitions are the admin's; an operator's definePool is refused before anything is read.
    refused(await user(definePool, { input: { name: pool, path: dir, type: null } }), 'FORBIDDEN');
    const defined = await completed(
      await admin(definePool, { input: { name: pool, path: dir, type: null } }),
      'definePool',
      'pool.define',
    );
    assert.equal((defined.result!.pool as { state: string }).state, 'inactive');
    const ref = await lookupPool();
    assert.ok(typeof ref !== 'string', `libvirt has no pool ${pool}: ${String(ref)}`);
    assert.equal((await qemu.rpc.storagePoolIsActive({ pool: ref })).active, 0);
    assert.equal(await exists(dir), false, 'defining builds nothing');
    refused(await admin(definePool, { input: { name: pool, path: dir } }), 'ALREADY_EXISTS');
    refused(
      await admin(definePool, { input: { name: `${tag}-rel`, path: 'relative' } }),
      'INVALID_ARGUMENT',
      'input.path',
    );

    const action = `mutation($a: PoolAction!, $build: Boolean) {
      poolAction(host: "local", pool: "${pool}", action: $a, build: $build, wait: 30) { ${JOB} } }`;
    refused(await admin(action, { a: 'stop', build: true }), 'INVALID_ARGUMENT', 'build');
    refused(await admin(action, { a: 'refresh' }), 'INVALID_STATE');
    await completed(await admin(action, { a: 'start', build: true }), 'poolAction', 'pool.start');
    assert.equal((await qemu.rpc.storagePoolIsActive({ pool: ref })).active, 1);
    assert.ok(await exists(dir), 'build made the directory');

    const createVolume = `mutation($input: CreateVolumeInput!, $key: String) {
      createVolume(host: "local", pool: "${pool}", input: $input, idempotencyKey: $key, wait: 30) { ${JOB} } }`;
    // Beyond GraphQL's 32-bit Int: capacityBytes is a Float.
    const big = await completed(
      await user(createVolume, { input: { name: 'big.qcow2', capacityBytes: 5 * GiB } }),
      'createVolume',
      'volume.create',
    );
    assert.equal((big.result!.volume as { capacityBytes: number }).capacityBytes, 5 * GiB);
    const { vol: bigVol } = await qemu.rpc.storageVolLookupByName({
      pool: ref,
      name: 'big.qcow2',
    });
    assert.equal((await qemu.rpc.storageVolGetInfo({ vol: bigVol })).capacity, BigInt(5 * GiB));
    const bigPath = path.join(dir, 'big.qcow2');
    const [bigInfo] = await backingChain(bigPath);
    assert.equal(bigInfo!.format, 'qcow2');
    assert.equal(bigInfo!['virtual-size'], 5 * GiB);
    refused(
      await user(createVolume, { input: { name: 'half.raw', capacityBytes: 1.5 } }),
      'INVALID_ARGUMENT',
      'input.capacityBytes',
    );
    refused(
      await user(createVolume, { input: { name: 'big.qcow2', capacityBytes: GiB } }),
      'ALREADY_EXISTS',
    );

    const over = await completed(
      await user(createVolume, {
        input: { name: 'over.qcow2', backing: { volume: 'big.qcow2', pool: null } },
      }),
      'createVolume',
      'volume.create',
    );
    const overPath = path.join(dir, 'over.qcow2');
    assert.equal((over.result!.volume as { path: string }).path, overPath);
    assert.deepEqual(
      (await backingChain(overPath)).map((i) => i.filename),
      [overPath, bigPath],
    );

    const deleteVolume = `mutation($v: String!) {
      deleteVolume(host: "local", pool: "${pool}", volume: $v, wait: 30) { ${JOB} } }`;
    assert.match(
      refused(await user(deleteVolume, { v: 'big.qcow2' }), 'INVALID_STATE'),
      /over\.qcow2/,
    );
    await completed(await user(deleteVolume, { v: 'over.qcow2' }), 'deleteVolume', 'volume.delete');
    assert.equal(await exists(overPath), false);
    assert.equal(
      await libvirtSays(() => qemu.rpc.storageVolLookupByName({ pool: ref, name: 'over.qcow2' })),
      'VIR_ERR_NO_STORAGE_VOL',
    );
    refused(await user(deleteVolume, { v: 'over.qcow2' }), 'NOT_FOUND');

    // A file put there behind libvirt's back is a volume after a refresh.
    await writeFile(path.join(dir, 'behind.raw'), Buffer.alloc(4096));
    await completed(await admin(action, { a: 'refresh' }), 'poolAction', 'pool.refresh');
    const { vols } = await qemu.rpc.storagePoolListAllVolumes({
      pool: ref,
      needResults: 1,
      flags: 0,
    });
    assert.deepEqual(vols.map((v) => v.name).sort(), ['behind.raw', 'big.qcow2']);

    const undefinePool = `mutation { undefinePool(host: "local", pool: "${pool}", wait: 30) { ${JOB} } }`;
    assert.match(refused(await admin(undefinePool), 'INVALID_STATE'), /stop it first/);
    await completed(await admin(action, { a: 'stop', build: null }), 'poolAction', 'pool.stop');
    assert.equal((await qemu.rpc.storagePoolIsActive({ pool: ref })).active, 0);
    await completed(await admin(undefinePool), 'undefinePool', 'pool.undefine');
    assert.equal(await lookupPool(), 'VIR_ERR_NO_STORAGE_POOL');
    assert.ok(await exists(bigPath), "the pool's files stay");
  });

  it('gives the same job for the same Idempotency-Key, through GraphQL and REST, and 422 for another request', async () => {
    const pool = `${tag}-idem`;
    const dir = path.join(tmp.dir, 'idem');
    await mkdir(dir);
    const key = `${tag}-key`;
    const definePool = `mutation($input: DefinePoolInput!, $key: String, $wait: Int) {
      definePool(host: "local", input: $input, idempotencyKey: $key, wait: $wait) { ${JOB} } }`;
    const first = await completed(
      await admin(definePool, { input: { name: pool, path: dir }, key, wait: 30 }),
      'definePool',
      'pool.define',
    );
    const again = jobOf(
      await admin(definePool, { input: { name: pool, path: dir }, key }),
      'definePool',
    );
    assert.equal(again.id, first.id, 'the same job, not a refusal of a pool that exists now');
    assert.equal(again.state, 'completed');
    const viaRest = await rest.post(
      '/v1/hosts/local/pools',
      { name: pool, path: dir },
      { 'idempotency-key': key },
    );
    assert.equal(viaRest.status, 202, JSON.stringify(viaRest.body));
    assert.equal(viaRest.body.id, first.id);
    refused(
      await admin(definePool, { input: { name: pool, path: `${dir}2` }, key }),
      'IDEMPOTENCY_MISMATCH',
    );
    refused(
      await admin(definePool, { input: { name: `${tag}-nokey`, path: dir }, key: '' }),
      'INVALID_ARGUMENT',
      'Idempotency-Key',
    );
    await completed(
      await admin(`mutation { undefinePool(host: "local", pool: "${pool}", wait: 30) { ${JOB} } }`),
      'undefinePool',
      'pool.undefine',
    );
  });

  it('needs a token, and checks wait as REST checks Prefer', async () => {
    // Refused before the document is read: HTTP 401, as REST.
    const anonymous = await graphql(
      t,
      null,
      `mutation { undefinePool(host: "local", pool: "${tag}-any") { id } }`,
    );
    assert.equal(anonymous.status, 401);
    assert.deepEqual(codes(anonymous.body as GraphqlBody), ['UNAUTHENTICATED']);
    refused(
      await admin(`mutation { undefinePool(host: "local", pool: "${tag}-any", wait: 61) { id } }`),
      'INVALID_ARGUMENT',
      'wait',
    );
    refused(
      await admin(`mutation { undefinePool(host: "local", pool: "${tag}-any") { id } }`),
      'NOT_FOUND',
    );
  });
});
