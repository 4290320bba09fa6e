import {
  applyDecorators,
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import {
  ApiBody,
  ApiExcludeEndpoint,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import {
  ApiProblemResponses,
  problemResponse,
} from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { NO_OPTIONS_BODY } from '#src/common/dto/input-fields.js';
import { PageQueryDto } from '#src/common/dto/page-query.dto.js';
import { ProblemDetailsDto } from '#src/common/dto/problem-details.dto.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import {
  ApiJobResponses,
  idempotencyKeyOf,
  JobModel,
  JobsService,
  respondWithJob,
} from '#modules/jobs/index.js';
import { CreateVolumeDto, DefinePoolDto, PoolActionDto } from './dto/storage-operations.dto.js';
import { StoragePoolListModel, StoragePoolModel } from './models/storage-pool.model.js';
import { StorageVolumeListModel, StorageVolumeModel } from './models/storage-volume.model.js';
import { StoragePoolOperationsService } from './storage-pool-operations.service.js';
import { StoragePoolsService } from './storage-pools.service.js';

const HOST_PARAM = { name: 'host', description: 'A registered host', example: 'local' };
const POOL_PARAM = { name: 'pool', description: "The storage pool's name", example: 'default' };
const VOLUME_PARAM = {
  name: 'volume',
  description: "The volume's name in its pool",
  example: 'vm1.qcow2',
};
/** What every pool action's operation says after its own sentences. */
function poolActionDescription(own: string): string {
  return `${own} Run as a job; its result holds the pool as GET …/pools/{pool} shows it.`;
}

/** The pool of the examples of changes. */
const IMAGES_POOL_PARAM = {
  name: 'pool',
  description: "The storage pool's name",
  example: 'images',
};

/**
 * A problem+json response whose code is not the one ApiProblemResponses
 * derives from the status (409 here is INVALID_STATE, 503 HOST_UNREACHABLE).
 */
function ApiProblem(status: number, description: string): ClassDecorator & MethodDecorator {
  return applyDecorators(
    ApiExtraModels(ProblemDetailsDto),
    ApiResponse(problemResponse(status, description)),
  );
}

const NOT_ACTIVE =
  'The pool is not active: libvirt shows no volumes of a stopped pool (code INVALID_STATE)';

@ApiTags('storage')
@ApiProblemResponses(401, 429, 500)
@ApiParam(HOST_PARAM)
@Controller('v1/hosts/:host/pools')
export class StoragePoolsController {
  constructor(
    private readonly pools: StoragePoolsService,
    private readonly operations: StoragePoolOperationsService,
    private readonly jobs: JobsService,
  ) {}

  @Access('viewer')
  @Get()
  @ApiProblem(404, 'No such host, pool or volume (code NOT_FOUND)')
  @ApiProblem(
    503,
    'The libvirt host cannot be reached (code HOST_UNREACHABLE, with a Retry-After header)',
  )
  @ApiOperation({
    summary: "List a host's storage pools",
    description:
      'Every pool libvirt knows on the host, active or not, sorted by name, with its state, ' +
      'target path, source and sizes (as of its last refresh). Paginated with `limit` and `cursor`.',
  })
  @ApiOkResponse({ type: StoragePoolListModel, description: 'A page of pools' })
  @ApiProblemResponses(400)
  listStoragePools(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Query() query: PageQueryDto,
  ): Promise<StoragePoolListModel> {
    return this.pools.listPools(caller, host, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor);
  }

  @Access('viewer')
  @Get(':pool')
  @ApiProblem(404, 'No such host, pool or volume (code NOT_FOUND)')
  @ApiProblem(
    503,
    'The libvirt host cannot be reached (code HOST_UNREACHABLE, with a Retry-After header)',
  )
  @ApiOperation({
    summary: 'A storage pool',
    description: 'Type, state, persistence, autostart, target path, source and sizes.',
  })
  @ApiParam(POOL_PARAM)
  @ApiOkResponse({ type: StoragePoolModel, description: 'The pool' })
  getStoragePool(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
  ): Promise<StoragePoolModel> {
    return this.pools.getPool(caller, host, pool);
  }

  @Access('viewer')
  @Get(':pool/volumes')
  @ApiProblem(404, 'No such host, pool or volume (code NOT_FOUND)')
  @ApiProblem(
    503,
    'The libvirt host cannot be reached (code HOST_UNREACHABLE, with a Retry-After header)',
  )
  @ApiOperation({
    summary: "List a storage pool's volumes",
    description:
      'The volumes libvirt knows in the pool (as of its last refresh), sorted by name, with ' +
      'format, sizes and backing store. The pool must be active: an inactive pool answers 409 ' +
      'INVALID_STATE. Paginated with `limit` and `cursor`.',
  })
  @ApiParam(POOL_PARAM)
  @ApiOkResponse({ type: StorageVolumeListModel, description: 'A page of volumes' })
  @ApiProblemResponses(400)
  @ApiProblem(409, NOT_ACTIVE)
  listStorageVolumes(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Query() query: PageQueryDto,
  ): Promise<StorageVolumeListModel> {
    return this.pools.listVolumes(
      caller,
      host,
      pool,
      query.limit ?? DEFAULT_PAGE_SIZE,
      query.cursor,
    );
  }

  @Access('viewer')
  @Get(':pool/volumes/:volume')
  @ApiProblem(404, 'No such host, pool or volume (code NOT_FOUND)')
  @ApiProblem(
    503,
    'The libvirt host cannot be reached (code HOST_UNREACHABLE, with a Retry-After header)',
  )
  @ApiOperation({
    summary: 'A storage volume',
    description:
      'Key, path, type, format, sizes and backing store. The pool must be active (409 ' +
      'INVALID_STATE otherwise).',
  })
  @ApiParam(POOL_PARAM)
  @ApiParam(VOLUME_PARAM)
  @ApiOkResponse({ type: StorageVolumeModel, description: 'The volume' })
  @ApiProblem(409, NOT_ACTIVE)
  getStorageVolume(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Param('volume') volume: string,
  ): Promise<StorageVolumeModel> {
    return this.pools.getVolume(caller, host, pool, volume);
  }

  @Access('admin')
  @Post()
  @ApiProblemResponses(404, 503)
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
  @ApiProblemResponses(400, 403, 409, 422)
  async defineStoragePool(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Body() body: DefinePoolDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.operations.definePool(
      caller,
      host,
      body,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  /*
   * Each action is its own operation (only start takes a body: `build`); the
   * URLs are the ones clients always used, and `…/actions/:action` stays for
   * any other action, hidden from the document (400 naming `action`).
   */

  @Access('admin')
  @Post(':pool/actions/start')
  @ApiProblemResponses(404, 503)
  @HttpCode(202)
  @ApiOperation({
    summary: 'Start a storage pool',
    description: poolActionDescription(
      "With `build: true` it is built first: a dir pool's directory is created when missing. Starting an active pool is 409 INVALID_STATE at once.",
    ),
  })
  @ApiParam(IMAGES_POOL_PARAM)
  @ApiBody({
    type: PoolActionDto,
    required: false,
    examples: { build: { summary: 'Create the directory first', value: { build: true } } },
  })
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  startStoragePool(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Body() body: PoolActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.poolAct(caller, host, pool, 'start', body, prefer, idempotencyKey, reply);
  }

  @Access('admin')
  @Post(':pool/actions/stop')
  @ApiProblemResponses(404, 503)
  @HttpCode(202)
  @ApiOperation({
    summary: 'Stop a storage pool',
    description: poolActionDescription(
      "libvirt's destroy: the pool becomes inactive, its files stay; volumes in use by running domains stay usable by them. No options: a body, if any, must be empty. Stopping an inactive pool is 409 INVALID_STATE at once.",
    ),
  })
  @ApiParam(IMAGES_POOL_PARAM)
  @ApiBody(NO_OPTIONS_BODY)
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  stopStoragePool(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Body() body: PoolActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.poolAct(caller, host, pool, 'stop', body, prefer, idempotencyKey, reply);
  }

  @Access('admin')
  @Post(':pool/actions/refresh')
  @ApiProblemResponses(404, 503)
  @HttpCode(202)
  @ApiOperation({
    summary: 'Refresh a storage pool',
    description: poolActionDescription(
      'libvirt re-reads the files: volumes added or changed behind its back appear. No options: a body, if any, must be empty. Refreshing an inactive pool is 409 INVALID_STATE at once.',
    ),
  })
  @ApiParam(IMAGES_POOL_PARAM)
  @ApiBody(NO_OPTIONS_BODY)
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  refreshStoragePool(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Body() body: PoolActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.poolAct(caller, host, pool, 'refresh', body, prefer, idempotencyKey, reply);
  }

  /** Any other action: refused by the service (400 naming `action`); not in the document. */
  @Access('admin')
  @Post(':pool/actions/:action')
  @HttpCode(202)
  @ApiExcludeEndpoint()
  storagePoolAction(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Param('action') action: string,
    @Body() body: PoolActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.poolAct(caller, host, pool, action, body, prefer, idempotencyKey, reply);
  }

  private async poolAct(
    caller: Caller,
    host: string,
    pool: string,
    action: string,
    body: PoolActionDto | undefined,
    prefer: string | undefined,
    idempotencyKey: string | undefined,
    reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.operations.poolAction(
      caller,
      host,
      pool,
      action,
      body ?? {},
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Access('admin')
  @Delete(':pool')
  @ApiProblemResponses(404, 503)
  @HttpCode(202)
  @ApiOperation({
    summary: 'Undefine a storage pool',
    description:
      'Removes the definition of an inactive pool; its directory and files stay. An active pool is 409 ' +
      'INVALID_STATE (stop it first); so is a transient one.',
  })
  @ApiParam(IMAGES_POOL_PARAM)
  @ApiJobResponses()
  @ApiProblemResponses(403, 409, 422)
  async undefineStoragePool(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.operations.undefinePool(
      caller,
      host,
      pool,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Access('operator')
  @Post(':pool/volumes')
  @ApiProblemResponses(404, 503)
  @HttpCode(202)
  @ApiOperation({
    summary: 'Create a storage volume',
    description:
      'A sparse raw or qcow2 file in the pool; a qcow2 volume may have a backing image (a volume, of this ' +
      "pool by default, or a path), making it an overlay of it, with the backing image's size unless " +
      '`capacityBytes` says otherwise. The pool must be active (409 INVALID_STATE); a name in use is 409 ' +
      'ALREADY_EXISTS. The job result holds the volume as GET …/volumes/{volume} shows it.',
  })
  @ApiParam(IMAGES_POOL_PARAM)
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
  @ApiProblemResponses(400, 403, 409, 422)
  async createStorageVolume(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Body() body: CreateVolumeDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.operations.createVolume(
      caller,
      host,
      pool,
      body,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Access('operator')
  @Delete(':pool/volumes/:volume')
  @ApiProblemResponses(404, 503)
  @HttpCode(202)
  @ApiOperation({
    summary: 'Delete a storage volume',
    description:
      'Deletes the volume and its file. Refused at once (409 INVALID_STATE) while a domain uses it (an image ' +
      "of a running domain's chain, the destination of a block copy it runs, or a disk of a domain's definition) " +
      'or another volume of the pool has it ' +
      'as its backing image; the pool must be active.',
  })
  @ApiParam(IMAGES_POOL_PARAM)
  @ApiParam({ name: 'volume', description: "The volume's name in its pool", example: 'vm1.qcow2' })
  @ApiJobResponses()
  @ApiProblemResponses(403, 409, 422)
  async deleteStorageVolume(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Param('volume') volume: string,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.operations.deleteVolume(
      caller,
      host,
      pool,
      volume,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }
}
