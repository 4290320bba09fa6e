import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import type { DiskXml } from '#src/xml/domain-xml.js';
import type { BlockCommitParams, BlockCopyParams, BlockPullParams } from '#jobs/job-types.js';
import { memberAt, parseMemberRef, recheck, refOf } from '#modules/block-jobs/block-chain.js';
import { classifyChain, expectedChain } from '#modules/block-jobs/plans/index.js';

/** A disk `vda` whose chain is `images` ([path, index], top first). */
function disk(images: [string, number | null][], chainComplete = true): DiskXml {
  return {
    target: 'vda',
    bus: 'virtio',
    device: 'disk',
    readOnly: false,
    chainComplete,
    mirror: null,
    chain: images.map(([path, index]) => ({
      index,
      format: 'qcow2',
      source: { type: 'file', path, network: null, volume: null },
    })),
  };
}

function codeOf(fn: () => unknown): { code: ErrorCode; fields: string[] } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    return { code: err.code, fields: err.fields.map((f) => f.field) };
  }
  assert.fail('no error');
}

const A = '/img/a.qcow2';
const B = '/img/b.qcow2';
const C = '/img/c.qcow2';
const D = '/img/d.qcow2';

describe('block chain references', () => {
  it('parses vda[N] for its own disk and absolute paths, and refuses anything else naming the field', () => {
    assert.deepEqual(parseMemberRef('vda[3]', 'vda', 'top'), {
      kind: 'index',
      index: 3,
      given: 'vda[3]',
    });
    assert.deepEqual(parseMemberRef('/img//x/../a.qcow2', 'vda', 'top'), {
      kind: 'path',
      path: '/img/a.qcow2',
      given: '/img//x/../a.qcow2',
    });
    for (const bad of ['vdb[3]', 'vda[-1]', 'vda[x]', 'a.qcow2', 'vda', '']) {
      assert.deepEqual(
        codeOf(() => parseMemberRef(bad, 'vda', 'base')),
        { code: ErrorCode.INVALID_ARGUMENT, fields: ['base'] },
        bad,
      );
    }
  });

  it('resolves a reference against the live chain by index or path; one naming no image is a 409 naming the field', () => {
    const d = disk([
      [D, 1],
      [C, 2],
      [B, 3],
      [A, 4],
    ]);
    assert.equal(memberAt(d, parseMemberRef('vda[3]', 'vda', 'top'), 'top').depth, 2);
    assert.equal(memberAt(d, parseMemberRef(C, 'vda', 'top'), 'top').image.index, 2);
    assert.deepEqual(
      codeOf(() => memberAt(d, parseMemberRef('vda[9]', 'vda', 'top'), 'top')),
      { code: ErrorCode.INVALID_STATE, fields: ['top'] },
    );
  });

  it('refuses at start a reference whose index now names another image (the 1519745 trap)', () => {
    const accepted = disk([
      [D, 1],
      [C, 2],
      [B, 3],
      [A, 4],
    ]);
    const ref = refOf(memberAt(accepted, parseMemberRef('vda[1]', 'vda', 'top'), 'top'), 'vda[1]');
    // A libvirt that renumbers after a pivot: vda[1] is now C, D is gone.
    const now = disk([
      [C, 1],
      [B, 2],
      [A, 3],
    ]);
    assert.equal(codeOf(() => recheck(now, ref, 'top')).code, ErrorCode.CONFLICT);
    // Stable indexes (libvirt 9): still the same image, found at its new depth.
    const stable = disk([
      [D, 1],
      [B, 3],
      [A, 4],
    ]);
    const c = refOf(memberAt(accepted, parseMemberRef('vda[2]', 'vda', 'base'), 'base'), 'vda[2]');
    assert.equal(codeOf(() => recheck(stable, c, 'base')).code, ErrorCode.CONFLICT);
    const b = refOf(memberAt(accepted, parseMemberRef(B, 'vda', 'base'), 'base'), B);
    assert.equal(recheck(stable, b, 'base').depth, 1);
  });
});

describe('what a block job leaves', () => {
  const start = [D, C, B, A];
  const ref = (path: string, depth: number) => ({ given: null, path, index: null, depth });
  const commit = (top: string, base: string, active: boolean): BlockCommitParams => ({
    disk: 'vda',
    top: ref(top, start.indexOf(top)),
    base: ref(base, start.indexOf(base)),
    active,
    shallow: false,
    deleteCommittedImages: false,
    bandwidth: 0,
    pivot: true,
  });

  it('computes the chain each job leaves', () => {
    assert.deepEqual(expectedChain('block.commit', commit(D, B, true), start), [B, A]);
    assert.deepEqual(expectedChain('block.commit', commit(C, A, false), start), [D, A]);
    assert.deepEqual(expectedChain('block.commit', commit(C, B, false), start), [D, B, A]);
    const pull = (base: string | null): BlockPullParams => ({
      disk: 'vda',
      top: ref(D, 0),
      base: base === null ? null : ref(base, start.indexOf(base)),
      bandwidth: 0,
    });
    assert.deepEqual(expectedChain('block.pull', pull(null), start), [D]);
    assert.deepEqual(expectedChain('block.pull', pull(B), start), [D, B, A]);
    const copy = (shallow: boolean): BlockCopyParams => ({
      disk: 'vda',
      source: ref(D, 0),
      destination: '/img/copy.qcow2',
      format: 'qcow2',
      shallow,
      reuseExisting: false,
      bandwidth: 0,
      pivot: true,
    });
    assert.deepEqual(expectedChain('block.copy', copy(true), start), ['/img/copy.qcow2', C, B, A]);
    assert.deepEqual(expectedChain('block.copy', copy(false), start), ['/img/copy.qcow2']);
  });

  it('tells applied, unchanged and neither apart from the live chain', () => {
    const p = commit(C, A, false);
    assert.equal(classifyChain('block.commit', p, start, [D, A]), 'applied');
    assert.equal(classifyChain('block.commit', p, start, start), 'unchanged');
    // Applied twice would have merged more: not what this job leaves.
    assert.equal(classifyChain('block.commit', p, start, [A]), 'unexpected');
    assert.equal(classifyChain('block.commit', commit(D, B, true), start, [B, A]), 'applied');
    assert.equal(classifyChain('block.commit', commit(D, B, true), start, [C, B, A]), 'unexpected');
  });
});
