/**
 * The README's flow as an integrator writes it against the GraphQL API, with
 * the operations in this folder and the types @graphql-codegen generates for
 * them from openapi/schema.graphql (into ./generated/, never committed): list
 * hosts, define and start a pool, create a volume, define and start a domain
 * (QEMU under TCG) on it, take a disk-only snapshot, commit the overlay back
 * with a pivot, read the chain, and tear everything down. No casts and no
 * `any`: every result is typed by its document.
 *
 * Configuration (environment): VG_URL (the gateway's /graphql), VG_TOKEN (an
 * admin token: pools need one), VG_HOST (the libvirt host, default local),
 * VG_NAME (the name of the pool, volume and domain), VG_POOL_PATH (a directory
 * that does not exist yet: the pool's build makes it). It prints one JSON
 * line per step on stdout; with VG_PAUSE=1 it waits for a line on stdin after
 * the commit, so a caller can look at the images before they are deleted.
 */
import { createInterface } from 'node:readline';
import { graphqlExecutor } from './executor.js';
import {
  CreateSnapshotDocument,
  CreateVolumeDocument,
  DefineDomainDocument,
  DefinePoolDocument,
  DeleteVolumeDocument,
  DomainActionDocument,
  DomainDisksDocument,
  HostsDocument,
  JobDocument,
  PoolActionDocument,
  PoolDocument,
  StartBlockJobDocument,
  UndefineDomainDocument,
  UndefinePoolDocument,
  type DomainDisksQuery,
  type JobFieldsFragment,
  type JobType,
} from './generated/graphql.js';

