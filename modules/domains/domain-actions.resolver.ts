import { Args, ArgsType, Field, Mutation, Resolver } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsIn, IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';
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
import { DomainActionsService } from './domain-actions.service.js';
import {
  DOMAIN_ACTIONS,
  DomainActionDto,
  DomainActionEnum,
  type DomainAction,
} from './dto/domain-action.dto.js';

@ArgsType()
class DomainActionArgs extends JobMutationArgs {
  @Field()
  @IsString()
  @MaxLength(63)
  host!: string;

  @Field({ description: 'Domain name or UUID' })
  @IsString()
  @MaxLength(256)
  domain!: string;

  @Field(() => DomainActionEnum)
  @IsIn(DOMAIN_ACTIONS)
  action!: DomainAction;

  @Field(() => DomainActionDto, { nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => DomainActionDto)
  options?: DomainActionDto;
}

/** Domain lifecycle in GraphQL: the same rules and jobs as POST …/actions/{action}. */
@Resolver()
export class DomainActionsResolver {
  constructor(
    private readonly actions: DomainActionsService,
    private readonly jobs: JobsService,
  ) {}

  @Mutation(() => JobModel, {
    description:
      'Start, shut down, destroy, reboot, suspend or resume a domain, or set its autostart, as a job; with `wait`, the job once finished (or as it is after `wait` seconds)',
  })
  async domainAction(
    @CurrentCaller() caller: Caller,
    @Args() args: DomainActionArgs,
  ): Promise<JobModel> {
    const accepted = await this.actions.request(
      caller,
      args.host,
      args.domain,
      args.action,
      withoutNulls(args.options ?? {}),
      mutationIdempotencyKey(args),
    );
    return mutationJob(this.jobs, accepted, args);
  }
}
