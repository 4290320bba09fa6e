import { Args, ArgsType, Field, Mutation, Resolver } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import {
  JobMutationArgs,
  mutationIdempotencyKey,
  mutationJob,
  withoutNulls,
} from '#modules/jobs/job-mutation.js';
import { JobsService } from '#modules/jobs/jobs.service.js';
import { JobModel } from '#modules/jobs/models/job.model.js';
import {
  CreateVolumeDto,
  DefinePoolDto,
  POOL_ACTIONS,
  PoolActionEnum,
  type PoolAction,
} from './dto/storage-operations.dto.js';
import { StorageOperationsService } from './storage-operations.service.js';

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

/**
 * Storage changes in GraphQL: the same service, rules and jobs as
 * POST /v1/hosts/{host}/pools and the routes under it.
 */
@Resolver()
export class StorageOperationsResolver {
  constructor(
    private readonly storage: StorageOperationsService,
    private readonly jobs: JobsService,
  ) {}

  @Mutation(() => JobModel, {
    description:
      'Define a dir storage pool (not started), as a job (see POST /v1/hosts/{host}/pools); with `wait`, the job once finished (or as it is after `wait` seconds)',
  })
  async definePool(
    @CurrentCaller() caller: Caller,
    @Args() args: DefinePoolArgs,
  ): Promise<JobModel> {
    const accepted = await this.storage.definePool(
      caller,
      args.host,
      withoutNulls(args.input),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Mutation(() => JobModel, {
    description:
      'Start (`build`: create its directory first), stop or refresh a storage pool, as a job (see POST …/pools/{pool}/actions/{action}); with `wait`, the job once finished',
  })
  async poolAction(
    @CurrentCaller() caller: Caller,
    @Args() args: PoolActionArgs,
  ): Promise<JobModel> {
    const accepted = await this.storage.poolAction(
      caller,
      args.host,
      args.pool,
      args.action,
      args.build === undefined || args.build === null ? {} : { build: args.build },
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Mutation(() => JobModel, {
    description:
      'Undefine an inactive storage pool (its files stay), as a job (see DELETE …/pools/{pool}); with `wait`, the job once finished',
  })
  async undefinePool(@CurrentCaller() caller: Caller, @Args() args: PoolArgs): Promise<JobModel> {
    const accepted = await this.storage.undefinePool(
      caller,
      args.host,
      args.pool,
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Mutation(() => JobModel, {
    description:
      'Create a sparse raw or qcow2 volume, optionally backed by another image, as a job (see POST …/pools/{pool}/volumes); with `wait`, the job once finished',
  })
  async createVolume(
    @CurrentCaller() caller: Caller,
    @Args() args: CreateVolumeArgs,
  ): Promise<JobModel> {
    const accepted = await this.storage.createVolume(
      caller,
      args.host,
      args.pool,
      withoutNulls(args.input),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Mutation(() => JobModel, {
    description:
      'Delete a volume and its file (refused while a domain uses it or a volume is backed by it), as a job (see DELETE …/volumes/{volume}); with `wait`, the job once finished',
  })
  async deleteVolume(@CurrentCaller() caller: Caller, @Args() args: VolumeArgs): Promise<JobModel> {
    const accepted = await this.storage.deleteVolume(
      caller,
      args.host,
      args.pool,
      args.volume,
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }
}
