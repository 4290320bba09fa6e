import { Args, ArgsType, Field, Int, Mutation, Resolver } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { TERMINAL_STATES } from '#jobs/job-types.js';
import { idempotencyKeyOf } from '#modules/jobs/job-response.js';
import { JobsService, MAX_WAIT_SECONDS } from '#modules/jobs/jobs.service.js';
import { JobModel } from '#modules/jobs/models/job.model.js';
import { DomainActionsService } from './domain-actions.service.js';
import {
  DOMAIN_ACTIONS,
  DomainActionDto,
  DomainActionEnum,
  type DomainAction,
} from './dto/domain-action.dto.js';

@ArgsType()
class DomainActionArgs {
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

  @Field(() => String, { nullable: true, description: 'Same key and request: the same job back' })
  @IsOptional()
  @IsString()
  idempotencyKey?: string;

  @Field(() => Int, {
    nullable: true,
    description: `Wait up to this many seconds (at most ${MAX_WAIT_SECONDS}) for the job to finish`,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_WAIT_SECONDS)
  wait?: number;
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
      args.options ?? {},
      idempotencyKeyOf(args.idempotencyKey),
    );
    const wait = args.wait ?? 0;
    const record = accepted.record;
    return wait > 0 && !TERMINAL_STATES.has(record.state)
      ? this.jobs.wait(record.id, wait)
      : record;
  }
}
