import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import type { DiskXml } from '#src/xml/domain-xml.js';
import type { BlockCommitParams, BlockCopyParams, BlockPullParams } from '#jobs/job-types.js';
import {
  chainPaths,
  libvirtRef,
  memberAt,
  parseMemberRef,
  recheck,
  refOf,
  sameChain,
  usableChain,
} from '#modules/block-jobs/block-chain.js';
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

describe('block chain rules, case by case', () => {
  const NET = { type: 'network', path: null, network: null, volume: null };

  function refusalOf(fn: () => unknown): AppError {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof AppError, String(err));
      return err;
    }
    assert.fail('no error');
  }

  it('takes vda[N] only whole: no prefix, no suffix, up to 9 digits, names of up to 32 characters', () => {
    assert.deepEqual(parseMemberRef('vda[12]', 'vda', 'top'), {
      kind: 'index',
      index: 12,
      given: 'vda[12]',
    });
    assert.equal(parseMemberRef('vda[123456789]', 'vda', 'top').kind, 'index');
    const long = 'x'.repeat(32);
    assert.equal(parseMemberRef(`${long}[1]`, long, 'top').kind, 'index');
    for (const bad of ['a/vda[3]', 'vda[3]x', 'vda[1234567890]', 'vda[]']) {
      const err = refusalOf(() => parseMemberRef(bad, 'vda', 'top'));
      assert.equal(
        err.message,
        `top: '${bad}' is neither vda[N] (libvirt's index of an image of this disk's live chain) nor an absolute path`,
      );
    }
    assert.equal(
      refusalOf(() => parseMemberRef(`${'x'.repeat(33)}[1]`, 'x'.repeat(33), 'top')).code,
      ErrorCode.INVALID_ARGUMENT,
    );
    assert.equal(
      refusalOf(() => parseMemberRef('vdb[3]', 'vda', 'base')).message,
      "base: 'vdb[3]' names disk 'vdb', not 'vda'",
    );
  });

  it('says which images the live chain has when a reference names none', () => {
    const d = disk([
      [D, 1],
      [C, null],
    ]);
    d.chain.push({ index: 5, format: 'raw', source: NET });
    const err = refusalOf(() => memberAt(d, parseMemberRef('vda[9]', 'vda', 'top'), 'top'));
    const message = `'vda[9]' names no image of the live chain of disk 'vda' (now: vda[1] ${D}, ? ${C}, vda[5] )`;
    assert.equal(err.code, ErrorCode.INVALID_STATE);
    assert.equal(err.message, `top: ${message}`);
    assert.deepEqual(err.fields, [{ field: 'top', message }]);
    // an image without a path never matches a path, and does not stop the search
    const netFirst = disk([[D, 1]]);
    netFirst.chain.unshift({ index: 5, format: 'raw', source: NET });
    assert.equal(memberAt(netFirst, parseMemberRef(D, 'vda', 'top'), 'top').depth, 1);
  });

  it('finds a chain usable for block jobs only when complete and local', () => {
    const ok = disk([
      [D, 1],
      [C, 2],
    ]);
    assert.equal(usableChain(ok), ok.chain);
    const empty = refusalOf(() => usableChain(disk([])));
    assert.deepEqual(
      [empty.code, empty.message],
      [ErrorCode.INVALID_STATE, "disk 'vda' has no image"],
    );
    const unknown = refusalOf(() => usableChain(disk([[D, null]], false)));
    assert.equal(unknown.code, ErrorCode.INVALID_STATE);
    assert.match(unknown.message, /^the backing chain of disk 'vda' is not known/);
    const remote = disk([[D, 1]]);
    remote.chain.push({ index: 2, format: 'raw', source: NET });
    const r = refusalOf(() => usableChain(remote));
    assert.equal(r.code, ErrorCode.UNSUPPORTED);
    assert.match(r.message, /^disk 'vda' has images that are not local files or block devices/);
    assert.deepEqual(chainPaths(remote), [D, '']);
  });

  it('names a member to libvirt by its index when it has one, else by its path', () => {
    const d = disk([
      [D, 1],
      [C, null],
    ]);
    assert.equal(libvirtRef('vda', memberAt(d, parseMemberRef(D, 'vda', 'top'), 'top')), 'vda[1]');
    assert.equal(libvirtRef('vda', memberAt(d, parseMemberRef(C, 'vda', 'top'), 'top')), C);
  });

  it('rechecks an index reference by index, and a path reference (or one given as a path) by path', () => {
    const accepted = disk([
      [D, 1],
      [C, 2],
      [B, 3],
    ]);
    const byIndex = refOf(
      memberAt(accepted, parseMemberRef('vda[2]', 'vda', 'base'), 'base'),
      'vda[2]',
    );
    // renumbered: vda[2] names B now, C is still in the chain at vda[3]
    const renumbered = disk([
      [D, 1],
      [B, 2],
      [C, 3],
    ]);
    const err = refusalOf(() => recheck(renumbered, byIndex, 'base'));
    assert.equal(err.code, ErrorCode.CONFLICT);
    assert.equal(
      err.message,
      `the chain of disk 'vda' changed since the job was accepted: base 'vda[2]' now names ${B}, not ${C}`,
    );
    // resolved without a reference given (a default): by its path, wherever it is now
    const byDefault = refOf(memberAt(accepted, parseMemberRef(C, 'vda', 'base'), 'base'), null);
    assert.equal(recheck(renumbered, byDefault, 'base').depth, 2);
    const byPath = refOf(memberAt(accepted, parseMemberRef(C, 'vda', 'base'), 'base'), C);
    assert.equal(recheck(renumbered, byPath, 'base').depth, 2);
    // gone: CONFLICT, saying what was asked for and what the chain is now
    const gone = refusalOf(() => recheck(disk([[D, 1]]), byDefault, 'base'));
    assert.equal(gone.code, ErrorCode.CONFLICT);
    assert.equal(
      gone.message,
      `the chain of disk 'vda' changed since the job was accepted: base: '${C}' names no image of the live chain of disk 'vda' (now: vda[1] ${D})`,
    );
  });

  it('compares chains image by image', () => {
    assert.equal(sameChain([D, C], [D, C]), true);
    assert.equal(sameChain([D, C], [D, B]), false);
    assert.equal(sameChain([D, C], [B, C]), false);
    assert.equal(sameChain([D], [D, C]), false);
    assert.equal(sameChain([], []), true);
    // a chain of the expected length that is not the expected one
    const start = [D, C, B, A];
    const p: BlockCommitParams = {
      disk: 'vda',
      top: { given: null, path: C, index: null, depth: 1 },
      base: { given: null, path: A, index: null, depth: 3 },
      active: false,
      shallow: false,
      deleteCommittedImages: false,
      bandwidth: 0,
      pivot: true,
    };
    assert.equal(classifyChain('block.commit', p, start, [D, B]), 'unexpected');
  });
});
