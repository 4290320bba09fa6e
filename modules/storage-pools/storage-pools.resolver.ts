import { Args, Parent, ResolveField, Resolver } from '@nestjs/graphql';
import {
  ConnectionArgs,
  connectionComplexity,
  toConnection,
  withConnectionArgs,
  type Connection,
} from '#src/graphql/connection.js';
import { HostModel } from '#modules/hosts/models/host.model.js';
import { StoragePoolModel } from './models/storage-pool.model.js';
import {
  StoragePoolsConnection,
  StorageVolumesConnection,
} from './models/storage-pools-connection.model.js';
import { StorageVolumeModel } from './models/storage-volume.model.js';
import { StoragePoolsService } from './storage-pools.service.js';

/** The host of each pool object a query returned, for its field resolvers. */
const hostOf = new WeakMap<StoragePoolModel, string>();

function nodeOf(host: string, pool: StoragePoolModel): StoragePoolModel {
  hostOf.set(pool, host);
  return pool;
}

function hostOfPool(pool: StoragePoolModel): string {
  const host = hostOf.get(pool);
  if (host === undefined) throw new Error(`pool '${pool.name}' reached GraphQL without its host`);
  return host;
}

/**
 * A host's storage pools in GraphQL: the same service and views as
 * /v1/hosts/{host}/pools. Each page is one bulk list call plus the details
 * of its items, all pipelined (see StoragePoolsService).
 */
@Resolver(() => HostModel)
export class HostStoragePoolsResolver {
  constructor(private readonly pools: StoragePoolsService) {}

  @ResolveField('pools', () => StoragePoolsConnection, {
    nullable: true,
    description:
      "The host's storage pools sorted by name (null, with an error, when the host cannot be reached)",
    complexity: connectionComplexity,
  })
  async listStoragePools(
    @Parent() host: HostModel,
    @Args() args: ConnectionArgs,
  ): Promise<Connection<StoragePoolModel>> {
    const page = await withConnectionArgs(args, (limit, cursor) =>
      this.pools.listPools(host.name, limit, cursor),
    );
    return toConnection(
      page,
      (p) => p.name,
      (p) => nodeOf(host.name, p),
    );
  }

  @ResolveField('pool', () => StoragePoolModel, {
    nullable: true,
    description: 'A storage pool by name (null, with a NOT_FOUND error, when there is none)',
  })
  async getStoragePool(
    @Parent() host: HostModel,
    @Args('name') name: string,
  ): Promise<StoragePoolModel> {
    return nodeOf(host.name, await this.pools.getPool(host.name, name));
  }
}

@Resolver(() => StoragePoolModel)
export class StoragePoolsResolver {
  constructor(private readonly pools: StoragePoolsService) {}

  @ResolveField('volumes', () => StorageVolumesConnection, {
    nullable: true,
    description:
      "The pool's volumes sorted by name (null, with an INVALID_STATE error, when the pool is not active)",
    complexity: connectionComplexity,
  })
  async listStorageVolumes(
    @Parent() pool: StoragePoolModel,
    @Args() args: ConnectionArgs,
  ): Promise<Connection<StorageVolumeModel>> {
    const page = await withConnectionArgs(args, (limit, cursor) =>
      this.pools.listVolumes(hostOfPool(pool), pool.name, limit, cursor),
    );
    return toConnection(page, (v) => v.name);
  }

  @ResolveField('volume', () => StorageVolumeModel, {
    nullable: true,
    description: 'A volume by name (null, with a NOT_FOUND error, when there is none)',
  })
  getStorageVolume(
    @Parent() pool: StoragePoolModel,
    @Args('name') name: string,
  ): Promise<StorageVolumeModel> {
    return this.pools.getVolume(hostOfPool(pool), pool.name, name);
  }
}
