import {
  Body,
  Controller,
  Delete,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import { ApiBody, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { ApiJobResponses } from '#modules/jobs/api-job-responses.decorator.js';
import { idempotencyKeyOf, respondWithJob } from '#modules/jobs/job-response.js';
import { JobsService } from '#modules/jobs/jobs.service.js';
import { JobModel } from '#modules/jobs/models/job.model.js';
import { DomainDefinitionsService } from './domain-definitions.service.js';
import { DomainSnapshotsService } from './domain-snapshots.service.js';
import { CreateSnapshotDto } from './dto/create-snapshot.dto.js';
import { DefineDomainDto, UndefineDomainQueryDto } from './dto/define-domain.dto.js';

const HOST = { name: 'host', description: 'A registered host', example: 'local' };
const DOMAIN = { name: 'domain', description: 'Domain name, or UUID', example: 'vm1' };

const DEFINE_EXAMPLE = {
  name: 'vm1',
  memoryMiB: 1024,
  vcpus: 2,
  disks: [
    { pool: 'default', volume: 'vm1.qcow2' },
    { path: '/srv/iso/debian.iso', device: 'cdrom' },
  ],
  interfaces: [{ network: 'default' }],
};

@ApiTags('domains')
@ApiProblemResponses(401, 404, 500, 503)
@Controller('v1/hosts/:host/domains')
@ApiParam(HOST)
export class DomainDefinitionsController {
  constructor(
    private readonly definitions: DomainDefinitionsService,
    private readonly snapshots: DomainSnapshotsService,
    private readonly jobs: JobsService,
  ) {}

  @Post()
  @HttpCode(202)
  @ApiOperation({
    summary: 'Define a domain, from a spec or (admins) from libvirt XML',
    description:
      'From a spec (`name`, `memoryMiB`, `vcpus`, `disks` from pool volumes or paths, `interfaces` on a network ' +
      'or bridge, `type` kvm or qemu): the gateway builds the domain XML, taking the arch, machine type and emulator ' +
      "from the host's capabilities where not given, and a disk's format from its volume. A headless guest with " +
      'ACPI (graceful shutdown works), a serial console, booting from its first disk. ' +
      'From `xml` (admins only, alone): libvirt domain XML as it is, checked to be well-formed; a UUID is added when it ' +
      'has none. Either way the domain is defined (persistent, shut off) by a job, with libvirt validating the XML ' +
      'against its schema. A name or UUID already in use is 409 ALREADY_EXISTS at once; a network is not checked ' +
      'until the domain starts. The job result holds `uuid` and `name`.',
  })
  @ApiBody({
    type: DefineDomainDto,
    examples: {
      spec: { summary: 'From a spec', value: DEFINE_EXAMPLE },
      xml: {
        summary: 'From XML (admins)',
        value: {
          xml: "<domain type='kvm'><name>vm2</name><memory unit='MiB'>512</memory><os><type>hvm</type></os></domain>",
        },
      },
    },
  })
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  async defineDomain(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Body() body: DefineDomainDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.definitions.define(
      caller,
      host,
      body ?? {},
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Delete(':domain')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Undefine a domain',
    description:
      'Removes the persistent definition of a shut-off domain, as a job; its disk images stay. A running or paused ' +
      'domain is refused (409 INVALID_STATE): libvirt would keep it running as a transient domain that vanishes at ' +
      'its next stop, which is rarely what anyone wants; stop it first. A transient domain has no definition ' +
      "to remove (409). A domain with snapshots in libvirt's metadata needs `snapshotsMetadata=true` (409 " +
      'otherwise); one with a managed save image needs `managedSave=true` (libvirt refuses otherwise and the job ' +
      'fails); its NVRAM file is kept unless `nvram=true`.',
  })
  @ApiParam(DOMAIN)
  @ApiJobResponses()
  @ApiProblemResponses(400, 409, 422)
  async undefineDomain(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Query() query: UndefineDomainQueryDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.definitions.undefine(
      caller,
      host,
      domain,
      query,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

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
  @ApiProblemResponses(400, 409, 422)
  async createDomainSnapshot(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Body() body: CreateSnapshotDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.snapshots.create(
      caller,
      host,
      domain,
      body ?? {},
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }
}
