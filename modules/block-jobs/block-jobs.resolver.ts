import { Args, ArgsType, Field, ID, Mutation, Resolver } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsString, IsUUID, MaxLength, ValidateNested } from 'class-validator';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { withoutNulls } from '#src/common/without-nulls.js';
import {
  JobModel,
  JobMutationArgs,
  JobWaitArgs,
  JobsService,
  mutationIdempotencyKey,
  mutationJob,
} from '#modules/jobs/index.js';
import { BlockJobOperationsService } from './block-job-operations.service.js';
import { StartBlockJobDto } from './dto/start-block-job.dto.js';

@ArgsType()
class StartBlockJobArgs extends JobMutationArgs {
  @Field()
  @IsString()
  @MaxLength(63)
  host!: string;

  @Field({ description: 'Domain name or UUID' })
  @IsString()
  @MaxLength(256)
  domain!: string;

  @Field({ description: 'The disk target (vda)' })
  @IsString()
  @MaxLength(32)
  disk!: string;

  @Field(() => StartBlockJobDto)
  @ValidateNested()
  @Type(() => StartBlockJobDto)
  input!: StartBlockJobDto;
}

@ArgsType()
class PivotBlockJobArgs extends JobWaitArgs {
  @Field(() => ID)
  @IsUUID()
  id!: string;
}

/** Block jobs in GraphQL: the same rules and jobs as POST …/disks/{target}/block-jobs and /v1/jobs/{id}/pivot. */
@Resolver()
export class BlockJobsResolver {
  constructor(
    private readonly blockJobs: BlockJobOperationsService,
    private readonly jobs: JobsService,
  ) {}

  @Access('operator')
  @Mutation(() => JobModel, {
    description:
      'Start a block commit, copy or pull on a disk, as a job (see POST …/disks/{target}/block-jobs); with `wait`, the job once finished (or as it is after `wait` seconds)',
  })
  async startBlockJob(
    @CurrentCaller() caller: Caller,
    @Args() args: StartBlockJobArgs,
  ): Promise<JobModel> {
    const accepted = await this.blockJobs.start(
      caller,
      args.host,
      args.domain,
      args.disk,
      withoutNulls(args.input),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }

  @Access('operator')
  @Mutation(() => JobModel, {
    description:
      'Pivot a block job that waits in ready (NOT_READY before libvirt reported it ready); with `wait`, the job once finished',
  })
  async pivotBlockJob(
    @CurrentCaller() caller: Caller,
    @Args() args: PivotBlockJobArgs,
  ): Promise<JobModel> {
    return mutationJob(this.jobs, await this.jobs.pivot(caller, args.id), args);
  }
}
