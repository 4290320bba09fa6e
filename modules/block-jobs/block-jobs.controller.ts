import { Body, Controller, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import {
  ApiBody,
  ApiExtraModels,
  ApiOperation,
  ApiParam,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import {
  ApiJobResponses,
  idempotencyKeyOf,
  JobModel,
  JobsService,
  respondWithJob,
} from '#modules/jobs/index.js';
import { BlockJobOperationsService } from './block-job-operations.service.js';
import {
  CommitBlockJob,
  CopyBlockJob,
  PullBlockJob,
  StartBlockJobDto,
  type BlockJobKind,
} from './dto/start-block-job.dto.js';

/** Each block-job type's body in the OpenAPI document. */
const BLOCK_JOB_BODIES: ReadonlyArray<readonly [BlockJobKind, new () => object]> = [
  ['commit', CommitBlockJob],
  ['copy', CopyBlockJob],
  ['pull', PullBlockJob],
];

@ApiTags('block-jobs')
@ApiProblemResponses(401, 429, 404, 500, 503)
@Controller('v1/hosts/:host/domains/:domain/disks/:target/block-jobs')
@ApiParam({ name: 'host', description: 'A registered host', example: 'local' })
@ApiParam({ name: 'domain', description: 'Domain name, or UUID', example: 'vm1' })
@ApiParam({ name: 'target', description: 'The disk target', example: 'vda' })
export class BlockJobsController {
  constructor(
    private readonly blockJobs: BlockJobOperationsService,
    private readonly jobs: JobsService,
  ) {}

  @Access('operator')
  @Post()
  @HttpCode(202)
  @ApiOperation({
    summary: 'Start a block commit, copy or pull on a disk',
    description:
      'References (`top`, `base`) are resolved against the live chain now (a reference that names no image is 409, ' +
      'with the field named) and again when the job starts (the job fails with CONFLICT if the chain changed so that ' +
      'they no longer name the same images). One block job per disk: a second one, whether libvirt runs one or the ' +
      'gateway has one queued or running, is 409 CONFLICT at once.\n\n' +
      'The job goes `queued` → `running` (progress from libvirt) → for an active commit or a copy `ready` → ' +
      '`pivoting` → `completed`, or `failed` / `canceled`. With `pivot: false` it waits in `ready` for ' +
      '`POST /v1/jobs/{id}/pivot` or `DELETE /v1/jobs/{id}` (which keeps the original image). A job is completed ' +
      "only when libvirt's block job event says so and the live XML shows the new chain; its `result` holds that " +
      "chain (`disk`, with libvirt's current indexes) and `persistentChainDiffers` for a persistent domain.\n\n" +
      '202 with the job and its Location; `Prefer: wait=N` (N <= 60) waits up to N seconds and answers 200 with ' +
      'the finished job if it finished. The same `Idempotency-Key` with the same request gives back the same job.',
  })
  @ApiExtraModels(CommitBlockJob, CopyBlockJob, PullBlockJob)
  @ApiBody({
    required: true,
    schema: {
      title: 'StartBlockJob',
      description: 'One block job: its `type` says which fields it takes',
      oneOf: BLOCK_JOB_BODIES.map(([, model]) => ({ $ref: getSchemaPath(model) })),
      discriminator: {
        propertyName: 'type',
        mapping: Object.fromEntries(
          BLOCK_JOB_BODIES.map(([type, model]) => [type, getSchemaPath(model)]),
        ),
      },
    },
    examples: {
      activeCommit: {
        summary: 'Active commit of the top image into vda[3], pivot when ready',
        value: { type: 'commit', base: 'vda[3]' },
      },
      commit: {
        summary: 'Commit vda[2] into vda[4], at most 100 MiB/s',
        value: { type: 'commit', top: 'vda[2]', base: 'vda[4]', bandwidth: 104857600 },
      },
      copy: {
        summary: 'Copy the disk to a new file and wait in ready for a pivot',
        value: {
          type: 'copy',
          destination: '/var/lib/libvirt/images/vm1-copy.qcow2',
          format: 'qcow2',
          pivot: false,
        },
      },
      pull: {
        summary: 'Pull everything above vda[3] into the top image',
        value: { type: 'pull', base: 'vda[3]' },
      },
    },
  })
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  async startBlockJob(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Param('target') target: string,
    @Body() body: StartBlockJobDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.blockJobs.start(
      caller,
      host,
      domain,
      target,
      body,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }
}
