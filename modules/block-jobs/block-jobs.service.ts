import path from 'node:path';
import { Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import {
  DomainBlockJobInfoFlags,
  DomainBlockJobType,
  DomainState,
  LibvirtError,
  StoragePoolState,
  type LibvirtClient,
  type RemoteDomain,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import { parseDomainXml, type DiskXml } from '#src/xml/domain-xml.js';
import { parseStoragePoolXml } from '#src/xml/storage-xml.js';
import { BlockJobLedger } from '#jobs/block-job-ledger.js';
import type {
  BlockCommitParams,
  BlockCopyParams,
  BlockPullParams,
  BlockJobType,
} from '#jobs/job-types.js';
import { uuidString } from '#modules/domains/domain-views.js';
import { lookup } from '#modules/domains/domains.service.js';
import { domainUsing, poolVolumeBackedBy } from '#modules/domains/image-users.js';
import { HostConnections } from '#modules/hosts/host-connections.service.js';
import { STORAGE_NAME_PATTERN } from '#modules/storage-pools/dto/storage-operations.dto.js';
import { HostsService } from '#modules/hosts/hosts.service.js';
import { JobsService, type Accepted } from '#modules/jobs/jobs.service.js';
import { memberAt, parseMemberRef, refOf, usableChain, type MemberSpec } from './block-chain.js';
import {
  BLOCK_JOB_KINDS,
  type BlockJobKind,
  type StartBlockJobDto,
} from './dto/start-block-job.dto.js';

/** The fields each type of block job takes. */
const FIELDS: Record<BlockJobKind, readonly (keyof StartBlockJobDto)[]> = {
  commit: ['top', 'base', 'shallow', 'deleteCommittedImages', 'bandwidth', 'pivot'],
  copy: ['destination', 'format', 'shallow', 'reuseExisting', 'bandwidth', 'pivot'],
  pull: ['base', 'bandwidth'],
};

const LIBVIRT_JOB_NAMES: Record<number, string> = {
  [DomainBlockJobType.PULL]: 'pull',
  [DomainBlockJobType.COPY]: 'copy',
  [DomainBlockJobType.COMMIT]: 'commit',
  [DomainBlockJobType.ACTIVE_COMMIT]: 'active commit',
  [DomainBlockJobType.BACKUP]: 'backup',
};

const ACTIVE_STATES: ReadonlySet<number> = new Set([
  DomainState.RUNNING,
  DomainState.BLOCKED,
  DomainState.PAUSED,
]);

/** What a request names, checked for form before anything is read from libvirt. */
interface Parsed {
  kind: BlockJobKind;
  top: MemberSpec | null;
  base: MemberSpec | null;
  destination:
    { kind: 'path'; path: string } | { kind: 'volume'; pool: string; volume: string } | null;
}

type Resolved =
  | { type: 'block.commit'; params: BlockCommitParams }
  | { type: 'block.copy'; params: BlockCopyParams }
  | { type: 'block.pull'; params: BlockPullParams };

function invalid(field: string, message: string): AppError {
  return new AppError(ErrorCode.INVALID_ARGUMENT, `${field}: ${message}`, {
    fields: [{ field, message }],
  });
}

/**
 * Block job requests (commit, copy, pull on one disk): checked for form,
 * resolved against the live chain over the api's read-only connection (a
 * reference that names no image is refused, and so is a disk that already
 * has a block job, in libvirt or queued in the gateway), then handed to the
 * worker as a job that claims the disk until it ends.
 */
@Injectable()
export class BlockJobsService {
  constructor(
    private readonly hosts: HostsService,
    private readonly connections: HostConnections,
    private readonly jobs: JobsService,
    private readonly ledger: BlockJobLedger,
  ) {}

  async start(
    caller: Caller,
    hostName: string,
    domainRef: string,
    target: string,
    given: StartBlockJobDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    // GraphQL clients may send null for a field they leave out.
    const dto = Object.fromEntries(
      Object.entries(given).filter(([, v]) => v !== null && v !== undefined),
    ) as StartBlockJobDto;
    const parsed = parse(target, dto);
    const host = await this.hosts.record(hostName);
    const { dom, resolved } = await this.connections.withClient(host, async (c) => {
      const d = await lookup(c, domainRef);
      // What depends on the live state is refused only for a new job: a retry with the
      // same Idempotency-Key gets its job back, whatever the chain has become since.
      let r: Resolved | AppError;
      try {
        r = await this.resolve(c, d, target, dto, parsed);
      } catch (err) {
        if (!(err instanceof AppError) || err.code === ErrorCode.HOST_UNREACHABLE) throw err;
        r = err;
      }
      return { dom: d, resolved: r };
    });
    const uuid = uuidString(dom.uuid);
    const request: Record<string, unknown> = { type: dto.type };
    for (const field of FIELDS[dto.type]) if (dto[field] !== undefined) request[field] = dto[field];
    const type: BlockJobType = resolved instanceof AppError ? `block.${dto.type}` : resolved.type;
    return this.jobs.submit(
      caller,
      {
        type,
        target: { host: host.name, uuid, name: dom.name },
        disk: target,
        params: (resolved instanceof AppError ? {} : resolved.params) as never,
        request,
        precheck: async (jobId: string) => {
          if (resolved instanceof AppError) throw resolved;
          await this.ledger.claim({ host: host.name, domainUuid: uuid, disk: target }, jobId);
        },
      },
      idempotencyKey,
    );
  }

  private async resolve(
    c: LibvirtClient,
    dom: RemoteDomain,
    target: string,
    dto: StartBlockJobDto,
    parsed: Parsed,
  ): Promise<Resolved> {
    const { state } = await c.rpc.domainGetState({ dom, flags: 0 });
    if (!ACTIVE_STATES.has(state)) {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        `domain '${dom.name}' is not running: libvirt runs block jobs only on a running domain`,
      );
    }
    const xml = await c.rpc.domainGetXmlDesc({ dom, flags: 0 });
    const live = parseDomainXml(xml.xml);
    const disk = live.disks.find((d) => d.target === target);
    if (!disk) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `domain '${dom.name}' has no disk '${target}' (it has ${live.disks.map((d) => d.target).join(', ') || 'none'})`,
      );
    }
    const chain = usableChain(disk);
    const info = await c.rpc.domainGetBlockJobInfo({
      dom,
      path: target,
      flags: DomainBlockJobInfoFlags.BANDWIDTH_BYTES,
    });
    if (info.found === 1) {
      const pct = info.end > 0n ? Number((info.cur * 100n) / info.end) : 0;
      throw new AppError(
        ErrorCode.CONFLICT,
        `disk '${target}' already has a block job in libvirt (${LIBVIRT_JOB_NAMES[info.type] ?? `type ${info.type}`}, ${pct}%): one block job per disk`,
      );
    }
    const bandwidth = dto.bandwidth ?? 0;
    const top0 = { depth: 0, image: chain[0]! };
    switch (parsed.kind) {
      case 'commit': {
        const top = parsed.top ? memberAt(disk, parsed.top, 'top') : top0;
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
          throw invalid(
            'base',
            `with shallow, base must be the image right below top (depth ${top.depth + 1}), not depth ${base.depth}`,
          );
        }
        const active = top.depth === 0;
        if (!active && dto.pivot !== undefined) {
          throw invalid(
            'pivot',
            `a commit whose top is below the active image (depth ${top.depth}) has no pivot; pivot applies to an active commit and to copy`,
          );
        }
        await refuseSharedCommit(
          c,
          dom,
          disk,
          top.depth,
          base.depth,
          dto.deleteCommittedImages ?? false,
        );
        return {
          type: 'block.commit',
          params: {
            disk: target,
            top: refOf(top, dto.top ?? null),
            base: refOf(base, dto.base ?? null),
            active,
            shallow: dto.shallow ?? false,
            deleteCommittedImages: dto.deleteCommittedImages ?? false,
            bandwidth,
            pivot: dto.pivot ?? true,
          },
        };
      }
      case 'copy': {
        const { destination, newVolumeIn } = await this.destinationPath(
          c,
          parsed,
          dto,
          live.disks,
          dom,
        );
        const format = dto.format ?? (chain[0]!.format === 'raw' ? 'raw' : 'qcow2');
        if (dto.shallow && format === 'raw') {
          throw invalid('format', 'a raw image has no backing file: a shallow copy must be qcow2');
        }
        return {
          type: 'block.copy',
          params: {
            disk: target,
            source: refOf(top0, null),
            destination,
            format,
            shallow: dto.shallow ?? false,
            reuseExisting: dto.reuseExisting ?? false,
            bandwidth,
            pivot: dto.pivot ?? true,
            newVolumeIn,
          },
        };
      }
      case 'pull': {
        if (chain.length < 2) {
          throw new AppError(
            ErrorCode.INVALID_STATE,
            `disk '${target}' has no backing image: there is nothing to pull`,
          );
        }
        const base = parsed.base ? memberAt(disk, parsed.base, 'base') : null;
        if (base && base.depth === 0) {
          throw invalid('base', 'names the image the guest writes to: data is pulled into it');
        }
        if (base && base.depth === 1) {
          throw invalid(
            'base',
            "names the top image's own backing image: there is nothing above it to pull",
          );
        }
        return {
          type: 'block.pull',
          params: {
            disk: target,
            top: refOf(top0, null),
            base: base ? refOf(base, dto.base ?? null) : null,
            bandwidth,
          },
        };
      }
    }
  }

  /**
   * The copy's path: given; an existing storage volume's (with reuseExisting);
   * or a new volume's in a dir pool (`newVolumeIn`: the file libvirt creates
   * there, shown as a volume once the pool is refreshed). Never an image of the
   * domain's chains.
   */
  private async destinationPath(
    c: LibvirtClient,
    parsed: Parsed,
    dto: StartBlockJobDto,
    disks: readonly DiskXml[],
    dom: RemoteDomain,
  ): Promise<{ destination: string; newVolumeIn: string | null }> {
    const dest = parsed.destination!;
    let destination: string;
    let newVolumeIn: string | null = null;
    if (dest.kind === 'volume') {
      const { pool } = await c.rpc.storagePoolLookupByName({ name: dest.pool });
      const vol = await c.rpc.storageVolLookupByName({ pool, name: dest.volume }).then(
        (r) => r.vol,
        (err: unknown) => {
          if (err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_STORAGE_VOL') return null;
          throw err;
        },
      );
      if (vol) {
        destination = (await c.rpc.storageVolGetPath({ vol })).name;
        if (!dto.reuseExisting) {
          throw invalid(
            'destination',
            `storage volume ${dest.pool}/${dest.volume} exists: copying into it needs reuseExisting: true`,
          );
        }
      } else {
        if (dto.reuseExisting) {
          throw new AppError(
            ErrorCode.NOT_FOUND,
            `destination: storage pool '${dest.pool}' has no volume '${dest.volume}' to reuse (without reuseExisting, the copy creates it)`,
            { fields: [{ field: 'destination', message: 'no such volume' }] },
          );
        }
        destination = await newVolumePath(c, pool, dest.pool, dest.volume);
        newVolumeIn = dest.pool;
      }
    } else {
      destination = dest.path;
      if (!dto.reuseExisting && (await volumeExists(c, destination))) {
        throw new AppError(
          ErrorCode.ALREADY_EXISTS,
          `destination: ${destination} exists (a storage volume); give reuseExisting: true to copy into it`,
          { fields: [{ field: 'destination', message: 'exists already' }] },
        );
      }
    }
    for (const d of disks) {
      if (
        d.chain.some(
          (i) => i.source.path !== null && path.posix.normalize(i.source.path) === destination,
        )
      ) {
        const message = `${destination} is an image of disk '${d.target}' of this domain`;
        throw new AppError(ErrorCode.CONFLICT, `destination: ${message}`, {
          fields: [{ field: 'destination', message }],
        });
      }
    }
    // Without reuseExisting libvirt refuses a file that exists; with it, the file is
    // overwritten: never one that another domain or a volume's overlay depends on.
    if (dto.reuseExisting) await refuseImageInUse(c, destination, dom);
    return { destination, newVolumeIn };
  }
}

