import { Args, ArgsType, Field, Mutation, Parent, ResolveField, Resolver } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { withoutNulls } from '#src/common/without-nulls.js';
import {
  ConnectionArgs,
  connectionComplexity,
  toConnection,
  withConnectionArgs,
  type Connection,
} from '#src/graphql/connection.js';
import {
  JobModel,
  JobMutationArgs,
  JobsService,
  mutationIdempotencyKey,
  mutationJob,
} from '#modules/jobs/index.js';
import { HostModel } from '#modules/hosts/models/host.model.js';
import {
  CreateVolumeDto,
  DefinePoolDto,
  POOL_ACTIONS,
  PoolActionEnum,
  type PoolAction,
} from './dto/storage-operations.dto.js';
import { StoragePoolModel } from './models/storage-pool.model.js';
import {
  StoragePoolsConnection,
  StorageVolumesConnection,
} from './models/storage-pools-connection.model.js';
import { StorageVolumeModel } from './models/storage-volume.model.js';
import { StoragePoolOperationsService } from './storage-pool-operations.service.js';
import { StoragePoolsService } from './storage-pools.service.js';

@ArgsType()
class HostArgs extends JobMutationArgs {
  @Field()
  @IsString()
  @MaxLength(63)
  host!: string;
}

@ArgsType()
class DefinePoolArgs extends HostArgs {
  @Field(() => DefinePoolDto)
  @ValidateNested()
  @Type(() => DefinePoolDto)
  input!: DefinePoolDto;
}

@ArgsType()
class PoolArgs extends HostArgs {
  @Field({ description: "The storage pool's name" })
  @IsString()
  @MaxLength(256)
  pool!: string;
}

@ArgsType()
class PoolActionArgs extends PoolArgs {
  @Field(() => PoolActionEnum)
  @IsIn(POOL_ACTIONS)
  action!: PoolAction;

  @Field(() => Boolean, {
    nullable: true,
    description: "start: build the pool first (a dir pool's directory is created when missing)",
  })
  @IsOptional()
  @IsBoolean()
  build?: boolean | null;
}

@ArgsType()
class CreateVolumeArgs extends PoolArgs {
  @Field(() => CreateVolumeDto)
  @ValidateNested()
  @Type(() => CreateVolumeDto)
  input!: CreateVolumeDto;
}

@ArgsType()
class VolumeArgs extends PoolArgs {
  @Field({ description: "The volume's name in its pool" })
  @IsString()
  @MaxLength(256)
  volume!: string;
}

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
    @CurrentCaller() caller: Caller,
    @Parent() host: HostModel,
    @Args() args: ConnectionArgs,
  ): Promise<Connection<StoragePoolModel>> {
    const page = await withConnectionArgs(args, (limit, cursor) =>
      this.pools.listPools(caller, host.name, limit, cursor),
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
    @CurrentCaller() caller: Caller,
    @Parent() host: HostModel,
    @Args('name') name: string,
  ): Promise<StoragePoolModel> {
    return nodeOf(host.name, await this.pools.getPool(caller, host.name, name));
  }
}

/**
 * A pool's volumes in GraphQL, and the storage mutations: the same service,
 * rules and jobs as POST /v1/hosts/{host}/pools and the routes under it.
 */
@Resolver(() => StoragePoolModel)
export class StoragePoolsResolver {
  constructor(
    private readonly pools: StoragePoolsService,
    private readonly operations: StoragePoolOperationsService,
    private readonly jobs: JobsService,
  ) {}

  @ResolveField('volumes', () => StorageVolumesConnection, {
    nullable: true,
    description:
      "The pool's volumes sorted by name (null, with an INVALID_STATE error, when the pool is not active)",
    complexity: connectionComplexity,
  })
  async listStorageVolumes(
    @CurrentCaller() caller: Caller,
    @Parent() pool: StoragePoolModel,
    @Args() args: ConnectionArgs,
  ): Promise<Connection<StorageVolumeModel>> {
    const page = await withConnectionArgs(args, (limit, cursor) =>
      this.pools.listVolumes(caller, hostOfPool(pool), pool.name, limit, cursor),
    );
    return toConnection(page, (v) => v.name);
  }

  @ResolveField('volume', () => StorageVolumeModel, {
    nullable: true,
    description: 'A volume by name (null, with a NOT_FOUND error, when there is none)',
  })
  getStorageVolume(
    @CurrentCaller() caller: Caller,
    @Parent() pool: StoragePoolModel,
    @Args('name') name: string,
  ): Promise<StorageVolumeModel> {
    return this.pools.getVolume(caller, hostOfPool(pool), pool.name, name);
  }

  @Access('admin')
  @Mutation(() => JobModel, {
    description:
      'Define a dir storage pool (not started), as a job (see POST /v1/hosts/{host}/pools); with `wait`, the job once finished (or as it is after `wait` seconds)',
  })
  async definePool(
    @CurrentCaller() caller: Caller,
    @Args() args: DefinePoolArgs,
  ): Promise<JobModel> {
    const accepted = await this.operations.definePool(
      caller,
      args.host,
      withoutNulls(args.input),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Access('admin')
  @Mutation(() => JobModel, {
    description:
      'Start (`build`: create its directory first), stop or refresh a storage pool, as a job (see POST …/pools/{pool}/actions/{action}); with `wait`, the job once finished',
  })
  async poolAction(
    @CurrentCaller() caller: Caller,
    @Args() args: PoolActionArgs,
  ): Promise<JobModel> {
    const accepted = await this.operations.poolAction(
      caller,
      args.host,
      args.pool,
      args.action,
      args.build === undefined || args.build === null ? {} : { build: args.build },
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Access('admin')
  @Mutation(() => JobModel, {
    description:
      'Undefine an inactive storage pool (its files stay), as a job (see DELETE …/pools/{pool}); with `wait`, the job once finished',
  })
  async undefinePool(@CurrentCaller() caller: Caller, @Args() args: PoolArgs): Promise<JobModel> {
    const accepted = await this.operations.undefinePool(
      caller,
      args.host,
      args.pool,
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Access('operator')
  @Mutation(() => JobModel, {
    description:
      'Create a sparse raw or qcow2 volume, optionally backed by another image, as a job (see POST …/pools/{pool}/volumes); with `wait`, the job once finished',
  })
  async createVolume(
    @CurrentCaller() caller: Caller,
    @Args() args: CreateVolumeArgs,
  ): Promise<JobModel> {
    const accepted = await this.operations.createVolume(
      caller,
      args.host,
      args.pool,
      withoutNulls(args.input),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Access('operator')
  @Mutation(() => JobModel, {
    description:
      'Delete a volume and its file (refused while a domain uses it or a volume is backed by it), as a job (see DELETE …/volumes/{volume}); with `wait`, the job once finished',
  })
  async deleteVolume(@CurrentCaller() caller: Caller, @Args() args: VolumeArgs): Promise<JobModel> {
    const accepted = await this.operations.deleteVolume(
      caller,
      args.host,
      args.pool,
      args.volume,
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }
}
