import { AppError, ErrorCode, invalidField } from '#src/common/errors/app-error.js';
import {
  DomainBlockCommitFlags,
  DomainBlockJobType,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import type { DiskXml } from '#src/xml/domain-xml.js';
import { domainUsing } from '#modules/domains/index.js';
import { poolVolumeBackedBy } from '#modules/storage-pools/index.js';
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

interface ParsedCommit {
  top: MemberSpec | null;
  base: MemberSpec | null;
}

/**
 * Block commit: the images from `top` down to just above `base` are merged
 * into `base`. With `top` the image the guest writes to (the default), an
 * active commit: it reaches READY and ends with a pivot to `base` (or an
 * abort that keeps the chain). `base` defaults to the bottom of the chain
 * (with `shallow`, the image right below `top`).
 */
export const commitPlan: BlockJobPlan<'block.commit', ParsedCommit> = {
  kind: 'commit',
  type: 'block.commit',
  fields: ['top', 'base', 'shallow', 'deleteCommittedImages', 'bandwidth', 'pivot'],

  parse(target, dto) {
    return {
      top: dto.top === undefined ? null : parseMemberRef(dto.top, target, 'top'),
      base: dto.base === undefined ? null : parseMemberRef(dto.base, target, 'base'),
    };
  },

  async resolve({ client, dom, disk, dto }, parsed) {
    const chain = disk.chain;
    const top = parsed.top ? memberAt(disk, parsed.top, 'top') : { depth: 0, image: chain[0]! };
    let base;
    if (parsed.base) {
      base = memberAt(disk, parsed.base, 'base');
    } else {
      const depth = dto.shallow ? top.depth + 1 : chain.length - 1;
      if (depth <= top.depth || depth >= chain.length) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `top: the image at depth ${top.depth} has no backing image to commit into`,
          { fields: [{ field: 'top', message: 'has no backing image to commit into' }] },
        );
      }
      base = { depth, image: chain[depth]! };
    }
    if (base.depth <= top.depth) {
      const message = `base (depth ${base.depth}) must be below top (depth ${top.depth}) in the chain`;
      throw new AppError(ErrorCode.INVALID_ARGUMENT, message, {
        fields: [
          { field: 'top', message },
          { field: 'base', message },
        ],
      });
    }
    if (dto.shallow && base.depth !== top.depth + 1) {
      throw invalidField(
        'base',
        `with shallow, base must be the image right below top (depth ${top.depth + 1}), not depth ${base.depth}`,
      );
    }
    const active = top.depth === 0;
    if (!active && dto.pivot !== undefined) {
      throw invalidField(
        'pivot',
        `a commit whose top is below the active image (depth ${top.depth}) has no pivot; pivot applies to an active commit and to copy`,
      );
    }
    const deleting = dto.deleteCommittedImages ?? false;
    await refuseSharedCommit(client, dom, disk, top.depth, base.depth, deleting);
    return {
      disk: disk.target,
      top: refOf(top, dto.top ?? null),
      base: refOf(base, dto.base ?? null),
      active,
      shallow: dto.shallow ?? false,
      deleteCommittedImages: deleting,
      bandwidth: dto.bandwidth ?? 0,
      pivot: dto.pivot ?? true,
    };
  },

  shape(p) {
    return p.active
      ? { twoPhase: true, libvirtType: DomainBlockJobType.ACTIVE_COMMIT }
      : { twoPhase: false, libvirtType: DomainBlockJobType.COMMIT };
  },

  prepare(p, disk) {
    const target = disk.target;
    const top = recheck(disk, p.top, 'top');
    const base = recheck(disk, p.base, 'base');
    if (base.depth <= top.depth) {
      throw conflict(`the chain changed since the job was accepted: base is no longer below top`);
    }
    if ((top.depth === 0) !== p.active) {
      throw conflict(
        `the chain changed since the job was accepted: top is now at depth ${top.depth}, the job was accepted as ${p.active ? 'an active' : 'a'} commit`,
      );
    }
    if (p.shallow && base.depth !== top.depth + 1) {
      throw conflict(`the chain changed since the job was accepted: base is not right below top`);
    }
    const flags =
      DomainBlockCommitFlags.BANDWIDTH_BYTES |
      (p.active ? DomainBlockCommitFlags.ACTIVE : 0) |
      (p.shallow ? DomainBlockCommitFlags.SHALLOW : 0) |
      (p.deleteCommittedImages ? DomainBlockCommitFlags.DELETE : 0);
    return async (client, dom) =>
      void (await client.rpc.domainBlockCommit({
        dom,
        disk: target,
        base: libvirtRef(target, base),
        top: libvirtRef(target, top),
        bandwidth: BigInt(p.bandwidth),
        flags,
      }));
  },

  expectedChain(p, atStart) {
    const top = atStart.indexOf(p.top.path);
    const base = atStart.indexOf(p.base.path);
    if (top < 0 || base <= top) return null;
    return p.active ? atStart.slice(base) : [...atStart.slice(0, top), ...atStart.slice(base)];
  },

  classify(p, atStart, live) {
    return outcomeOf(this.expectedChain(p, atStart), atStart, live);
  },
};

/**
 * CONFLICT when a commit would change what something else reads: its base is
 * written to, so it must be no other domain's image nor back a volume outside
 * this chain; with deleteCommittedImages the images above it are deleted, so
 * no other domain may name them.
 */
async function refuseSharedCommit(
  c: LibvirtClient,
  self: RemoteDomain,
  disk: DiskXml,
  top: number,
  base: number,
  deleting: boolean,
): Promise<void> {
  const chain = disk.chain.map((i) => i.source.path!);
  const basePath = chain[base]!;
  const removed = deleting ? chain.slice(top, base) : [];
  const user = await domainUsing(c, [basePath, ...removed], { exceptDomainUuid: self.uuid });
  const conflictOn = (field: string, message: string): never => {
    throw new AppError(ErrorCode.CONFLICT, `${field}: ${message}`, {
      fields: [{ field, message }],
    });
  };
  if (user?.path === basePath) {
    conflictOn(
      'base',
      `${basePath} is also an image of disk '${user.disk}' of domain '${user.domain}': committing into it would change what that domain reads`,
    );
  }
  if (user) {
    conflictOn(
      'deleteCommittedImages',
      `${user.path} is also an image of disk '${user.disk}' of domain '${user.domain}': it would be deleted under that domain`,
    );
  }
  const overlay = await poolVolumeBackedBy(c, basePath, chain);
  if (overlay) {
    conflictOn(
      'base',
      `${basePath} is the backing image of volume '${overlay.volume}' of storage pool '${overlay.pool}', outside this chain: committing into it would change what that volume reads`,
    );
  }
}
