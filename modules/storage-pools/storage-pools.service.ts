import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { compareKeys, decodeCursor, paginate, type Page } from '#src/common/pagination.js';
import {
  LibvirtError,
  type LibvirtClient,
  type RemoteStoragePool,
  type RemoteStorageVol,
} from '#src/libvirt/index.js';
import { parseStoragePoolXml, parseStorageVolumeXml } from '#src/xml/storage-xml.js';
import { HostConnections } from '#modules/hosts/host-connections.service.js';
import { HostsService } from '#modules/hosts/hosts.service.js';
import {
  STORAGE_POOL_STATES,
  type StoragePoolModel,
  type StoragePoolState,
} from './models/storage-pool.model.js';
import {
  STORAGE_VOLUME_TYPES,
  type StorageVolumeModel,
  type StorageVolumeType,
} from './models/storage-volume.model.js';

/**
 * Storage pools and their volumes, read over the host's pooled read-only
 * connections. Used by REST and GraphQL alike: it knows nothing of either.
 *
 * Lists take one bulk call (connectListAllStoragePools,
 * storagePoolListAllVolumes), sort by name and cut the page first, then ask
 * for the details of that page's items only, all at once: the calls pipeline
 * on the connection instead of waiting on one another.
 */
@Injectable()
export class StoragePoolsService {
  constructor(
    private readonly hosts: HostsService,
    private readonly connections: HostConnections,
  ) {}

  /** The pools of `host`, sorted by name. */
  async listPools(
    host: string,
    limit: number,
    cursor: string | undefined,
  ): Promise<Page<StoragePoolModel>> {
    const record = await this.hosts.record(host);
    if (cursor !== undefined) decodeCursor(cursor); // a bad cursor is a 400 even when the host is down
    return this.connections.withClient(record, async (client) => {
      const { pools } = await client.rpc.connectListAllStoragePools({ needResults: 1, flags: 0 });
      pools.sort((a, b) => compareKeys(a.name, b.name));
      const page = paginate(pools, (p) => p.name, limit, cursor);
      const items = await Promise.all(
        page.items.map((p) => poolView(client, p).catch(unlessGone('VIR_ERR_NO_STORAGE_POOL'))),
      );
      return { items: items.filter((p) => p !== null), nextCursor: page.nextCursor };
    });
  }

  async getPool(host: string, pool: string): Promise<StoragePoolModel> {
    return this.inPool(host, pool, (client, ref) => poolView(client, ref));
  }

  /** The volumes of a pool, sorted by name; INVALID_STATE when the pool is not active. */
  async listVolumes(
    host: string,
    pool: string,
    limit: number,
    cursor: string | undefined,
  ): Promise<Page<StorageVolumeModel>> {
    if (cursor !== undefined) decodeCursor(cursor);
    return this.inPool(host, pool, async (client, ref) => {
      const { vols } = await client.rpc.storagePoolListAllVolumes({
        pool: ref,
        needResults: 1,
        flags: 0,
      });
      vols.sort((a, b) => compareKeys(a.name, b.name));
      const page = paginate(vols, (v) => v.name, limit, cursor);
      const items = await Promise.all(
        page.items.map((v) => volumeView(client, v).catch(unlessGone('VIR_ERR_NO_STORAGE_VOL'))),
      );
      return { items: items.filter((v) => v !== null), nextCursor: page.nextCursor };
    });
  }

  async getVolume(host: string, pool: string, volume: string): Promise<StorageVolumeModel> {
    return this.inPool(host, pool, async (client, ref) => {
      let vol: RemoteStorageVol;
      try {
        ({ vol } = await client.rpc.storageVolLookupByName({ pool: ref, name: volume }));
      } catch (err) {
        if (err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_STORAGE_VOL') {
          throw new AppError(
            ErrorCode.NOT_FOUND,
            `no volume named '${volume}' in storage pool '${pool}' on host '${host}'`,
          );
        }
        throw err;
      }
      return volumeView(client, vol);
    });
  }

