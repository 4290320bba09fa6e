/**
 * The block-job plans' pure steps (modules/block-jobs/plans): what a request
 * may say (parse), what it means against the live chain where no libvirt
 * call is needed to tell (resolve: pull entirely, commit's checks before it
 * asks libvirt who else uses the images), the checks at job start (prepare,
 * up to the libvirt call it returns) and the job's shape. The libvirt calls
 * themselves are the e2e block-jobs tests' business.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { DomainBlockJobType } from '#src/libvirt/index.js';
import type { DiskXml } from '#src/xml/domain-xml.js';
import type { BlockCommitParams, BlockCopyParams, BlockPullParams } from '#jobs/job-types.js';
import type { StartBlockJobDto } from '#modules/block-jobs/dto/start-block-job.dto.js';
import {
  PLAN_KINDS,
  planOf,
  planOfKind,
  type RequestContext,
} from '#modules/block-jobs/plans/index.js';

/** A disk `vda` whose chain is `images` ([path, index], top first). */
function disk(images: [string, number | null][]): DiskXml {
  return {
    target: 'vda',
    bus: 'virtio',
    device: 'disk',
    readOnly: false,
    chainComplete: true,
    mirror: null,
    chain: images.map(([path, index]) => ({
      index,
      format: 'qcow2',
      source: { type: 'file', path, network: null, volume: null },
    })),
  };
}

const A = '/img/a.qcow2';
const B = '/img/b.qcow2';
const C = '/img/c.qcow2';
const D = '/img/d.qcow2';
/** D (the top, vda[1]) over C over B over A (the base, vda[4]). */
const CHAIN = disk([
  [D, 1],
  [C, 2],
  [B, 3],
  [A, 4],
]);

function dto(fields: Partial<StartBlockJobDto>): StartBlockJobDto {
  return fields as StartBlockJobDto;
}

/**
 * The context of a request resolved where no libvirt call is reached: the
 * checks that refuse it come first, so no client is needed, and none given.
 */
function ctx(d: DiskXml, fields: Partial<StartBlockJobDto>): RequestContext {
  return { client: null as never, dom: null as never, disk: d, disks: [d], dto: dto(fields) };
}

interface Refusal {
  code: ErrorCode;
  fields: string[];
  message: string;
}

function refusal(err: unknown): Refusal {
  assert.ok(err instanceof AppError, String(err));
  return { code: err.code, fields: err.fields.map((f) => f.field), message: err.message };
}

function refused(fn: () => unknown): Refusal {
  try {
    fn();
  } catch (err) {
    return refusal(err);
  }
  assert.fail('no error');
}

async function refusedAsync(fn: () => Promise<unknown>): Promise<Refusal> {
  try {
    await fn();
  } catch (err) {
    return refusal(err);
  }
  assert.fail('no error');
}

const ref = (
  path: string,
  depth: number,
  index: number | null = null,
  given: string | null = null,
) => ({
  given,
  path,
  index,
  depth,
});

describe('the plans, by type and by kind', () => {
  it('finds each plan by its job type and by its request kind, and no other', () => {
    assert.deepEqual(PLAN_KINDS, ['commit', 'copy', 'pull']);
    for (const [kind, type] of [
      ['commit', 'block.commit'],
      ['copy', 'block.copy'],
      ['pull', 'block.pull'],
    ] as const) {
      assert.equal(planOfKind(kind)?.type, type);
      assert.equal(planOf(type).kind, kind);
    }
    assert.equal(planOfKind('rebase'), undefined);
    assert.equal(planOfKind('block.commit'), undefined);
  });
});

