/**
 * The seed scenario, through the RPC client alone, on a real TCG domain:
 * a 3-image qcow2 chain, an active commit to READY and a pivot, the chain read
 * back against qemu-img, the BLOCK_JOB_2 events, then a non-active commit whose
 * top and base are named `vda[N]` as the live XML indexes them after the pivot.
 * Every layer carries a data pattern that must still read back at the end.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  BlockCopyParam,
  BlockJobStatus,
  DomainBlockCommitFlags,
  DomainBlockCopyFlags,
  DomainBlockJobAbortFlags,
  DomainBlockJobType,
  DomainEventId,
  DomainEventLifecycle,
  DomainSnapshotCreateFlags,
  LibvirtClient,
  TypedParamType,
  type DomainEvent,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import {
  copyDestinationXml,
  diskSnapshotXml,
  liveChain,
  tcgDomainXml,
  type ChainMember,
} from '../support/domain-xml.js';
import {
  backingChain,
  createChain,
  hasPattern,
  makeImageDir,
  writePattern,
} from '../support/qemu-images.js';
import { waitFor } from '../support/wait.js';

type BlockJobEvent = Extract<DomainEvent, { kind: 'blockJob' }>;

/** Collects BLOCK_JOB_2 events for one domain and lets a test wait for a given one. */
class BlockJobEvents {
  readonly seen: BlockJobEvent[] = [];

  constructor(client: LibvirtClient, uuid: Buffer) {
    client.on('domainEvent', (e) => {
      if (e.kind === 'blockJob' && e.dom.uuid.equals(uuid)) this.seen.push(e);
    });
  }

  async next(disk: string, status: number, timeoutMs = 30_000): Promise<BlockJobEvent> {
    return waitFor(
      () => this.seen.find((e) => e.disk === disk && e.status === status),
      `block job event ${status} on ${disk}`,
      timeoutMs,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; saw ${JSON.stringify(this.seen)}`);
    });
  }

  clear(): void {
    this.seen.length = 0;
  }
}

const MiB = 1;
const PATTERNS = { base: 0x11, mid: 0x22, top: 0x33 } as const;
const OFFSETS = { base: 0 * MiB, mid: 2 * MiB, top: 4 * MiB } as const;

/**
 * Reads every layer's pattern back through `image`. The domain is paused around
 * the reads: pausing makes QEMU flush its qcow2 metadata to the files.
 */
async function assertAllPatterns(
  client: LibvirtClient,
  dom: RemoteDomain,
  image: string,
  also?: () => Promise<void>,
): Promise<void> {
  await client.rpc.domainSuspend({ dom });
  try {
    for (const layer of ['base', 'mid', 'top'] as const) {
      assert.ok(
        await hasPattern(image, PATTERNS[layer], OFFSETS[layer]),
        `${layer}'s data reads back through ${image}`,
      );
    }
    await also?.();
  } finally {
    await client.rpc.domainResume({ dom });
  }
}

async function assertChainMatchesQemuImg(chain: ChainMember[]): Promise<void> {
  const qemu = await backingChain(chain[0]!.path);
  assert.deepEqual(
    chain.map((m) => m.path),
    qemu.map((i) => i.filename),
    'libvirt live chain equals qemu-img info --backing-chain',
  );
  assert.ok(qemu.every((i) => i.format === 'qcow2'));
  assert.ok(
    chain.every((m) => m.index !== null),
    'every live chain member carries an index',
  );
}

