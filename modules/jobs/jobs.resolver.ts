import {
  Args,
  ArgsType,
  Field,
  ID,
  Mutation,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsOptional, IsUUID, ValidateNested } from 'class-validator';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import {
  ConnectionArgs,
  connectionComplexity,
  toConnection,
  withConnectionArgs,
} from '#src/graphql/connection.js';
import { JobFilterInput } from './dto/job-filter.input.js';
import { JobsService } from './jobs.service.js';
import { JobResultUnion, typedResult } from './models/job-results.js';
import { JobModel } from './models/job.model.js';
import { JobsConnection } from './models/jobs-connection.model.js';

@ArgsType()
class JobsArgs extends ConnectionArgs {
  @Field(() => JobFilterInput, { nullable: true, description: 'Filters combine' })
  @IsOptional()
  @ValidateNested()
  @Type(() => JobFilterInput)
  filter?: JobFilterInput;
}

@ArgsType()
class JobIdArgs {
  @Field(() => ID)
  @IsUUID()
  id!: string;
}

/** Jobs in GraphQL: the same service and records as /v1/jobs. */
@Resolver(() => JobModel)
export class JobsResolver {
  constructor(private readonly jobs: JobsService) {}

  @Access('viewer')
  @Query(() => JobModel, {
    name: 'job',
    nullable: true,
    description: 'A job (null, with NOT_FOUND, when there is none)',
  })
  getJob(@CurrentCaller() caller: Caller, @Args() { id }: JobIdArgs): Promise<JobModel> {
    return this.jobs.get(caller, id);
  }

  @Access('viewer')
  @Query(() => JobsConnection, {
    name: 'jobs',
    description: 'Jobs, newest first',
    complexity: connectionComplexity,
  })
  async listJobs(@CurrentCaller() caller: Caller, @Args() args: JobsArgs): Promise<JobsConnection> {
    const page = await withConnectionArgs(args, (limit, cursor) =>
      this.jobs.list(caller, args.filter ?? {}, limit, cursor),
    );
    return toConnection(page, (j) => j.id);
  }

  @Access('operator')
  @Mutation(() => JobModel, { description: 'Cancel a job: a queued one never starts' })
  cancelJob(@CurrentCaller() caller: Caller, @Args() { id }: JobIdArgs): Promise<JobModel> {
    return this.jobs.cancel(caller, id);
  }

  /** The result as its job type's member of the JobResult union. */
  @ResolveField('result', () => JobResultUnion, { nullable: true })
  result(@Parent() job: JobModel): object | null {
    return job.result === null ? null : typedResult(job.type, job.result);
  }
}
