import path from 'node:path';
import { AppError, ErrorCode, invalidField } from '#src/common/errors/app-error.js';
import { STORAGE_NAME_PATTERN } from '#src/common/input-rules.js';
import type { HostRecord } from '#src/hosts/host-registry.js';
import {
  mayUseAnyPath,
  type PathAccess,
  type PathConfinement,
} from '#src/hosts/path-confinement.js';
import {
  BlockCopyParam,
  DomainBlockCopyFlags,
  DomainBlockJobType,
  findStorageVol,
  findStorageVolByPath,
  StoragePoolState,
  TypedParamType,
  type LibvirtClient,
  type RemoteDomain,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import type { DiskXml } from '#src/xml/domain-xml.js';
import { parseStoragePoolXml } from '#src/xml/storage-xml.js';
import { buildXml } from '#src/xml/xml.js';
import { domainUsing } from '#modules/domains/index.js';
import { poolVolumeBackedBy } from '#modules/storage-pools/index.js';
import { chainPaths, conflict, recheck, refOf, sameChain } from '../block-chain.js';
import type { StartBlockJobDto } from '../dto/start-block-job.dto.js';
import type { BlockJobPlan } from './block-job-plan.js';

type ParsedCopy = { kind: 'path'; path: string } | { kind: 'volume'; pool: string; volume: string };

/**
 * Block copy: the disk is copied (whole, or with `shallow` its top image
 * over the same backing chain) to a new image, mirrored until READY, then
 * pivoted to it (or aborted, keeping the original). The destination is a
 * path, an existing volume (`pool/volume`, with `reuseExisting`), or a new
 * volume of a dir pool.
 */
export const copyPlan: BlockJobPlan<'block.copy', ParsedCopy> = {
  kind: 'copy',
  type: 'block.copy',
  fields: ['destination', 'format', 'shallow', 'reuseExisting', 'bandwidth', 'pivot'],

  parse(_target, dto) {
    const d = dto.destination;
    if (d === undefined) throw invalidField('destination', 'is required for a copy');
    const volume = /^([^/\s]+)\/([^/\s]+)$/.exec(d);
    if (d.startsWith('/') && !d.includes('\0')) {
      const normalized = path.posix.normalize(d);
      if (normalized.endsWith('/')) throw invalidField('destination', 'names a directory');
      return { kind: 'path', path: normalized };
    }
    if (volume) return { kind: 'volume', pool: volume[1]!, volume: volume[2]! };
    throw invalidField('destination', 'must be an absolute path, or pool/volume');
  },

  async resolve({ client, dom, disk, disks, dto }, parsed) {
    const { destination, newVolumeIn } = await destinationPath(client, parsed, dto, disks, dom);
    const format = dto.format ?? (disk.chain[0]!.format === 'raw' ? 'raw' : 'qcow2');
    if (dto.shallow && format === 'raw') {
      throw invalidField('format', 'a raw image has no backing file: a shallow copy must be qcow2');
    }
    return {
      disk: disk.target,
      source: refOf({ depth: 0, image: disk.chain[0]! }, null),
      destination,
      format,
      shallow: dto.shallow ?? false,
      reuseExisting: dto.reuseExisting ?? false,
      bandwidth: dto.bandwidth ?? 0,
      pivot: dto.pivot ?? true,
      newVolumeIn,
    };
  },

  shape() {
    return { twoPhase: true, libvirtType: DomainBlockJobType.COPY };
  },

  prepare(p, disk, persistent) {
    const target = disk.target;
    const source = recheck(disk, p.source, 'source');
    if (source.depth !== 0) {
      throw conflict(
        `the chain changed since the job was accepted: ${p.source.path} is no longer the image the guest writes to`,
      );
    }
    if (chainPaths(disk).includes(p.destination)) {
      throw conflict(`destination ${p.destination} is an image of the disk's chain`);
    }
    const destxml = buildXml({
      name: 'disk',
      attrs: { type: 'file' },
      children: [
        { name: 'driver', attrs: { type: p.format } },
        { name: 'source', attrs: { file: p.destination } },
      ],
    });
    // A persistent domain's copy must be a transient job (libvirt refuses otherwise).
    const flags =
      (p.shallow ? DomainBlockCopyFlags.SHALLOW : 0) |
      (p.reuseExisting ? DomainBlockCopyFlags.REUSE_EXT : 0) |
      (persistent ? DomainBlockCopyFlags.TRANSIENT_JOB : 0);
    const params =
      p.bandwidth > 0
        ? [
            {
              field: BlockCopyParam.BANDWIDTH,
              value: { type: TypedParamType.ullong, value: BigInt(p.bandwidth) },
            },
          ]
        : [];
    return async (client, dom) =>
      void (await client.rpc.domainBlockCopy({ dom, path: target, destxml, params, flags }));
  },

  expectedChain(p, atStart) {
    return p.shallow ? [p.destination, ...atStart.slice(1)] : [p.destination];
  },

  /**
   * Applied once the destination is the top: what backs a reused
   * destination is the destination's own business.
   */
  classify(p, atStart, live) {
    if (live[0] === p.destination) return 'applied';
    return sameChain(live, atStart) ? 'unchanged' : 'unexpected';
  },
};

/**
 * Where a copy may write, checked by the api and again by the worker at job
 * start: inside a pool of the requester's scope or a configured root
 * (admins: anywhere), symlinks followed; and, for a confined requester, into
 * no file that exists unless `reuseExisting` names a volume of a pool in its
 * scope (`fresh`: false for a start a dead worker may have half done, whose
 * file libvirt may have made).
 */
export async function confineCopy(
  confinement: PathConfinement,
  client: LibvirtClient,
  host: HostRecord,
  access: PathAccess,
  p: { destination: string; reuseExisting: boolean },
  given: string | undefined,
  fresh = true,
): Promise<void> {
  const field = 'destination';
  // As given (its ".." segments are refused) and as resolved (a pool/volume's path).
  const paths = [{ field, path: p.destination }];
  if (given?.startsWith('/')) paths.unshift({ field, path: given });
  await confinement.requireAllowed(client, host, access, paths);
  if (mayUseAnyPath(access)) return;
  if (p.reuseExisting) {
    await confinement.requireReusableVolume(client, host, access, { field, path: p.destination });
  } else if (fresh) {
    await confinement.requireAbsent(client, host, { field, path: p.destination });
  }
}

/**
 * The copy's path: given; an existing storage volume's (with reuseExisting);
 * or a new volume's in a dir pool (`newVolumeIn`: the file libvirt creates
 * there, shown as a volume once the pool is refreshed). Never an image of the
 * domain's chains.
 */
async function destinationPath(
  c: LibvirtClient,
  dest: ParsedCopy,
  dto: StartBlockJobDto,
  disks: readonly DiskXml[],
  dom: RemoteDomain,
): Promise<{ destination: string; newVolumeIn: string | null }> {
  let destination: string;
  let newVolumeIn: string | null = null;
  if (dest.kind === 'volume') {
    // No such pool is libvirt's NOT_FOUND, as it says it.
    const { pool } = await c.rpc.storagePoolLookupByName({ name: dest.pool });
    const vol = await findStorageVol(c, pool, dest.volume);
    if (vol) {
      destination = (await c.rpc.storageVolGetPath({ vol })).name;
      if (!dto.reuseExisting) {
        throw invalidField(
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
    if (!dto.reuseExisting && (await findStorageVolByPath(c, destination))) {
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

/** Where a new volume `volume` of the pool goes: the file in an active dir pool's directory. */
async function newVolumePath(
  c: LibvirtClient,
  pool: RemoteStoragePool,
  poolName: string,
  volume: string,
): Promise<string> {
  if (!STORAGE_NAME_PATTERN.test(volume)) {
    throw invalidField(
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
