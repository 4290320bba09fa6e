import { applyDecorators, Controller, Get, Param, Query } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { ProblemDetailsDto } from '#src/common/dto/problem-details.dto.js';
import { PageQueryDto } from '#src/common/dto/page-query.dto.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import { StoragePoolListModel, StoragePoolModel } from './models/storage-pool.model.js';
import { StorageVolumeListModel, StorageVolumeModel } from './models/storage-volume.model.js';
import { StoragePoolsService } from './storage-pools.service.js';

const HOST_PARAM = { name: 'host', description: 'A registered host', example: 'local' };
const POOL_PARAM = { name: 'pool', description: "The storage pool's name", example: 'default' };
const VOLUME_PARAM = {
  name: 'volume',
  description: "The volume's name in its pool",
  example: 'vm1.qcow2',
};

/**
 * A problem+json response whose code is not the one ApiProblemResponses
 * derives from the status (409 here is INVALID_STATE, 503 HOST_UNREACHABLE).
 */
function ApiProblem(status: number, description: string): ClassDecorator & MethodDecorator {
  return applyDecorators(
    ApiExtraModels(ProblemDetailsDto),
    ApiResponse({
      status,
      description,
      content: {
        'application/problem+json': { schema: { $ref: getSchemaPath(ProblemDetailsDto) } },
      },
    }),
  );
}

const NOT_ACTIVE =
  'The pool is not active: libvirt shows no volumes of a stopped pool (code INVALID_STATE)';

@ApiTags('storage')
@ApiProblemResponses(401, 500)
@ApiProblem(404, 'No such host, pool or volume (code NOT_FOUND)')
@ApiProblem(
  503,
  'The libvirt host cannot be reached (code HOST_UNREACHABLE, with a Retry-After header)',
)
@ApiParam(HOST_PARAM)
@Controller('v1/hosts/:host/pools')
export class StoragePoolsController {
  constructor(private readonly pools: StoragePoolsService) {}

  @Get()
  @ApiOperation({
    summary: "List a host's storage pools",
    description:
      'Every pool libvirt knows on the host, active or not, sorted by name, with its state, ' +
      'target path, source and sizes (as of its last refresh). Paginated with `limit` and `cursor`.',
  })
  @ApiOkResponse({ type: StoragePoolListModel, description: 'A page of pools' })
  @ApiProblemResponses(400)
  listStoragePools(
    @Param('host') host: string,
    @Query() query: PageQueryDto,
  ): Promise<StoragePoolListModel> {
    return this.pools.listPools(host, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor);
  }

  @Get(':pool')
  @ApiOperation({
    summary: 'A storage pool',
    description: 'Type, state, persistence, autostart, target path, source and sizes.',
  })
  @ApiParam(POOL_PARAM)
  @ApiOkResponse({ type: StoragePoolModel, description: 'The pool' })
  getStoragePool(
    @Param('host') host: string,
    @Param('pool') pool: string,
  ): Promise<StoragePoolModel> {
    return this.pools.getPool(host, pool);
  }

  @Get(':pool/volumes')
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
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Query() query: PageQueryDto,
  ): Promise<StorageVolumeListModel> {
    return this.pools.listVolumes(host, pool, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor);
  }

  @Get(':pool/volumes/:volume')
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
    @Param('host') host: string,
    @Param('pool') pool: string,
    @Param('volume') volume: string,
  ): Promise<StorageVolumeModel> {
    return this.pools.getVolume(host, pool, volume);
  }
}