/** CONFLICT when `file` is an image another domain names, or the backing image of a pool volume. */
async function refuseImageInUse(c: LibvirtClient, file: string, self: RemoteDomain): Promise<void> {
  const refuse = (what: string): never => {
    const message = `${file} is ${what}: copying into it would overwrite data that depends on it`;
    throw new AppError(ErrorCode.CONFLICT, `destination: ${message}`, {
      fields: [{ field: 'destination', message }],
    });
  };
  const user = await domainUsing(c, [file], { exceptDomainUuid: self.uuid });
  if (user) refuse(`an image of disk '${user.disk}' of domain '${user.domain}'`);
  const overlay = await poolVolumeBackedBy(c, file);
  if (overlay) {
    refuse(`the backing image of volume '${overlay.volume}' of storage pool '${overlay.pool}'`);
  }
}

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

/** Where a new volume `volume` of the pool goes: the file in an active dir pool's directory. */
async function newVolumePath(
  c: LibvirtClient,
  pool: RemoteStoragePool,
  poolName: string,
  volume: string,
): Promise<string> {
  if (!STORAGE_NAME_PATTERN.test(volume)) {
    throw invalid(
      'destination',
      `'${volume}' cannot be a new volume's name: 1-128 letters, digits, ".", "_", "+" or "-", starting with a letter or digit`,
    );
  }
  const parsed = parseStoragePoolXml((await c.rpc.storagePoolGetXmlDesc({ pool, flags: 0 })).xml);
  if (parsed.type !== 'dir' || parsed.path === null) {
    throw new AppError(
      ErrorCode.UNSUPPORTED,
      `destination: a copy creates new volumes in dir pools only; storage pool '${poolName}' is ${parsed.type} (create the volume first and give reuseExisting: true)`,
      { fields: [{ field: 'destination', message: 'not a dir pool' }] },
    );
  }
  if ((await c.rpc.storagePoolGetInfo({ pool })).state !== StoragePoolState.RUNNING) {
    throw new AppError(
      ErrorCode.INVALID_STATE,
      `destination: storage pool '${poolName}' is not active: start it first`,
      { fields: [{ field: 'destination', message: 'pool not active' }] },
    );
  }
  return path.posix.join(parsed.path, volume);
}

