import { Body, Controller, Delete, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { ApiJobResponses } from '#modules/jobs/api-job-responses.decorator.js';
import { idempotencyKeyOf, respondWithJob } from '#modules/jobs/job-response.js';
import { JobsService } from '#modules/jobs/jobs.service.js';
import { JobModel } from '#modules/jobs/models/job.model.js';
import {
  CreateVolumeDto,
  DefinePoolDto,
  POOL_ACTIONS,
  PoolActionDto,
} from './dto/storage-operations.dto.js';
import { StorageOperationsService } from './storage-operations.service.js';

const HOST_PARAM = { name: 'host', description: 'A registered host', example: 'local' };
const POOL_PARAM = { name: 'pool', description: "The storage pool's name", example: 'images' };

/** Changes to storage pools and volumes, each a job on the host. */
@ApiTags('storage')
@ApiProblemResponses(401, 404, 500, 503)
@ApiParam(HOST_PARAM)
@Controller('v1/hosts/:host/pools')
export class StorageOperationsController {
  constructor(
    private readonly storage: StorageOperationsService,
    private readonly jobs: JobsService,
  ) {}

  @Post()
  @HttpCode(202)
  @ApiOperation({
    summary: 'Define a storage pool',
    description:
      'A `dir` pool: a directory of image files, defined (persistent) but not started; start it with ' +
      '`build: true` to create its directory. A name in use, or a directory another pool has, is 409 ' +
      'ALREADY_EXISTS at once. The job result holds the pool as GET …/pools/{pool} shows it.',
  })
  @ApiBody({
    type: DefinePoolDto,
    examples: { dir: { summary: 'A dir pool', value: { name: 'images', path: '/srv/images' } } },
  })
  @ApiJobResponses()
  @ApiProblemResponses(400, 409, 422)
  async defineStoragePool(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Body() body: DefinePoolDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.storage.definePool(
      caller,
      host,
      body,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Post(':pool/actions/:action')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Start, stop or refresh a storage pool',
    description:
      "`start` (with `build: true`, build it first: a dir pool's directory is created when missing), `stop` " +
      "(libvirt's destroy: the pool becomes inactive, its files stay; volumes in use by running domains stay " +
      'usable by them), `refresh` (libvirt re-reads the files: volumes added or changed behind its back ' +
      'appear). Starting an active pool or stopping or refreshing an inactive one is 409 INVALID_STATE at ' +
      'once. The job result holds the pool as GET …/pools/{pool} shows it.',
  })
  @ApiParam(POOL_PARAM)
  @ApiParam({ name: 'action', enum: POOL_ACTIONS })
  @ApiJobResponses()
  @ApiProblemResponses(400, 409, 422)
  async storagePoolAction(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Param('action') action: string,
    @Body() body: PoolActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.storage.poolAction(
      caller,
      host,
      pool,
      action,
      body ?? {},
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Delete(':pool')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Undefine a storage pool',
    description:
      'Removes the definition of an inactive pool; its directory and files stay. An active pool is 409 ' +
      'INVALID_STATE (stop it first); so is a transient one.',
  })
  @ApiParam(POOL_PARAM)
  @ApiJobResponses()
  @ApiProblemResponses(409, 422)
  async undefineStoragePool(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.storage.undefinePool(
      caller,
      host,
      pool,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Post(':pool/volumes')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Create a storage volume',
    description:
      'A sparse raw or qcow2 file in the pool; a qcow2 volume may have a backing image (a volume, of this ' +
      "pool by default, or a path), making it an overlay of it, with the backing image's size unless " +
      '`capacityBytes` says otherwise. The pool must be active (409 INVALID_STATE); a name in use is 409 ' +
      'ALREADY_EXISTS. The job result holds the volume as GET …/volumes/{volume} shows it.',
  })
  @ApiParam(POOL_PARAM)
  @ApiBody({
    type: CreateVolumeDto,
    examples: {
      qcow2: {
        summary: 'An empty 10 GiB qcow2',
        value: { name: 'vm1.qcow2', capacityBytes: 10737418240 },
      },
      overlay: {
        summary: 'An overlay of a base image',
        value: { name: 'vm2.qcow2', backing: { volume: 'debian-12.qcow2' } },
      },
      raw: {
        summary: 'A raw file',
        value: { name: 'scratch.img', format: 'raw', capacityBytes: 1073741824 },
      },
    },
  })
  @ApiJobResponses()
  @ApiProblemResponses(400, 409, 422)
  async createStorageVolume(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Body() body: CreateVolumeDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.storage.createVolume(
      caller,
      host,
      pool,
      body,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Delete(':pool/volumes/:volume')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Delete a storage volume',
    description:
      'Deletes the volume and its file. Refused at once (409 INVALID_STATE) while a domain uses it (an image ' +
      "of a running domain's chain, the destination of a block copy it runs, or a disk of a domain's definition) " +
      'or another volume of the pool has it ' +
      'as its backing image; the pool must be active.',
  })
  @ApiParam(POOL_PARAM)
  @ApiParam({ name: 'volume', description: "The volume's name in its pool", example: 'vm1.qcow2' })
  @ApiJobResponses()
  @ApiProblemResponses(409, 422)
  async deleteStorageVolume(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Param('volume') volume: string,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.storage.deleteVolume(
      caller,
      host,
      pool,
      volume,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }
}