for (const uri of ['qemu:///system', 'qemu+tcp://127.0.0.1/system']) {
  describe(`block commit with pivot on a TCG domain over ${uri}`, () => {
    let client: LibvirtClient;
    let images: Awaited<ReturnType<typeof makeImageDir>>;
    let dom: RemoteDomain;
    let events: BlockJobEvents;
    const lifecycle: Extract<DomainEvent, { kind: 'lifecycle' }>[] = [];
    let base: string, mid: string, top: string;
    const name = `vg-bj-${randomUUID().slice(0, 8)}`;

    const readChain = async (): Promise<ChainMember[]> =>
      liveChain((await client.rpc.domainGetXmlDesc({ dom, flags: 0 })).xml, 'vda');

    before(async () => {
      images = await makeImageDir(name);
      [base, mid, top] = (await createChain(images.dir, ['base', 'mid', 'top'])) as [
        string,
        string,
        string,
      ];
      await writePattern(base, PATTERNS.base, OFFSETS.base);
      await writePattern(mid, PATTERNS.mid, OFFSETS.mid);
      await writePattern(top, PATTERNS.top, OFFSETS.top);
      client = await LibvirtClient.connect(uri);
      dom = (await client.rpc.domainDefineXmlFlags({ xml: tcgDomainXml(name, top), flags: 0 })).dom;
      events = new BlockJobEvents(client, dom.uuid);
      await client.domainEventRegisterAny(DomainEventId.BLOCK_JOB_2, dom);
      await client.domainEventRegisterAny(DomainEventId.LIFECYCLE, dom);
      client.on('domainEvent', (e) => {
        if (e.kind === 'lifecycle' && e.dom.uuid.equals(dom.uuid)) lifecycle.push(e);
      });
      dom = (await client.rpc.domainCreateWithFlags({ dom, flags: 0 })).dom;
    });

    after(async () => {
      try {
        await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
        await client.rpc.domainUndefineFlags({ dom, flags: 0 });
      } finally {
        await client.close();
        await images.remove();
      }
    });

    it('reports the start as a lifecycle event', async () => {
      // QEMU domains start paused and are resumed: RESUMED may come first.
      const event = await waitFor(
        () => lifecycle.find((e) => e.event === DomainEventLifecycle.STARTED),
        'a STARTED lifecycle event',
        10_000,
      ).catch((err: Error) =>
        assert.fail(
          `${err.message}; lifecycle events seen: ${JSON.stringify(lifecycle.map((e) => [e.event, e.detail]))}`,
        ),
      );
      assert.equal(event.detail, 0, 'STARTED_BOOTED');
    });

    it('reads the 3-image chain as libvirt and qemu-img see it', async () => {
      const chain = await readChain();
      assert.deepEqual(
        chain.map((m) => m.path),
        [top, mid, base],
      );
      await assertChainMatchesQemuImg(chain);
    });

    it('runs an active commit to READY, pivots, and re-reads the chain', async () => {
      const before = await readChain();
      const midIndex = before[1]!.index!;
      events.clear();
      await client.rpc.domainBlockCommit({
        dom,
        disk: 'vda',
        base: `vda[${midIndex}]`,
        top: null,
        bandwidth: 0n,
        flags: DomainBlockCommitFlags.ACTIVE,
      });
      const ready = await events.next('vda', BlockJobStatus.READY);
      assert.equal(ready.type, DomainBlockJobType.ACTIVE_COMMIT);
      const info = await client.rpc.domainGetBlockJobInfo({ dom, path: 'vda', flags: 0 });
      assert.equal(info.found, 1);
      assert.equal(info.type, DomainBlockJobType.ACTIVE_COMMIT);
      assert.equal(info.cur, info.end, 'a ready job has copied everything');

      await client.rpc.domainBlockJobAbort({
        dom,
        path: 'vda',
        flags: DomainBlockJobAbortFlags.PIVOT,
      });
      const completed = await events.next('vda', BlockJobStatus.COMPLETED);
      assert.equal(completed.type, DomainBlockJobType.ACTIVE_COMMIT);
      assert.equal(
        (await client.rpc.domainGetBlockJobInfo({ dom, path: 'vda', flags: 0 })).found,
        0,
      );

      const after = await readChain();
      assert.deepEqual(
        after.map((m) => m.path),
        [mid, base],
        'the former base of the commit is now the top',
      );
      // libvirt 9 keeps an image's index across the pivot: the new top is still vda[midIndex].
      assert.equal(after[0]!.index, midIndex);
      assert.notEqual(after[0]!.index, before[0]!.index);
      await assertChainMatchesQemuImg(after);
      await assertAllPatterns(client, dom, mid);
    });

    it('commits by vda[N] references taken from the live chain after the pivot', async () => {
      const overlay = path.join(images.dir, 'snap1.qcow2');
      await client.rpc.domainSnapshotCreateXml({
        dom,
        xmlDesc: diskSnapshotXml('snap1', overlay),
        flags: DomainSnapshotCreateFlags.DISK_ONLY | DomainSnapshotCreateFlags.NO_METADATA,
      });
      const before = await readChain();
      assert.deepEqual(
        before.map((m) => m.path),
        [overlay, mid, base],
      );
      await assertChainMatchesQemuImg(before);
      const [, topMember, baseMember] = before as [ChainMember, ChainMember, ChainMember];

      events.clear();
      await client.rpc.domainBlockCommit({
        dom,
        disk: 'vda',
        base: `vda[${baseMember.index}]`,
        top: `vda[${topMember.index}]`,
        bandwidth: 0n,
        flags: 0,
      });
      const completed = await events.next('vda', BlockJobStatus.COMPLETED);
      assert.equal(completed.type, DomainBlockJobType.COMMIT);

      const after = await readChain();
      assert.deepEqual(
        after.map((m) => m.path),
        [overlay, base],
        'mid was merged into base, and only mid left the chain',
      );
      assert.equal(after[0]!.index, before[0]!.index, 'the active layer kept its index');
      assert.equal(after[1]!.index, baseMember.index, 'the base kept its index');
      await assertChainMatchesQemuImg(after);
      await assertAllPatterns(client, dom, overlay, async () => {
        // the data that lived only in mid and top now lives in base itself
        assert.ok(await hasPattern(base, PATTERNS.mid, OFFSETS.mid));
        assert.ok(await hasPattern(base, PATTERNS.top, OFFSETS.top));
      });
    });

    it('copies the whole chain with typed-parameter bandwidth, adjusts the speed, and pivots', async () => {
      const dest = path.join(images.dir, 'copy.qcow2');
      events.clear();
      await client.rpc.domainBlockCopy({
        dom,
        path: 'vda',
        destxml: copyDestinationXml(dest),
        params: [
          {
            field: BlockCopyParam.BANDWIDTH,
            value: { type: TypedParamType.ullong, value: 256n << 20n },
          },
        ],
        // a persistent domain needs TRANSIENT_JOB (libvirt 9.0: "domain is not transient" otherwise)
        flags: DomainBlockCopyFlags.TRANSIENT_JOB,
      });
      await client.rpc.domainBlockJobSetSpeed({ dom, path: 'vda', bandwidth: 512n, flags: 0 });
      const ready = await events.next('vda', BlockJobStatus.READY);
      assert.equal(ready.type, DomainBlockJobType.COPY);
      const info = await client.rpc.domainGetBlockJobInfo({ dom, path: 'vda', flags: 0 });
      assert.equal(info.type, DomainBlockJobType.COPY);
      assert.equal(info.bandwidth, 512n, 'set-speed took effect (MiB/s)');
      const indexesBefore = new Set((await readChain()).map((m) => m.index));
      await client.rpc.domainBlockJobAbort({
        dom,
        path: 'vda',
        flags: DomainBlockJobAbortFlags.PIVOT,
      });
      await events.next('vda', BlockJobStatus.COMPLETED);
      const after = await readChain();
      assert.deepEqual(
        after.map((m) => m.path),
        [dest],
        'a full copy has no backing chain',
      );
      assert.ok(!indexesBefore.has(after[0]!.index), 'the copy got an index of its own');
      await assertChainMatchesQemuImg(after);
      await assertAllPatterns(client, dom, dest);
    });

    it('pulls a backing image into its overlay, by block pull and by block rebase', async () => {
      for (const [n, pull] of [
        [2, () => client.rpc.domainBlockPull({ dom, path: 'vda', bandwidth: 0n, flags: 0 })],
        [
          3,
          () =>
            client.rpc.domainBlockRebase({ dom, path: 'vda', base: null, bandwidth: 0n, flags: 0 }),
        ],
      ] as const) {
        const overlay = path.join(images.dir, `snap${n}.qcow2`);
        await client.rpc.domainSnapshotCreateXml({
          dom,
          xmlDesc: diskSnapshotXml(`snap${n}`, overlay),
          flags: DomainSnapshotCreateFlags.DISK_ONLY | DomainSnapshotCreateFlags.NO_METADATA,
        });
        assert.equal((await readChain()).length, 2);
        events.clear();
        await pull();
        const done = await events.next('vda', BlockJobStatus.COMPLETED);
        assert.equal(done.type, DomainBlockJobType.PULL);
        const after = await readChain();
        assert.deepEqual(
          after.map((m) => m.path),
          [overlay],
        );
        await assertChainMatchesQemuImg(after);
        await assertAllPatterns(client, dom, overlay);
      }
    });
  });
}
