import { Body, Controller, Get, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
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
import { CreateSnapshotDto } from './dto/create-snapshot.dto.js';
import { SnapshotModel } from './models/snapshot.model.js';
import { SnapshotOperationsService } from './snapshot-operations.service.js';
import { SnapshotsService } from './snapshots.service.js';

const HOST = { name: 'host', description: 'A registered host', example: 'local' };
const DOMAIN = { name: 'domain', description: 'Domain name, or UUID', example: 'vm1' };

/** A domain's snapshots: listed, and taken (external, disk-only) as jobs. */
@ApiTags('domains')
@ApiProblemResponses(401, 429, 404, 500, 503)
@Controller('v1/hosts/:host/domains')
@ApiParam(HOST)
export class SnapshotsController {
  constructor(
    private readonly snapshots: SnapshotsService,
    private readonly operations: SnapshotOperationsService,
    private readonly jobs: JobsService,
  ) {}

  @Access('viewer')
  @Get(':domain/snapshots')
  @ApiOperation({ summary: "The domain's snapshots with their disks, oldest first" })
  @ApiParam(DOMAIN)
  @ApiOkResponse({ type: [SnapshotModel] })
  listSnapshots(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
  ): Promise<SnapshotModel[]> {
    return this.snapshots.list(caller, host, domain);
  }

  @Access('operator')
  @Post(':domain/snapshots')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Take an external disk-only snapshot',
    description:
      'A new qcow2 overlay on each disk named in `disks` (by default every writable disk with a file or block ' +
      'image), placed next to the current top image as `<dir>/<image-base>.<snapshot-name>.qcow2` unless a `path` ' +
      "is given; the current top becomes its backing image. All disks or none (libvirt's ATOMIC), on a running " +
      'domain (live, no pause) or a shut-off one. Refused at once: an unknown, read-only or network disk (400), an ' +
      'overlay path that is an image of the domain or a known storage volume (409 ALREADY_EXISTS; libvirt also ' +
      'refuses to overwrite any existing file, failing the job with ALREADY_EXISTS), a disk with a block job running ' +
      "(409 CONFLICT). With `metadata: true` the snapshot is also recorded in libvirt's snapshot metadata " +
      '(then listed by GET …/snapshots, and undefine needs snapshotsMetadata=true). The job result holds the ' +
      "overlays and the disks' new chains, read back from libvirt.",
  })
  @ApiParam(DOMAIN)
  @ApiBody({
    type: CreateSnapshotDto,
    examples: {
      all: { summary: 'Every writable disk, default paths', value: { name: 'before-upgrade' } },
      one: {
        summary: 'One disk, overlay where asked',
        value: {
          name: 'nightly',
          disks: [{ target: 'vda', path: '/srv/overlays/vm1-nightly.qcow2' }],
        },
      },
    },
  })
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  async createDomainSnapshot(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Body() body: CreateSnapshotDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.operations.create(
      caller,
      host,
      domain,
      body ?? {},
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }
}
