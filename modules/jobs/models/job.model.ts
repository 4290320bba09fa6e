import { Field, Float, ID, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { JSONScalar } from '#src/graphql/json.scalar.js';
import { JOB_STATES, JOB_TYPES, type JobState, type JobType } from '#jobs/job-types.js';
import { ScopeFilteredProperty } from '#src/common/dto/scope-filtered.js';
import { registerValueEnum } from '#src/graphql/value-enum.js';
import { ErrorCodeEnum } from '#src/graphql/error-code.enum.js';
import { JobResultUnion } from './job-results.js';
import { ErrorCode } from '#src/common/errors/app-error.js';

export const JobStateEnum = Object.fromEntries(JOB_STATES.map((s) => [s, s]));
registerEnumType(JobStateEnum, { name: 'JobState' });
export const JobTypeEnum = registerValueEnum(
  Object.keys(JOB_TYPES) as JobType[],
  'JobType',
  'What a job does (REST: domain.start, block.commit, …)',
);

@ApiSchema({ name: 'JobProgress' })
@ObjectType('JobProgress')
export class JobProgressModel {
  @ApiProperty({ type: 'integer', description: "libvirt's cur", example: 5242880 })
  @Field(() => Float)
  cur!: number;

  @ApiProperty({ type: 'integer', description: "libvirt's end", example: 10485760 })
  @Field(() => Float)
  end!: number;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    maximum: 100,
    description: '`cur` of `end`, in whole %',
    example: 50,
  })
  @Field(() => Int, { description: '`cur` of `end` in whole percent, 0-100' })
  percent!: number;
}

@ApiSchema({ name: 'JobError' })
@ObjectType('JobError')
export class JobErrorModel {
  @ApiProperty({
    enum: ErrorCode,
    enumName: 'ErrorCode',
    description: 'The error code, as in problem documents',
    example: 'INVALID_STATE',
  })
  @Field(() => ErrorCodeEnum)
  code!: ErrorCode;

  @ApiProperty({
    example:
      'libvirt: Requested operation is not valid: domain is not running (VIR_ERR_OPERATION_INVALID)',
  })
  @Field()
  message!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: "libvirt's error name when libvirt refused",
    example: 'VIR_ERR_OPERATION_INVALID',
  })
  @Field(() => String, { nullable: true })
  libvirtCode!: string | null;
}

@ApiSchema({ name: 'Job' })
@ObjectType('Job')
export class JobModel {
  @ApiProperty({ example: '0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11' })
  @Field(() => ID)
  id!: string;

  @ApiProperty({ enum: Object.keys(JOB_TYPES), example: 'domain.start' })
  @Field(() => JobTypeEnum)
  type!: JobType;

  @ApiProperty({ example: 'local' })
  @Field()
  host!: string;

  @ApiProperty({ type: String, nullable: true, example: 'vm1' })
  @Field(() => String, { nullable: true })
  domain!: string | null;

  @ApiProperty({ type: String, nullable: true, example: '6695eb01-f6a4-8304-79aa-97f2502e193f' })
  @Field(() => String, { nullable: true })
  domainUuid!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'vda' })
  @Field(() => String, { nullable: true })
  disk!: string | null;

  @ApiProperty({ description: 'The request as given', type: 'object', additionalProperties: true })
  @Field(() => JSONScalar)
  request!: Record<string, unknown>;

  @ApiProperty({
    description: 'The request as resolved against the live state when the job was accepted',
    type: 'object',
    additionalProperties: true,
  })
  @Field(() => JSONScalar)
  resolved!: Record<string, unknown>;

  @ApiProperty({ enum: JOB_STATES, example: 'completed' })
  @Field(() => JobStateEnum)
  state!: JobState;

  @ApiProperty({ type: JobProgressModel, nullable: true })
  @Field(() => JobProgressModel, { nullable: true })
  progress!: JobProgressModel | null;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description:
      "What the job did, by the job's type (each type's Job variant names its result): lifecycle jobs, the state afterwards; " +
      'block jobs (also when canceled or failed), the outcome and the chain read back from the live XML; ' +
      'null until the job ended, and for a failed job other than a block job',
  })
  @Field(() => JobResultUnion, { nullable: true })
  result!: object | null;

  @ApiProperty({
    type: JobErrorModel,
    nullable: true,
    description: 'Why the job failed; null otherwise',
    example: null,
  })
  @Field(() => JobErrorModel, { nullable: true })
  error!: JobErrorModel | null;

  @ApiProperty({ example: 'admin' })
  @Field()
  requestedBy!: string;

  @ApiProperty({ description: 'The X-Request-Id of the request that asked for it' })
  @Field()
  requestId!: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-29T07:00:00.000Z' })
  @Field()
  createdAt!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  @Field(() => String, { nullable: true })
  startedAt!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  @Field(() => String, { nullable: true })
  finishedAt!: string | null;

  @ApiProperty({ format: 'date-time' })
  @Field()
  updatedAt!: string;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: 'Attempts the worker made (a lost connection is retried)',
    example: 1,
  })
  @Field(() => Int)
  attempts!: number;

  @ApiProperty({ description: 'A cancel was asked for while the job ran' })
  @Field()
  cancelRequested!: boolean;

  @ApiProperty({
    description:
      "A block job libvirt was running with no record of the gateway's (started outside it, or its record " +
      'lost), taken on by reconciliation: `resolved` holds what libvirt said of it; it is pivoted or canceled ' +
      'like any other. False for every job that was asked for',
  })
  @Field()
  adopted!: boolean;
}

@ApiSchema({ name: 'JobList' })
export class JobListModel {
  @ApiProperty({ type: [JobModel] })
  items!: JobModel[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as cursor for the next page; null on the last page',
  })
  nextCursor!: string | null;

  @ScopeFilteredProperty()
  scopeFiltered!: boolean;
}
