import { Args, ArgsType, Field, ID, Int, Mutation, Resolver } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import {
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { TERMINAL_STATES } from '#jobs/job-types.js';
import type { JobRecord } from '#jobs/job-store.js';
import { idempotencyKeyOf } from '#modules/jobs/job-response.js';
import { JobsService, MAX_WAIT_SECONDS } from '#modules/jobs/jobs.service.js';
import { JobModel } from '#modules/jobs/models/job.model.js';
import { BlockJobsService } from './block-jobs.service.js';
import { StartBlockJobDto } from './dto/start-block-job.dto.js';

const WAIT = {
  nullable: true,
  description: `Wait up to this many seconds (at most ${MAX_WAIT_SECONDS}) for the job to finish`,
};

@ArgsType()
class StartBlockJobArgs {
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

  @Field(() => String, { nullable: true, description: 'Same key and request: the same job back' })
  @IsOptional()
  @IsString()
  idempotencyKey?: string;

  @Field(() => Int, WAIT)
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_WAIT_SECONDS)
  wait?: number;
}

@ArgsType()
class PivotBlockJobArgs {
  @Field(() => ID)
  @IsUUID()
  id!: string;

  @Field(() => Int, WAIT)
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_WAIT_SECONDS)
  wait?: number;
}

/** Block jobs in GraphQL: the same rules and jobs as POST …/disks/{target}/block-jobs and /v1/jobs/{id}/pivot. */
@Resolver()
export class BlockJobsResolver {
  constructor(
    private readonly blockJobs: BlockJobsService,
    private readonly jobs: JobsService,
  ) {}

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
      args.input,
      idempotencyKeyOf(args.idempotencyKey),
    );
    return this.waited(accepted.record, args.wait);
  }

  @Mutation(() => JobModel, {
    description:
      'Pivot a block job that waits in ready (NOT_READY before libvirt reported it ready); with `wait`, the job once finished',
  })
  async pivotBlockJob(
    @CurrentCaller() caller: Caller,
    @Args() args: PivotBlockJobArgs,
  ): Promise<JobModel> {
    return this.waited(await this.jobs.pivot(caller, args.id), args.wait);
  }

  private async waited(record: JobRecord, wait: number | undefined): Promise<JobRecord> {
    return (wait ?? 0) > 0 && !TERMINAL_STATES.has(record.state)
      ? this.jobs.wait(record.id, wait!)
      : record;
  }
}
