import { Field, InputType } from '@nestjs/graphql';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { JOB_STATES, JOB_TYPES, type JobState, type JobType } from '#jobs/job-types.js';
import { JobStateEnum, JobTypeEnum } from '../models/job.model.js';

@InputType('JobFilter')
export class JobFilterInput {
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(63)
  host?: string;

  @Field(() => String, { nullable: true, description: 'Domain name or UUID' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  domain?: string;

  @Field(() => JobStateEnum, { nullable: true })
  @IsOptional()
  @IsIn(JOB_STATES)
  state?: JobState;

  @Field(() => JobTypeEnum, { nullable: true })
  @IsOptional()
  @IsIn(Object.keys(JOB_TYPES))
  type?: JobType;
}