  /**
   * Runs `fn` with the pool named `pool` on `host`. An unknown host or pool is
   * NOT_FOUND; a pool that is not active where libvirt needs it to be
   * (its volumes) is INVALID_STATE; other errors as HostConnections maps them.
   */
  private async inPool<T>(
    host: string,
    pool: string,
    fn: (client: LibvirtClient, ref: RemoteStoragePool) => Promise<T>,
  ): Promise<T> {
    const record = await this.hosts.record(host);
    return this.connections.withClient(record, async (client) => {
      try {
        const { pool: ref } = await client.rpc.storagePoolLookupByName({ name: pool });
        return await fn(client, ref);
      } catch (err) {
        if (!(err instanceof LibvirtError)) throw err;
        if (err.codeName === 'VIR_ERR_NO_STORAGE_POOL')
          throw new AppError(
            ErrorCode.NOT_FOUND,
            `no storage pool named '${pool}' on host '${host}'`,
            { cause: err },
          );
        if (err.codeName === 'VIR_ERR_OPERATION_INVALID')
          throw new AppError(
            ErrorCode.INVALID_STATE,
            `storage pool '${pool}' on host '${host}' is not active: start it to see its volumes`,
            { cause: err },
          );
        throw err;
      }
    });
  }
}

/** A pool's view: info (state, sizes), XML, autostart and persistence, asked for at once. */
export async function poolView(
  client: LibvirtClient,
  pool: RemoteStoragePool,
): Promise<StoragePoolModel> {
  const [info, { xml }, { autostart }, { persistent }] = await Promise.all([
    client.rpc.storagePoolGetInfo({ pool }),
    client.rpc.storagePoolGetXmlDesc({ pool, flags: 0 }),
    client.rpc.storagePoolGetAutostart({ pool }),
    client.rpc.storagePoolIsPersistent({ pool }),
  ]);
  const parsed = parseStoragePoolXml(xml);
  return {
    name: pool.name,
    uuid: uuidString(pool.uuid),
    type: parsed.type,
    state: poolState(info.state),
    persistent: persistent === 1,
    autostart: autostart === 1,
    path: parsed.path,
    source: parsed.source,
    capacityBytes: Number(info.capacity),
    allocationBytes: Number(info.allocation),
    availableBytes: Number(info.available),
  };
}

/** A volume's view, from its XML alone (it holds everything virStorageVolGetInfo would add). */
export async function volumeView(
  client: LibvirtClient,
  vol: RemoteStorageVol,
): Promise<StorageVolumeModel> {
  const { xml } = await client.rpc.storageVolGetXmlDesc({ vol, flags: 0 });
  const parsed = parseStorageVolumeXml(xml);
  return {
    name: vol.name,
    key: parsed.key ?? vol.key,
    path: parsed.path,
    type: volumeType(parsed.type),
    format: parsed.format,
    capacityBytes: parsed.capacityBytes ?? 0,
    allocationBytes: parsed.allocationBytes ?? 0,
    physicalBytes: parsed.physicalBytes,
    backingStore: parsed.backingStore,
  };
}

/** libvirt's virStoragePoolState number as a name; a state newer than this gateway reads as inaccessible. */
function poolState(state: number): StoragePoolState {
  return STORAGE_POOL_STATES[state] ?? 'inaccessible';
}

function volumeType(type: string): StorageVolumeType | null {
  return (STORAGE_VOLUME_TYPES as readonly string[]).includes(type)
    ? (type as StorageVolumeType)
    : null;
}

/**
 * For the items of a listing: an item removed between the listing and its
 * details (libvirt's `code`) is left out of the page rather than failing it.
 */
function unlessGone(code: string): (err: unknown) => null {
  return (err) => {
    if (err instanceof LibvirtError && err.codeName === code) return null;
    throw err;
  };
}

function uuidString(uuid: Buffer): string {
  const h = uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
