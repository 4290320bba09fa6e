import { AppError, ErrorCode, invalidField } from '#src/common/errors/app-error.js';
import {
  DomainBlockJobType,
  DomainBlockPullFlags,
  DomainBlockRebaseFlags,
} from '#src/libvirt/index.js';
import type { BlockPullParams } from '#jobs/job-types.js';
import {
  conflict,
  libvirtRef,
  memberAt,
  outcomeOf,
  parseMemberRef,
  recheck,
  refOf,
  type MemberSpec,
} from '../block-chain.js';
import type { BlockJobPlan } from './block-job-plan.js';

interface ParsedPull {
  base: MemberSpec | null;
}

/**
 * Block pull: the data of the backing images is copied into the image the
 * guest writes to, down to (not including) `base`, or the whole chain; the
 * images pulled leave the chain. One phase: it ends by itself.
 */
export const pullPlan: BlockJobPlan<'block.pull', ParsedPull> = {
  kind: 'pull',
  type: 'block.pull',
  fields: ['base', 'bandwidth'],

  parse(target, dto) {
    return { base: dto.base === undefined ? null : parseMemberRef(dto.base, target, 'base') };
  },

  async resolve({ disk, dto }, parsed) {
    const chain = disk.chain;
    if (chain.length < 2) {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        `disk '${disk.target}' has no backing image: there is nothing to pull`,
      );
    }
    const base = parsed.base ? memberAt(disk, parsed.base, 'base') : null;
    if (base && base.depth === 0) {
      throw invalidField('base', 'names the image the guest writes to: data is pulled into it');
    }
    if (base && base.depth === 1) {
      throw invalidField(
        'base',
        "names the top image's own backing image: there is nothing above it to pull",
      );
    }
    const params: BlockPullParams = {
      disk: disk.target,
      top: refOf({ depth: 0, image: chain[0]! }, null),
      base: base ? refOf(base, dto.base ?? null) : null,
      bandwidth: dto.bandwidth ?? 0,
    };
    return params;
  },

  shape() {
    return { twoPhase: false, libvirtType: DomainBlockJobType.PULL };
  },

  prepare(p, disk) {
    const target = disk.target;
    const top = recheck(disk, p.top, 'top');
    if (top.depth !== 0) {
      throw conflict(
        `the chain changed since the job was accepted: ${p.top.path} is no longer the image the guest writes to`,
      );
    }
    const base = p.base === null ? null : recheck(disk, p.base, 'base');
    if (base !== null && base.depth < 2) {
      throw conflict(
        `the chain changed since the job was accepted: nothing left to pull above base`,
      );
    }
    const bandwidth = BigInt(p.bandwidth);
    return async (client, dom) =>
      void (base === null
        ? await client.rpc.domainBlockPull({
            dom,
            path: target,
            bandwidth,
            flags: DomainBlockPullFlags.BANDWIDTH_BYTES,
          })
        : await client.rpc.domainBlockRebase({
            dom,
            path: target,
            base: libvirtRef(target, base),
            bandwidth,
            flags: DomainBlockRebaseFlags.BANDWIDTH_BYTES,
          }));
  },

  expectedChain(p, atStart) {
    if (p.base === null) return atStart.slice(0, 1);
    const base = atStart.indexOf(p.base.path);
    return base < 1 ? null : [atStart[0]!, ...atStart.slice(base)];
  },

  classify(p, atStart, live) {
    return outcomeOf(this.expectedChain(p, atStart), atStart, live);
  },
};
