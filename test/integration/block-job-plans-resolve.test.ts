/**
 * The commit plan's resolve (modules/block-jobs/plans/commit.plan.ts) past
 * its checks: the job's parameters, once libvirt (the test driver, read-only)
 * has said that no other domain and no volume depends on the images. The
 * refusals before that point are test/unit/block-job-plans.test.ts's.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LibvirtClient } from '#src/libvirt/index.js';
import type { DiskXml } from '#src/xml/domain-xml.js';
import type { StartBlockJobDto } from '#modules/block-jobs/dto/start-block-job.dto.js';
import { planOf } from '#modules/block-jobs/plans/index.js';

/** Paths no domain or volume of the test driver names. */
const DIR = `/vgtest-plans-${process.pid}-${randomBytes(4).toString('hex')}`;
const A = `${DIR}/a.qcow2`;
const B = `${DIR}/b.qcow2`;
const C = `${DIR}/c.qcow2`;
const D = `${DIR}/d.qcow2`;

/** D (vda[1], the top) over C over B over A (vda[4]). */
const disk: DiskXml = {
  target: 'vda',
  bus: 'virtio',
  device: 'disk',
  readOnly: false,
  chainComplete: true,
  mirror: null,
  chain: [D, C, B, A].map((path, i) => ({
    index: i + 1,
    format: 'qcow2',
    source: { type: 'file', path, network: null, volume: null },
  })),
};

describe('commit plan, resolved against libvirt', () => {
  let client: LibvirtClient;
  const plan = planOf('block.commit');
  const dom = { name: 'vgtest-plans', uuid: randomBytes(16), id: -1 };

  before(async () => {
    client = await LibvirtClient.connect('test+unix:///default', { readOnly: true });
  });

  after(async () => {
    await client.close();
  });

  function resolve(fields: Partial<StartBlockJobDto>) {
    const dto = fields as StartBlockJobDto;
    return plan.resolve({ client, dom, disk, disks: [disk], dto }, plan.parse('vda', dto));
  }

  const ref = (path: string, given: string | null = null) => {
    const depth = [D, C, B, A].indexOf(path);
    return { given, path, index: depth + 1, depth };
  };

  it('commits the active image into the bottom of the chain by default, ending with a pivot', async () => {
    assert.deepEqual(await resolve({}), {
      disk: 'vda',
      top: ref(D),
      base: ref(A),
      active: true,
      shallow: false,
      deleteCommittedImages: false,
      bandwidth: 0,
      pivot: true,
    });
  });

  it('takes the image right below top as base when shallow', async () => {
    assert.deepEqual(await resolve({ shallow: true }), {
      disk: 'vda',
      top: ref(D),
      base: ref(C),
      active: true,
      shallow: true,
      deleteCommittedImages: false,
      bandwidth: 0,
      pivot: true,
    });
    const below = await resolve({ top: 'vda[2]', base: B, shallow: true });
    assert.deepEqual([below.top, below.base, below.active], [ref(C, 'vda[2]'), ref(B, B), false]);
  });

  it('keeps what the request says: no pivot, deleted images, a bandwidth', async () => {
    const active = await resolve({ pivot: false, bandwidth: 1 << 20 });
    assert.deepEqual([active.active, active.pivot, active.bandwidth], [true, false, 1 << 20]);
    const below = await resolve({ top: C, base: 'vda[4]', deleteCommittedImages: true });
    assert.deepEqual(below, {
      disk: 'vda',
      top: ref(C, C),
      base: ref(A, 'vda[4]'),
      active: false,
      shallow: false,
      deleteCommittedImages: true,
      bandwidth: 0,
      pivot: true,
    });
  });
});
