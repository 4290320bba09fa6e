import {
  Body,
  Controller,
  Delete,
  Get,
  Header,
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
  ApiProduces,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { ApiRefusedFields } from '#src/common/decorators/api-refused-fields.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { NO_OPTIONS_BODY } from '#src/common/dto/input-fields.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import {
  ApiJobResponses,
  idempotencyKeyOf,
  JobModel,
  JobsService,
  respondWithJob,
} from '#modules/jobs/index.js';
import { DomainOperationsService } from './domain-operations.service.js';
import { DomainsService } from './domains.service.js';
import {
  AutostartDomainOptions,
  DestroyDomainOptions,
  DomainActionDto,
  refusedOptions,
  ShutdownDomainOptions,
  StartDomainOptions,
} from './dto/domain-action.dto.js';
import {
  DefineDomainDto,
  DomainSpec,
  DomainXml,
  UndefineDomainQueryDto,
} from './dto/define-domain.dto.js';
import { ListDomainsQueryDto, XmlQueryDto } from './dto/list-domains-query.dto.js';
import { DiskModel, DomainListModel, DomainModel } from './models/domain.model.js';

const HOST = { name: 'host', description: 'A registered host', example: 'local' };
const DOMAIN = { name: 'domain', description: 'Domain name, or UUID', example: 'vm1' };

/** What every action's operation says after its own sentence. */
function actionDescription(own: string): string {
  return (
    `${own} Checked against the live state (an action that cannot apply is 409 at once), then run as a job: ` +
    '202 with the job and its Location. With `Prefer: wait=N` (N <= 60) the answer waits up to N seconds ' +
    'and is 200 with the finished job if it finished. The same `Idempotency-Key` with the same request ' +
    'gives back the same job; with another request, 422.'
  );
}

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
@ApiProblemResponses(401, 429, 404, 500, 503)
@Controller('v1/hosts/:host/domains')
@ApiParam(HOST)
export class DomainsController {
  constructor(
    private readonly domains: DomainsService,
    private readonly operations: DomainOperationsService,
    private readonly jobs: JobsService,
  ) {}

  /*
   * Each action is its own operation with its own body (POST …/actions/start
   * takes only `paused`…), so a client generated from the document cannot send
   * one action another's options. The URLs are the ones clients always used:
   * `…/actions/:action` stays for any other action, hidden from the document,
   * so an unknown one is still a 400 naming `action`.
   */