function setting(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

const execute = graphqlExecutor(setting('VG_URL'), setting('VG_TOKEN'));
const host = setting('VG_HOST', 'local');
const name = setting('VG_NAME');
const poolPath = setting('VG_POOL_PATH');
const volumeName = `${name}.qcow2`;
const MiB = 1024 * 1024;

/** One line of the report on stdout. */
function report(step: string, facts: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ step, ...facts })}\n`);
}

const FINAL_STATES: ReadonlySet<string> = new Set(['completed', 'failed', 'canceled']);

/** The job once it finished (mutations wait up to their `wait`; a longer one is followed), which must be completed and of `type`. */
async function completed(job: JobFieldsFragment, type: JobType): Promise<JobFieldsFragment> {
  let now = job;
  for (let i = 0; !FINAL_STATES.has(now.state); i++) {
    if (i > 600) throw new Error(`job ${now.id} (${now.type}) is still ${now.state}`);
    await new Promise((resolve) =>
      // eslint-disable-next-line no-restricted-syntax -- a client's own pause between polls of a job that outlived its mutation's `wait`: user code, not a test synchronising
      setTimeout(resolve, 100),
    );
    const polled = (await execute(JobDocument, { id: now.id })).job;
    if (polled === null) throw new Error(`job ${now.id} is gone`);
    now = polled;
  }
  if (now.state !== 'completed') {
    throw new Error(
      `job ${now.id} (${now.type}) ${now.state}: ${now.error?.code} ${now.error?.message}`,
    );
  }
  if (now.type !== type) throw new Error(`job ${now.id} is a ${now.type}, not a ${type}`);
  return now;
}

type DiskView = NonNullable<NonNullable<DomainDisksQuery['host']>['domain']>['disks'][number];

async function domainView(): Promise<NonNullable<NonNullable<DomainDisksQuery['host']>['domain']>> {
  const domain = (await execute(DomainDisksDocument, { host, domain: name })).host?.domain;
  if (!domain) throw new Error(`no domain ${name} on ${host}`);
  return domain;
}

async function vda(): Promise<DiskView> {
  const disk = (await domainView()).disks.find((d) => d.target === 'vda');
  if (!disk) throw new Error(`${name} has no vda`);
  return disk;
}

const paths = (disk: DiskView): (string | null)[] => disk.chain.map((image) => image.path);

async function volumes() {
  const pool = (await execute(PoolDocument, { host, pool: name })).host?.pool;
  if (!pool) throw new Error(`no pool ${name} on ${host}`);
  return pool.volumes?.edges.map((e) => e.node) ?? [];
}

async function pause(): Promise<void> {
  if (process.env.VG_PAUSE !== '1') return;
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
}

async function main(): Promise<void> {
  const hosts = (await execute(HostsDocument, {})).hosts.edges.map((e) => e.node);
  report('hosts', {
    hosts: hosts.map((h) => ({ name: h.name, state: h.connection.state })),
  });
  if (!hosts.some((h) => h.name === host)) throw new Error(`no host ${host}`);

  await completed(
    (await execute(DefinePoolDocument, { host, input: { name, path: poolPath, type: 'dir' } }))
      .definePool,
    'pool_define',
  );
  await completed(
    (await execute(PoolActionDocument, { host, pool: name, action: 'start', build: true }))
      .poolAction,
    'pool_start',
  );
  report('pool', { name, path: poolPath });

  await completed(
    (
      await execute(CreateVolumeDocument, {
        host,
        pool: name,
        input: { name: volumeName, format: 'qcow2', capacityBytes: 64 * MiB },
      })
    ).createVolume,
    'volume_create',
  );
  const volume = (await volumes()).find((v) => v.name === volumeName);
  if (!volume?.path) throw new Error(`the pool shows no ${volumeName}`);
  report('volume', { name: volume.name, path: volume.path, format: volume.format });

  await completed(
    (
      await execute(DefineDomainDocument, {
        host,
        input: {
          name,
          type: 'qemu',
          memoryMiB: 64,
          vcpus: 1,
          disks: [{ pool: name, volume: volumeName, bus: 'virtio' }],
        },
      })
    ).defineDomain,
    'domain_define',
  );
  await completed(
    (await execute(DomainActionDocument, { host, domain: name, action: 'start' })).domainAction,
    'domain_start',
  );
  const started = await vda();
  report('started', {
    state: (await domainView()).state,
    bus: started.bus,
    device: started.device,
    chain: paths(started),
  });

  // Recorded in libvirt's snapshot metadata too, so the domain lists it.
  const snapshot = await completed(
    (
      await execute(CreateSnapshotDocument, {
        host,
        domain: name,
        input: { name: 's1', metadata: true },
      })
    ).createSnapshot,
    'domain_snapshot',
  );
  const snapshotted = await domainView();
  const overlaid = snapshotted.disks.find((d) => d.target === 'vda');
  report('snapshot', {
    snapshots: snapshotted.snapshots.map((s) => ({
      name: s.name,
      state: s.state,
      disks: s.disks.map((d) => ({ target: d.target, snapshot: d.snapshot, path: d.path })),
    })),
    chain: overlaid ? paths(overlaid) : null,
    // The job's own result: the union's member for a snapshot.
    overlays: snapshot.result?.__typename === 'SnapshotResult' ? snapshot.result.overlays : null,
  });

  // An active commit (no top): the overlay goes into its base and the guest pivots to it.
  const commit = await completed(
    (
      await execute(StartBlockJobDocument, {
        host,
        domain: name,
        disk: 'vda',
        input: { type: 'commit', pivot: true },
      })
    ).startBlockJob,
    'block_commit',
  );
  const committed = await vda();
  report('committed', {
    job: { id: commit.id, type: commit.type, state: commit.state, disk: commit.disk },
    chain: committed.chain.map((image) => ({
      depth: image.depth,
      ref: image.ref,
      type: image.type,
      path: image.path,
      format: image.format,
    })),
    chainComplete: committed.chainComplete,
    blockJob: committed.blockJob?.type ?? null,
    mirror: committed.mirror?.path ?? null,
    // The job's own result, narrowed to the commit's member of the union: the chain it left.
    result:
      commit.result?.__typename === 'CommitResult'
        ? {
            outcome: commit.result.outcome,
            pivoted: commit.result.pivoted,
            chainBefore: commit.result.chainBefore,
            chain: commit.result.disk.chain.map((image) => ({ path: image.path, ref: image.ref })),
          }
        : null,
  });
  await pause();

  await completed(
    (await execute(DomainActionDocument, { host, domain: name, action: 'destroy' })).domainAction,
    'domain_destroy',
  );
  await completed(
    (
      await execute(UndefineDomainDocument, {
        host,
        domain: name,
        options: { snapshotsMetadata: true },
      })
    ).undefineDomain,
    'domain_undefine',
  );
  // The overlay the snapshot made is a file of the pool: a refresh shows it as a volume.
  await completed(
    (await execute(PoolActionDocument, { host, pool: name, action: 'refresh' })).poolAction,
    'pool_refresh',
  );
  const deleted: string[] = [];
  for (let left = await volumes(); left.length > 0; left = await volumes()) {
    // A volume another one is backed by is refused: delete the ones nothing is backed by first.
    const backing = new Set(left.map((v) => v.backingStore?.path));
    const free = left.filter((v) => !backing.has(v.path));
    if (free.length === 0)
      throw new Error(`volumes backing each other: ${left.map((v) => v.name)}`);
    for (const v of free) {
      await completed(
        (await execute(DeleteVolumeDocument, { host, pool: name, volume: v.name })).deleteVolume,
        'volume_delete',
      );
      deleted.push(v.name);
    }
  }
  await completed(
    (await execute(PoolActionDocument, { host, pool: name, action: 'stop' })).poolAction,
    'pool_stop',
  );
  await completed(
    (await execute(UndefinePoolDocument, { host, pool: name })).undefinePool,
    'pool_undefine',
  );
  report('torn-down', { volumesDeleted: deleted });
}

main().then(
  () => report('done'),
  (err: unknown) => {
    report('failed', { error: err instanceof Error ? err.message : String(err) });
    process.exitCode = 1;
  },
);