describe('commit plan', () => {
  const plan = planOf('block.commit');
  const parse = (fields: Partial<StartBlockJobDto>) => plan.parse('vda', dto(fields));

  it('parses top and base, each optional, naming the field it refuses', () => {
    assert.deepEqual(parse({}), { top: null, base: null });
    assert.deepEqual(parse({ top: 'vda[2]', base: A }), {
      top: { kind: 'index', index: 2, given: 'vda[2]' },
      base: { kind: 'path', path: A, given: A },
    });
    assert.deepEqual(refused(() => parse({ top: 'vdb[2]' })).fields, ['top']);
    assert.deepEqual(refused(() => parse({ base: 'a.qcow2' })).fields, ['base']);
  });

  it('refuses a commit with nothing below its top, naming top', async () => {
    const single = disk([[D, 1]]);
    const r = await refusedAsync(() => plan.resolve(ctx(single, {}), parse({})));
    assert.equal(r.code, ErrorCode.INVALID_STATE);
    assert.deepEqual(r.fields, ['top']);
    assert.equal(r.message, 'top: the image at depth 0 has no backing image to commit into');
    await assert.rejects(plan.resolve(ctx(single, {}), parse({})), (e: AppError) => {
      assert.deepEqual(e.fields, [
        { field: 'top', message: 'has no backing image to commit into' },
      ]);
      return true;
    });
    // shallow from the bottom image: nothing right below it either
    const bottom = await refusedAsync(() =>
      plan.resolve(ctx(CHAIN, { top: A, shallow: true }), parse({ top: A })),
    );
    assert.equal(bottom.code, ErrorCode.INVALID_STATE);
    assert.match(bottom.message, /depth 3 has no backing image/);
    // the bottom as top, base defaulted to the bottom: nothing to commit into
    const plain = await refusedAsync(() => plan.resolve(ctx(CHAIN, { top: A }), parse({ top: A })));
    assert.equal(plain.code, ErrorCode.INVALID_STATE);
  });

  it('refuses a base that is not below top, naming both', async () => {
    for (const [top, base] of [
      [B, C],
      [C, C],
    ]) {
      const fields = { top, base };
      const r = await refusedAsync(() => plan.resolve(ctx(CHAIN, fields), parse(fields)));
      assert.equal(r.code, ErrorCode.INVALID_ARGUMENT, `${top} over ${base}`);
      assert.deepEqual(r.fields, ['top', 'base']);
      assert.equal(
        r.message,
        `base (depth ${CHAIN.chain.findIndex((i) => i.source.path === base)}) must be below top (depth ${CHAIN.chain.findIndex((i) => i.source.path === top)}) in the chain`,
      );
    }
  });

  it('refuses references that name no image of the live chain, naming the field', async () => {
    for (const field of ['top', 'base'] as const) {
      const fields = { [field]: 'vda[9]' };
      const r = await refusedAsync(() => plan.resolve(ctx(CHAIN, fields), parse(fields)));
      assert.equal(r.code, ErrorCode.INVALID_STATE);
      assert.deepEqual(r.fields, [field]);
    }
  });

  it('with shallow, refuses a base other than the image right below top', async () => {
    const fields = { top: D, base: B, shallow: true };
    const r = await refusedAsync(() => plan.resolve(ctx(CHAIN, fields), parse(fields)));
    assert.equal(r.code, ErrorCode.INVALID_ARGUMENT);
    assert.deepEqual(r.fields, ['base']);
    assert.match(r.message, /right below top \(depth 1\), not depth 2/);
  });

  it('refuses pivot on a commit below the active image, naming pivot', async () => {
    for (const pivot of [true, false]) {
      const fields = { top: C, pivot };
      const r = await refusedAsync(() => plan.resolve(ctx(CHAIN, fields), parse(fields)));
      assert.equal(r.code, ErrorCode.INVALID_ARGUMENT);
      assert.deepEqual(r.fields, ['pivot']);
      assert.match(r.message, /depth 1/);
    }
  });

  it('has two phases when active, one otherwise, with libvirt job types to match', () => {
    const p = (active: boolean): BlockCommitParams => ({
      disk: 'vda',
      top: ref(active ? D : C, active ? 0 : 1),
      base: ref(A, 3),
      active,
      shallow: false,
      deleteCommittedImages: false,
      bandwidth: 0,
      pivot: true,
    });
    assert.deepEqual(plan.shape(p(true)), {
      twoPhase: true,
      libvirtType: DomainBlockJobType.ACTIVE_COMMIT,
    });
    assert.deepEqual(plan.shape(p(false)), {
      twoPhase: false,
      libvirtType: DomainBlockJobType.COMMIT,
    });
  });

  describe('at job start', () => {
    const params = (over: Partial<BlockCommitParams>): BlockCommitParams => ({
      disk: 'vda',
      top: ref(C, 1, 2),
      base: ref(B, 2, 3),
      active: false,
      shallow: true,
      deleteCommittedImages: false,
      bandwidth: 0,
      pivot: true,
      ...over,
    });

    it('starts a job whose chain is still what it was accepted on', () => {
      assert.equal(typeof plan.prepare(params({}), CHAIN, true), 'function');
      const active = params({
        top: ref(D, 0, 1),
        base: ref(A, 3, 4),
        active: true,
        shallow: false,
      });
      assert.equal(typeof plan.prepare(active, CHAIN, true), 'function');
    });

    it('names the reference that no longer names its image', () => {
      const renumbered = disk([
        [D, 1],
        [B, 2],
        [C, 3],
        [A, 4],
      ]);
      const top = refused(() =>
        plan.prepare(params({ top: ref(C, 1, 2, 'vda[2]') }), renumbered, true),
      );
      assert.equal(top.code, ErrorCode.CONFLICT);
      assert.match(top.message, / top 'vda\[2\]' now names /);
      const base = refused(() =>
        plan.prepare(params({ base: ref(B, 2, 3, 'vda[3]') }), renumbered, true),
      );
      assert.match(base.message, / base 'vda\[3\]' now names /);
    });

    it('refuses one whose base is no longer below its top', () => {
      // C and B swapped places since
      const swapped = disk([
        [D, 1],
        [B, 3],
        [C, 2],
        [A, 4],
      ]);
      const r = refused(() => plan.prepare(params({}), swapped, true));
      assert.equal(r.code, ErrorCode.CONFLICT);
      assert.match(r.message, /base is no longer below top/);
      // base equal to top
      const same = refused(() => plan.prepare(params({ base: ref(C, 1, 2) }), CHAIN, true));
      assert.equal(same.code, ErrorCode.CONFLICT);
      assert.match(same.message, /base is no longer below top/);
    });

    it('refuses one whose top became, or stopped being, the active image', () => {
      // D was pulled into C: C is now the top, the job was accepted as a non-active commit
      const pulled = disk([
        [C, 2],
        [B, 3],
        [A, 4],
      ]);
      const r = refused(() => plan.prepare(params({}), pulled, true));
      assert.equal(r.code, ErrorCode.CONFLICT);
      assert.match(r.message, /top is now at depth 0, the job was accepted as a commit/);
      // a new overlay over D: D is no longer the active image of an active commit
      const overlaid = disk([
        ['/img/e.qcow2', 5],
        [D, 1],
        [C, 2],
        [B, 3],
        [A, 4],
      ]);
      const active = params({
        top: ref(D, 0, 1),
        base: ref(A, 3, 4),
        active: true,
        shallow: false,
      });
      const o = refused(() => plan.prepare(active, overlaid, true));
      assert.equal(o.code, ErrorCode.CONFLICT);
      assert.match(o.message, /top is now at depth 1, the job was accepted as an active commit/);
    });

    it('refuses a shallow one whose base is no longer right below its top', () => {
      const grown = disk([
        [D, 1],
        [C, 2],
        ['/img/x.qcow2', 6],
        [B, 3],
        [A, 4],
      ]);
      const r = refused(() => plan.prepare(params({}), grown, true));
      assert.equal(r.code, ErrorCode.CONFLICT);
      assert.match(r.message, /base is not right below top/);
      // not shallow: any base below top will do
      assert.equal(typeof plan.prepare(params({ shallow: false }), grown, true), 'function');
    });
  });

  it('leaves no expected chain when its images are not where it started', () => {
    const start = [D, C, B, A];
    const p = (top: string, base: string): BlockCommitParams => ({
      disk: 'vda',
      top: ref(top, 0),
      base: ref(base, 0),
      active: false,
      shallow: false,
      deleteCommittedImages: false,
      bandwidth: 0,
      pivot: true,
    });
    assert.equal(plan.expectedChain(p('/img/gone.qcow2', A), start), null);
    assert.equal(plan.expectedChain(p(C, '/img/gone.qcow2'), start), null);
    assert.equal(plan.expectedChain(p(C, C), start), null);
    assert.equal(plan.expectedChain(p(B, C), start), null);
    // the top image itself as top of a non-active commit: everything above top stays
    assert.deepEqual(plan.expectedChain(p(D, B), start), [B, A]);
  });
});

