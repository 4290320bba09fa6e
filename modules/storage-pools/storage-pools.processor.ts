import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { jobAccess, PathConfinement } from '#src/hosts/path-confinement.js';
import {
  findStoragePool,
  findStoragePoolByUuid as poolByUuid,
  findStorageVol as volumeNamed,
  StoragePoolCreateFlags,
  StoragePoolDefineFlags,
  StoragePoolState,
  uuidString,
  type LibvirtClient,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import { parseStoragePoolXml, parseStorageVolumeXml } from '#src/xml/storage-xml.js';
import { JobProcessor, type QueueProcessor } from '#jobs/processor.js';
import { poolView, volumeView } from './storage-views.js';

async function requirePool(
  client: LibvirtClient,
  uuid: string,
  name: string,
): Promise<RemoteStoragePool> {
  const pool = await poolByUuid(client, uuid);
  if (!pool) {
    throw new AppError(ErrorCode.NOT_FOUND, `storage pool '${name}' (${uuid}) no longer exists`);
  }
  return pool;
}

async function isActive(client: LibvirtClient, pool: RemoteStoragePool): Promise<boolean> {
  return (await client.rpc.storagePoolGetInfo({ pool })).state !== StoragePoolState.INACTIVE;
}

/**
 * Storage pools and volumes. Each handler looks at the live state first, so a
 * job run again after a worker died finishes instead of applying twice: the
 * pool with the request's UUID exists (define), is active (start) or gone
 * (undefine); the volume exists as asked (create) or is gone (delete).
 * Results are the pool's or volume's view as the API shows it, read back.
 */
@Injectable()
@JobProcessor()
export class StorageProcessor implements QueueProcessor<'storage'> {
  readonly queue = 'storage' as const;
  readonly concurrency = 8;

  constructor(private readonly confinement: PathConfinement) {}

  readonly handlers: QueueProcessor<'storage'>['handlers'] = {
    'pool.define': async ({ client, job, host }) => {
      const { pool: name, uuid, xml } = job.params;
      const existing = await poolByUuid(client, uuid);
      if (existing) {
        if (existing.name !== name) {
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            `a storage pool with UUID ${uuid} exists already, named '${existing.name}'`,
          );
        }
        return { changed: false, pool: await poolView(client, existing) };
      }
      const other = await findStoragePool(client, name);
      if (other) {
        throw new AppError(
          ErrorCode.ALREADY_EXISTS,
          `a storage pool named '${name}' exists already (UUID ${uuidString(other.uuid)})`,
        );
      }
      // Where the directory leads now: inside the configured roots, asked for by an admin.
      await this.confinement.requirePoolPathAllowed(host, jobAccess(job.access), {
        field: 'path',
        path: parseStoragePoolXml(xml).path ?? '',
      });
      const { pool } = await client.rpc.storagePoolDefineXml({
        xml,
        flags: StoragePoolDefineFlags.VALIDATE,
      });
      return { changed: true, pool: await poolView(client, pool) };
    },

    'pool.start': async ({ client, job, host }) => {
      const pool = await requirePool(client, job.params.uuid, job.params.pool);
      const changed = !(await isActive(client, pool));
      if (changed) {
        const { xml } = await client.rpc.storagePoolGetXmlDesc({ pool, flags: 0 });
        await this.confinement.requirePoolStillInRoots(host, {
          field: 'pool',
          path: parseStoragePoolXml(xml).path ?? '',
        });
        await client.rpc.storagePoolCreate({
          pool,
          flags: job.params.build
            ? StoragePoolCreateFlags.WITH_BUILD
            : StoragePoolCreateFlags.NORMAL,
        });
      }
      return { changed, pool: await poolView(client, pool) };
    },

    'pool.stop': async ({ client, job }) => {
      const pool = await requirePool(client, job.params.uuid, job.params.pool);
      const changed = await isActive(client, pool);
      if (changed) await client.rpc.storagePoolDestroy({ pool });
      // A transient pool is gone once stopped.
      const still = await poolByUuid(client, job.params.uuid);
      return { changed, pool: still ? await poolView(client, still) : null };
    },

    'pool.refresh': async ({ client, job }) => {
      const pool = await requirePool(client, job.params.uuid, job.params.pool);
      if (!(await isActive(client, pool))) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `storage pool '${job.params.pool}' is not active`,
        );
      }
      await client.rpc.storagePoolRefresh({ pool, flags: 0 });
      return { changed: true, pool: await poolView(client, pool) };
    },

    'pool.undefine': async ({ client, job }) => {
      const { pool: name, uuid } = job.params;
      const pool = await poolByUuid(client, uuid);
      if (!pool) return { changed: false, pool: name, uuid }; // an earlier attempt did it
      if (await isActive(client, pool)) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `storage pool '${name}' was started since the request: stop it first`,
        );
      }
      await client.rpc.storagePoolUndefine({ pool });
      return { changed: true, pool: name, uuid };
    },

    'volume.create': async ({ client, job, host }) => {
      const p = job.params;
      const pool = await requirePool(client, p.poolUuid, p.pool);
      if (!(await isActive(client, pool))) {
        throw new AppError(ErrorCode.INVALID_STATE, `storage pool '${p.pool}' is not active`);
      }
      const existing = await volumeNamed(client, pool, p.volume);
      if (existing) {
        // Created by an earlier attempt if it is what was asked for; someone else's otherwise.
        const have = parseStorageVolumeXml(
          (await client.rpc.storageVolGetXmlDesc({ vol: existing, flags: 0 })).xml,
        );
        const sameSize =
          p.capacityBytes === null || have.capacityBytes === Math.ceil(p.capacityBytes / 512) * 512;
        if (
          have.format === p.format &&
          sameSize &&
          (have.backingStore?.path ?? null) === (p.backing?.path ?? null)
        ) {
          return { changed: false, volume: await volumeView(client, existing) };
        }
        throw new AppError(
          ErrorCode.ALREADY_EXISTS,
          `storage pool '${p.pool}' has a volume named '${p.volume}' already`,
        );
      }
      if (p.backing) {
        await this.confinement.requireAllowed(client, host, jobAccess(job.access), [
          { field: 'backing.path', path: p.backing.path },
        ]);
      }
      const { vol } = await client.rpc.storageVolCreateXml({ pool, xml: p.xml, flags: 0 });
      return { changed: true, volume: await volumeView(client, vol) };
    },

    'volume.delete': async ({ client, job }) => {
      const p = job.params;
      const pool = await requirePool(client, p.poolUuid, p.pool);
      if (!(await isActive(client, pool))) {
        throw new AppError(ErrorCode.INVALID_STATE, `storage pool '${p.pool}' is not active`);
      }
      const vol = await volumeNamed(client, pool, p.volume);
      if (!vol) return { changed: false, pool: p.pool, volume: p.volume, path: p.path };
      await client.rpc.storageVolDelete({ vol, flags: 0 });
      return { changed: true, pool: p.pool, volume: p.volume, path: p.path };
    },
  };
}
