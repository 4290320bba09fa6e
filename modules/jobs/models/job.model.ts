import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { JOB_STATES, JOB_TYPES, type JobState, type JobType } from '#jobs/job-types.js';

@ApiSchema({ name: 'JobProgress' })
export class JobProgressModel {
  @ApiProperty({ description: "libvirt's cur", example: 5242880 })
  cur!: number;

  @ApiProperty({ description: "libvirt's end", example: 10485760 })
  end!: number;

  @ApiProperty({ example: 50 })
  percent!: number;
}

@ApiSchema({ name: 'JobError' })
export class JobErrorModel {
  @ApiProperty({ description: 'The error code, as in problem documents', example: 'INVALID_STATE' })
  code!: string;

  @ApiProperty({
    example:
      'libvirt: Requested operation is not valid: domain is not running (VIR_ERR_OPERATION_INVALID)',
  })
  message!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: "libvirt's error name when libvirt refused",
    example: 'VIR_ERR_OPERATION_INVALID',
  })
  libvirtCode!: string | null;
}

@ApiSchema({ name: 'Job' })
export class JobModel {
  @ApiProperty({ example: '0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11' })
  id!: string;

  @ApiProperty({ enum: Object.keys(JOB_TYPES), example: 'domain.start' })
  type!: JobType;

  @ApiProperty({ example: 'local' })
  host!: string;

  @ApiProperty({ type: String, nullable: true, example: 'vm1' })
  domain!: string | null;

  @ApiProperty({ type: String, nullable: true, example: '6695eb01-f6a4-8304-79aa-97f2502e193f' })
  domainUuid!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'vda' })
  disk!: string | null;

  @ApiProperty({ description: 'The request as given', type: 'object', additionalProperties: true })
  request!: Record<string, unknown>;

  @ApiProperty({
    description: 'The request as resolved against the live state when the job was accepted',
    type: 'object',
    additionalProperties: true,
  })
  resolved!: Record<string, unknown>;

  @ApiProperty({ enum: JOB_STATES, example: 'completed' })
  state!: JobState;

  @ApiProperty({ type: JobProgressModel, nullable: true })
  progress!: JobProgressModel | null;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'What the job did (for lifecycle jobs: the state afterwards)',
  })
  result!: Record<string, unknown> | null;

  @ApiProperty({ type: JobErrorModel, nullable: true })
  error!: JobErrorModel | null;

  @ApiProperty({ example: 'admin' })
  requestedBy!: string;

  @ApiProperty({ description: 'The X-Request-Id of the request that asked for it' })
  requestId!: string;

  @ApiProperty({ example: '2026-11-29T07:00:00.000Z' })
  createdAt!: string;

  @ApiProperty({ type: String, nullable: true })
  startedAt!: string | null;

  @ApiProperty({ type: String, nullable: true })
  finishedAt!: string | null;

  @ApiProperty()
  updatedAt!: string;

  @ApiProperty({
    description: 'Attempts the worker made (a lost connection is retried)',
    example: 1,
  })
  attempts!: number;

  @ApiProperty({ description: 'A cancel was asked for while the job ran' })
  cancelRequested!: boolean;
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
}