describe('copy plan', () => {
  const plan = planOf('block.copy');
  const parse = (destination: string | undefined) => plan.parse('vda', dto({ destination }));

  it('parses a destination path (normalised) or pool/volume, and nothing else', () => {
    assert.deepEqual(parse('/img//x/../copy.qcow2'), { kind: 'path', path: '/img/copy.qcow2' });
    assert.deepEqual(parse('default/copy.qcow2'), {
      kind: 'volume',
      pool: 'default',
      volume: 'copy.qcow2',
    });
    for (const bad of ['copy.qcow2', 'a/b/c', 'pool/', 'a b/c', '/img/\0x']) {
      const r = refused(() => parse(bad));
      assert.equal(r.code, ErrorCode.INVALID_ARGUMENT, bad);
      assert.deepEqual(r.fields, ['destination'], bad);
    }
    assert.equal(
      refused(() => parse('copy.qcow2')).message,
      'destination: must be an absolute path, or pool/volume',
    );
    assert.deepEqual(
      refused(() => parse(undefined)),
      {
        code: ErrorCode.INVALID_ARGUMENT,
        fields: ['destination'],
        message: 'destination: is required for a copy',
      },
    );
    for (const dir of ['/img/', '/img/x/../', '/']) {
      assert.deepEqual(
        refused(() => parse(dir)),
        {
          code: ErrorCode.INVALID_ARGUMENT,
          fields: ['destination'],
          message: 'destination: names a directory',
        },
        dir,
      );
    }
  });

  it('has two phases, as libvirt copy job', () => {
    assert.deepEqual(plan.shape({} as BlockCopyParams), {
      twoPhase: true,
      libvirtType: DomainBlockJobType.COPY,
    });
  });

  describe('at job start', () => {
    const params = (destination: string): BlockCopyParams => ({
      disk: 'vda',
      source: ref(D, 0, 1),
      destination,
      format: 'qcow2',
      shallow: false,
      reuseExisting: false,
      bandwidth: 0,
      pivot: true,
    });

    it('starts a copy of the image the guest still writes to, to a path outside its chain', () => {
      assert.equal(typeof plan.prepare(params('/img/copy.qcow2'), CHAIN, true), 'function');
    });

    it('names the source when its image left the chain', () => {
      const r = refused(() => plan.prepare(params('/img/copy.qcow2'), disk([[C, 2]]), true));
      assert.equal(r.code, ErrorCode.CONFLICT);
      assert.match(r.message, /: source: '\/img\/d\.qcow2' names no image/);
    });

    it('refuses one whose source is no longer the top image', () => {
      const overlaid = disk([
        ['/img/e.qcow2', 5],
        [D, 1],
        [C, 2],
      ]);
      const r = refused(() => plan.prepare(params('/img/copy.qcow2'), overlaid, true));
      assert.equal(r.code, ErrorCode.CONFLICT);
      assert.match(r.message, /no longer the image the guest writes to/);
    });

    it('refuses one whose destination became an image of the chain', () => {
      const r = refused(() => plan.prepare(params(B), CHAIN, true));
      assert.equal(r.code, ErrorCode.CONFLICT);
      assert.match(r.message, /is an image of the disk's chain/);
    });
  });

  it('is applied once the destination is the top, whatever backs it', () => {
    const p = { ...({} as BlockCopyParams), destination: '/img/copy.qcow2', shallow: true };
    const start = [D, C];
    assert.equal(plan.classify(p, start, ['/img/copy.qcow2', '/other.qcow2']), 'applied');
    assert.equal(plan.classify(p, start, [D, C]), 'unchanged');
    assert.equal(plan.classify(p, start, [C]), 'unexpected');
    assert.equal(plan.classify(p, start, [D]), 'unexpected');
  });
});

describe('pull plan', () => {
  const plan = planOf('block.pull');
  const parse = (base?: string) => plan.parse('vda', dto(base === undefined ? {} : { base }));

  it('parses an optional base, naming it when refused', () => {
    assert.deepEqual(parse(), { base: null });
    assert.deepEqual(parse('vda[3]'), { base: { kind: 'index', index: 3, given: 'vda[3]' } });
    assert.deepEqual(refused(() => parse('vdb[3]')).fields, ['base']);
  });

  it('resolves a pull of the whole chain, or down to a base, into the top', async () => {
    assert.deepEqual(await plan.resolve(ctx(CHAIN, {}), parse()), {
      disk: 'vda',
      top: { given: null, path: D, index: 1, depth: 0 },
      base: null,
      bandwidth: 0,
    });
    assert.deepEqual(
      await plan.resolve(ctx(CHAIN, { base: 'vda[3]', bandwidth: 4096 }), parse('vda[3]')),
      {
        disk: 'vda',
        top: { given: null, path: D, index: 1, depth: 0 },
        base: { given: 'vda[3]', path: B, index: 3, depth: 2 },
        bandwidth: 4096,
      },
    );
  });

  it('refuses a disk with no backing image, and a base with nothing above it to pull', async () => {
    const single = await refusedAsync(() => plan.resolve(ctx(disk([[D, 1]]), {}), parse()));
    assert.equal(single.code, ErrorCode.INVALID_STATE);
    assert.match(single.message, /nothing to pull/);
    // two images: pulling the backing image into the top is fine
    assert.equal(
      (
        await plan.resolve(
          ctx(
            disk([
              [D, 1],
              [C, 2],
            ]),
            {},
          ),
          parse(),
        )
      ).top.path,
      D,
    );
    const top = await refusedAsync(() => plan.resolve(ctx(CHAIN, { base: D }), parse(D)));
    assert.deepEqual([top.code, top.fields], [ErrorCode.INVALID_ARGUMENT, ['base']]);
    assert.match(top.message, /the image the guest writes to/);
    const next = await refusedAsync(() => plan.resolve(ctx(CHAIN, { base: C }), parse(C)));
    assert.deepEqual([next.code, next.fields], [ErrorCode.INVALID_ARGUMENT, ['base']]);
    assert.match(next.message, /nothing above it to pull/);
    const none = await refusedAsync(() =>
      plan.resolve(ctx(CHAIN, { base: 'vda[9]' }), parse('vda[9]')),
    );
    assert.deepEqual([none.code, none.fields], [ErrorCode.INVALID_STATE, ['base']]);
  });

  it('has one phase, as libvirt pull job', () => {
    assert.deepEqual(plan.shape({} as BlockPullParams), {
      twoPhase: false,
      libvirtType: DomainBlockJobType.PULL,
    });
  });

  describe('at job start', () => {
    const params = (base: ReturnType<typeof ref> | null): BlockPullParams => ({
      disk: 'vda',
      top: ref(D, 0, 1),
      base,
      bandwidth: 0,
    });

    it('starts a pull whose top and base are still where they were', () => {
      assert.equal(typeof plan.prepare(params(null), CHAIN, true), 'function');
      assert.equal(typeof plan.prepare(params(ref(B, 2, 3)), CHAIN, true), 'function');
    });

    it('names the reference whose image left the chain', () => {
      const top = refused(() => plan.prepare(params(null), disk([[C, 2]]), true));
      assert.match(top.message, /: top: '\/img\/d\.qcow2' names no image/);
      const base = refused(() =>
        plan.prepare(
          params(ref(B, 2, 3)),
          disk([
            [D, 1],
            [C, 2],
          ]),
          true,
        ),
      );
      assert.match(base.message, /: base: '\/img\/b\.qcow2' names no image/);
    });

    it('refuses one whose top is no longer the top image', () => {
      const overlaid = disk([
        ['/img/e.qcow2', 5],
        [D, 1],
        [C, 2],
      ]);
      const r = refused(() => plan.prepare(params(null), overlaid, true));
      assert.equal(r.code, ErrorCode.CONFLICT);
      assert.match(r.message, /no longer the image the guest writes to/);
    });

    it('refuses one with nothing left to pull above its base', () => {
      // C was committed into B meanwhile: B is right below the top
      const committed = disk([
        [D, 1],
        [B, 3],
        [A, 4],
      ]);
      const r = refused(() => plan.prepare(params(ref(B, 2, 3)), committed, true));
      assert.equal(r.code, ErrorCode.CONFLICT);
      assert.match(r.message, /nothing left to pull above base/);
    });
  });

  it('leaves no expected chain when its base is not where it started', () => {
    const start = [D, C, B, A];
    const p = (base: string): BlockPullParams => ({
      disk: 'vda',
      top: ref(D, 0),
      base: ref(base, 0),
      bandwidth: 0,
    });
    assert.equal(plan.expectedChain(p('/img/gone.qcow2'), start), null);
    assert.equal(plan.expectedChain(p(D), start), null);
    assert.deepEqual(plan.expectedChain(p(C), start), [D, C, B, A]);
    assert.equal(plan.classify(p(B), start, [D, B, A]), 'applied');
    assert.equal(plan.classify(p(B), start, start), 'unchanged');
    assert.equal(plan.classify(p(B), start, [D]), 'unexpected');
  });
});
