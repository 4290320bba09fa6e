import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import {
  LibvirtError,
  StoragePoolState,
  type LibvirtClient,
  type RemoteStoragePool,
  type RemoteStorageVol,
} from '#src/libvirt/index.js';
import { parseStorageVolumeXml } from '#src/xml/storage-xml.js';
import { poolView, volumeView } from '#modules/storage-pools/storage-pools.service.js';
import type { QueueProcessor } from '../processor.js';

/**
 * libvirt flags the client's constants do not list yet (libvirt-storage.h):
 * VIR_STORAGE_POOL_DEFINE_VALIDATE and VIR_STORAGE_POOL_CREATE_WITH_BUILD.
 */
const POOL_DEFINE_VALIDATE = 1;
const POOL_CREATE_WITH_BUILD = 1;

const isNo = (err: unknown, code: string): boolean =>
  err instanceof LibvirtError && err.codeName === code;

/** The pool with this UUID (the one the request named), or null when it no longer exists. */
async function poolByUuid(client: LibvirtClient, uuid: string): Promise<RemoteStoragePool | null> {
  try {
    return (
      await client.rpc.storagePoolLookupByUuid({
        uuid: Buffer.from(uuid.replaceAll('-', ''), 'hex'),
      })
    ).pool;
  } catch (err) {
    if (isNo(err, 'VIR_ERR_NO_STORAGE_POOL')) return null;
    throw err;
  }
}

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

async function volumeNamed(
  client: LibvirtClient,
  pool: RemoteStoragePool,
  name: string,
): Promise<RemoteStorageVol | null> {
  try {
    return (await client.rpc.storageVolLookupByName({ pool, name })).vol;
  } catch (err) {
    if (isNo(err, 'VIR_ERR_NO_STORAGE_VOL')) return null;
    throw err;
  }
}

/**
 * Storage pools and volumes. Each handler looks at the live state first, so a
 * job run again after a worker died finishes instead of applying twice: the
 * pool with the request's UUID exists (define), is active (start) or gone
 * (undefine); the volume exists as asked (create) or is gone (delete).
 * Results are the pool's or volume's view as the API shows it, read back.
 */
@Injectable()
export class StorageProcessor implements QueueProcessor<'storage'> {
  readonly queue = 'storage' as const;
  readonly concurrency = 8;

  readonly handlers: QueueProcessor<'storage'>['handlers'] = {
    'pool.define': async ({ client, job }) => {
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
      try {
        const { pool: other } = await client.rpc.storagePoolLookupByName({ name });
        throw new AppError(
          ErrorCode.ALREADY_EXISTS,
          `a storage pool named '${name}' exists already (UUID ${other.uuid.toString('hex')})`,
        );
      } catch (err) {
        if (!isNo(err, 'VIR_ERR_NO_STORAGE_POOL')) throw err;
      }
      const { pool } = await client.rpc.storagePoolDefineXml({ xml, flags: POOL_DEFINE_VALIDATE });
      return { changed: true, pool: await poolView(client, pool) };
    },

    'pool.start': async ({ client, job }) => {
      const pool = await requirePool(client, job.params.uuid, job.params.pool);
      const changed = !(await isActive(client, pool));
      if (changed) {
        await client.rpc.storagePoolCreate({
          pool,
          flags: job.params.build ? POOL_CREATE_WITH_BUILD : 0,
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

    'volume.create': async ({ client, job }) => {
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
