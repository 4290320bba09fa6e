import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import type { Caller } from '#src/common/auth/caller.js';
import { isUnscoped, poolInScope } from '#src/common/auth/scope.js';
import {
  compareKeys,
  decodeCursor,
  paginate,
  type Page,
  type Scoped,
} from '#src/common/pagination.js';
import { HostConnections } from '#src/hosts/host-connections.js';
import { HostRegistry } from '#src/hosts/host-registry.js';
import {
  findStoragePool,
  findStorageVol,
  isNoStoragePool,
  isNoStorageVol,
  isOperationInvalid,
  type LibvirtClient,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import type { StoragePoolModel } from './models/storage-pool.model.js';
import type { StorageVolumeModel } from './models/storage-volume.model.js';
import { poolView, volumeView } from './storage-views.js';

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
    private readonly registry: HostRegistry,
    private readonly connections: HostConnections,
  ) {}

  /** The pools of `host`, sorted by name. */
  async listPools(
    caller: Caller,
    host: string,
    limit: number,
    cursor: string | undefined,
  ): Promise<Scoped<Page<StoragePoolModel>>> {
    const record = await this.registry.getFor(caller, host);
    if (cursor !== undefined) decodeCursor(cursor); // a bad cursor is a 400 even when the host is down
    return this.connections.withClient(record, async (client) => {
      const { pools: all } = await client.rpc.connectListAllStoragePools({
        needResults: 1,
        flags: 0,
      });
      const pools = all.filter((p) => poolInScope(caller, record.name, p.name));
      pools.sort((a, b) => compareKeys(a.name, b.name));
      const page = paginate(pools, (p) => p.name, limit, cursor);
      const items = await Promise.all(
        page.items.map((p) => poolView(client, p).catch(unlessGone(isNoStoragePool))),
      );
      return {
        items: items.filter((p) => p !== null),
        nextCursor: page.nextCursor,
        scopeFiltered: !isUnscoped(caller),
      };
    });
  }

  async getPool(caller: Caller, host: string, pool: string): Promise<StoragePoolModel> {
    return this.inPool(caller, host, pool, (client, ref) => poolView(client, ref));
  }

  /** The volumes of a pool, sorted by name; INVALID_STATE when the pool is not active. */
  async listVolumes(
    caller: Caller,
    host: string,
    pool: string,
    limit: number,
    cursor: string | undefined,
  ): Promise<Page<StorageVolumeModel>> {
    if (cursor !== undefined) decodeCursor(cursor);
    return this.inPool(caller, host, pool, async (client, ref) => {
      const { vols } = await client.rpc.storagePoolListAllVolumes({
        pool: ref,
        needResults: 1,
        flags: 0,
      });
      vols.sort((a, b) => compareKeys(a.name, b.name));
      const page = paginate(vols, (v) => v.name, limit, cursor);
      const items = await Promise.all(
        page.items.map((v) => volumeView(client, v).catch(unlessGone(isNoStorageVol))),
      );
      return { items: items.filter((v) => v !== null), nextCursor: page.nextCursor };
    });
  }

  async getVolume(
    caller: Caller,
    host: string,
    pool: string,
    volume: string,
  ): Promise<StorageVolumeModel> {
    return this.inPool(caller, host, pool, async (client, ref) => {
      const vol = await findStorageVol(client, ref, volume);
      if (!vol) {
        throw new AppError(
          ErrorCode.NOT_FOUND,
          `no volume named '${volume}' in storage pool '${pool}' on host '${host}'`,
        );
      }
      return volumeView(client, vol);
    });
  }

  /**
   * Runs `fn` with the pool named `pool` on `host`. An unknown host or pool is
   * NOT_FOUND, and so is one outside the caller's scope; a pool that is not active where libvirt needs it to be
   * (its volumes) is INVALID_STATE; other errors as HostConnections maps them.
   */
  private async inPool<T>(
    caller: Caller,
    host: string,
    pool: string,
    fn: (client: LibvirtClient, ref: RemoteStoragePool) => Promise<T>,
  ): Promise<T> {
    const record = await this.registry.getFor(caller, host);
    return this.connections.withClient(record, async (client) => {
      const ref = poolInScope(caller, record.name, pool)
        ? await findStoragePool(client, pool)
        : null;
      if (!ref) {
        throw new AppError(
          ErrorCode.NOT_FOUND,
          `no storage pool named '${pool}' on host '${host}'`,
        );
      }
      try {
        return await fn(client, ref);
      } catch (err) {
        if (!isOperationInvalid(err)) throw err;
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `storage pool '${pool}' on host '${host}' is not active: start it to see its volumes`,
          { cause: err },
        );
      }
    });
  }
}

/**
 * For the items of a listing: an item removed between the listing and its
 * details (`gone` says which error means that) is left out of the page rather
 * than failing it.
 */
function unlessGone(gone: (err: unknown) => boolean): (err: unknown) => null {
  return (err) => {
    if (gone(err)) return null;
    throw err;
  };
}