async function volumeExists(c: LibvirtClient, file: string): Promise<boolean> {
  try {
    await c.rpc.storageVolLookupByPath({ path: file });
    return true;
  } catch (err) {
    if (err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_STORAGE_VOL') return false;
    throw err;
  }
}

/** Checks a request's form: the fields its type takes, and references that parse. */
function parse(target: string, dto: StartBlockJobDto): Parsed {
  if (!(BLOCK_JOB_KINDS as readonly string[]).includes(dto.type)) {
    throw invalid('type', `must be one of ${BLOCK_JOB_KINDS.join(', ')}`);
  }
  const kind = dto.type;
  const allowed = new Set<string>(['type', ...FIELDS[kind]]);
  const stray = Object.keys(dto).filter(
    (k) => dto[k as keyof StartBlockJobDto] !== undefined && !allowed.has(k),
  );
  if (stray.length > 0) {
    throw new AppError(ErrorCode.INVALID_ARGUMENT, `a ${kind} takes no ${stray.join(', ')}`, {
      fields: stray.map((field) => ({ field, message: `a ${kind} takes no ${field}` })),
    });
  }
  let destination: Parsed['destination'] = null;
  if (kind === 'copy') {
    const d = dto.destination;
    if (d === undefined) throw invalid('destination', 'is required for a copy');
    const volume = /^([^/\s]+)\/([^/\s]+)$/.exec(d);
    if (d.startsWith('/') && !d.includes('\0')) {
      destination = { kind: 'path', path: path.posix.normalize(d) };
      if (destination.path.endsWith('/')) throw invalid('destination', 'names a directory');
    } else if (volume) {
      destination = { kind: 'volume', pool: volume[1]!, volume: volume[2]! };
    } else {
      throw invalid('destination', 'must be an absolute path, or pool/volume');
    }
  }
  return {
    kind,
    top: dto.top === undefined ? null : parseMemberRef(dto.top, target, 'top'),
    base: dto.base === undefined ? null : parseMemberRef(dto.base, target, 'base'),
    destination,
  };
}