  @Access('operator')
  @Post(':domain/actions/start')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Start a domain',
    description: actionDescription(
      'A shut-off domain is started (with `paused: true`, left paused).',
    ),
  })
  @ApiParam(DOMAIN)
  @ApiRefusedFields(refusedOptions('start'))
  @ApiBody({ type: StartDomainOptions, required: false })
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  startDomain(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Body() body: DomainActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.act(caller, host, domain, 'start', body, prefer, idempotencyKey, reply);
  }

  @Access('operator')
  @Post(':domain/actions/shutdown')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Shut a domain down (ACPI)',
    description: actionDescription(
      'The guest is asked to shut down and given `timeoutSeconds`; with `force: true` it is then powered off, ' +
        'otherwise the job fails when the guest did not stop in time.',
    ),
  })
  @ApiParam(DOMAIN)
  @ApiRefusedFields(refusedOptions('shutdown'))
  @ApiBody({ type: ShutdownDomainOptions, required: false })
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  shutdownDomain(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Body() body: DomainActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.act(caller, host, domain, 'shutdown', body, prefer, idempotencyKey, reply);
  }

  @Access('operator')
  @Post(':domain/actions/destroy')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Power a domain off (destroy)',
    description: actionDescription(
      'The domain is stopped at once (with `graceful: true`, QEMU is asked to terminate gracefully first).',
    ),
  })
  @ApiParam(DOMAIN)
  @ApiRefusedFields(refusedOptions('destroy'))
  @ApiBody({ type: DestroyDomainOptions, required: false })
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  destroyDomain(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Body() body: DomainActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.act(caller, host, domain, 'destroy', body, prefer, idempotencyKey, reply);
  }

  @Access('operator')
  @Post(':domain/actions/reboot')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Reboot a running domain',
    description: actionDescription('No options: a body, if any, must be empty.'),
  })
  @ApiParam(DOMAIN)
  @ApiBody(NO_OPTIONS_BODY)
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  rebootDomain(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Body() body: DomainActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.act(caller, host, domain, 'reboot', body, prefer, idempotencyKey, reply);
  }

  @Access('operator')
  @Post(':domain/actions/suspend')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Pause a running domain',
    description: actionDescription('No options: a body, if any, must be empty.'),
  })
  @ApiParam(DOMAIN)
  @ApiBody(NO_OPTIONS_BODY)
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  suspendDomain(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Body() body: DomainActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.act(caller, host, domain, 'suspend', body, prefer, idempotencyKey, reply);
  }

  @Access('operator')
  @Post(':domain/actions/resume')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Resume a paused domain',
    description: actionDescription('No options: a body, if any, must be empty.'),
  })
  @ApiParam(DOMAIN)
  @ApiBody(NO_OPTIONS_BODY)
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  resumeDomain(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Body() body: DomainActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.act(caller, host, domain, 'resume', body, prefer, idempotencyKey, reply);
  }

  @Access('operator')
  @Post(':domain/actions/autostart')
  @HttpCode(202)
  @ApiOperation({
    summary: "Set a domain's autostart",
    description: actionDescription(
      '`enabled` is required: whether the host starts the domain when it starts.',
    ),
  })
  @ApiParam(DOMAIN)
  @ApiRefusedFields(refusedOptions('autostart'))
  @ApiBody({ type: AutostartDomainOptions, required: true })
  @ApiJobResponses()
  @ApiProblemResponses(400, 403, 409, 422)
  setDomainAutostart(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Body() body: DomainActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.act(caller, host, domain, 'autostart', body, prefer, idempotencyKey, reply);
  }

  /** Any other action: refused by the service (400 naming `action`); not in the document. */
  @Access('operator')
  @Post(':domain/actions/:action')
  @HttpCode(202)
  @ApiExcludeEndpoint()
  domainAction(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Param('action') action: string,
    @Body() body: DomainActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    return this.act(caller, host, domain, action, body, prefer, idempotencyKey, reply);
  }

  private async act(
    caller: Caller,
    host: string,
    domain: string,
    action: string,
    body: DomainActionDto | undefined,
    prefer: string | undefined,
    idempotencyKey: string | undefined,
    reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.operations.action(
      caller,
      host,
      domain,
      action,
      body ?? {},
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Access('viewer')
  @Get()
  @ApiOperation({
    summary: 'List the domains of a host',
    description:
      'Sorted by name; filters combine. A page costs a fixed number of libvirt round trips (bulk calls).',
  })
  @ApiOkResponse({ type: DomainListModel })
  @ApiProblemResponses(400)
  listDomains(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Query() query: ListDomainsQueryDto,
  ): Promise<DomainListModel> {
    const { limit, cursor, ...filter } = query;
    return this.domains.list(caller, host, filter, limit ?? DEFAULT_PAGE_SIZE, cursor);
  }

  @Access('viewer')
  @Get(':domain')
  @ApiOperation({ summary: 'A domain: state, sizing, disks with their backing chains, interfaces' })
  @ApiParam(DOMAIN)
  @ApiOkResponse({ type: DomainModel })
  @ApiProblemResponses(400)
  getDomain(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
  ): Promise<DomainModel> {
    return this.domains.get(caller, host, domain);
  }

  @Access('viewer')
  @Get(':domain/xml')
  @Header('content-type', 'application/xml; charset=utf-8')
  @ApiOperation({
    summary: "The domain's live XML, or its persistent definition with inactive=true",
  })
  @ApiParam(DOMAIN)
  @ApiProduces('application/xml')
  @ApiOkResponse({ description: 'libvirt domain XML', schema: { type: 'string' } })
  @ApiProblemResponses(400)
  getDomainXml(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Query() query: XmlQueryDto,
  ): Promise<string> {
    return this.domains.xml(caller, host, domain, query.inactive ?? false);
  }

  @Access('viewer')
  @Get(':domain/disks')
  @ApiOperation({
    summary: "The domain's disks and their backing chains",
    description:
      "Each chain is read from the live XML at the time of the request, with libvirt's indexes (`ref` is what libvirt accepts as vda[N]).",
  })
  @ApiParam(DOMAIN)
  @ApiOkResponse({ type: [DiskModel] })
  listDisks(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
  ): Promise<DiskModel[]> {
    return this.domains.disks(caller, host, domain);
  }

  @Access('viewer')
  @Get(':domain/disks/:target')
  @ApiOperation({ summary: 'One disk and its backing chain' })
  @ApiParam(DOMAIN)
  @ApiParam({ name: 'target', description: 'The disk target', example: 'vda' })
  @ApiOkResponse({ type: DiskModel })
  getDisk(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Param('target') target: string,
  ): Promise<DiskModel> {
    return this.domains.disk(caller, host, domain, target);
  }

  @Access('operator')
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
  @ApiExtraModels(DomainSpec, DomainXml)
  @ApiBody({
    required: true,
    schema: {
      title: 'DefineDomain',
      description: 'A spec, or (admins) libvirt domain XML alone',
      oneOf: [{ $ref: getSchemaPath(DomainSpec) }, { $ref: getSchemaPath(DomainXml) }],
    },
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
    const accepted = await this.operations.define(
      caller,
      host,
      body ?? {},
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Access('operator')
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
  @ApiProblemResponses(400, 403, 409, 422)
  async undefineDomain(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Query() query: UndefineDomainQueryDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.operations.undefine(
      caller,
      host,
      domain,
      query,
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }
}
