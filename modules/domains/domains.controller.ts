import {
  Body,
  Controller,
  Get,
  Header,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { idempotencyKeyOf, respondWithJob } from '#modules/jobs/job-response.js';
import { JobsService } from '#modules/jobs/jobs.service.js';
import { JobModel } from '#modules/jobs/models/job.model.js';
import { DomainActionsService } from './domain-actions.service.js';
import { DOMAIN_ACTIONS, DomainActionDto } from './dto/domain-action.dto.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import { ListDomainsQueryDto, XmlQueryDto } from './dto/list-domains-query.dto.js';
import { DomainsService } from './domains.service.js';
import { DiskModel, DomainListModel, DomainModel, SnapshotModel } from './models/domain.model.js';
import { ApiJobResponses } from '#modules/jobs/api-job-responses.decorator.js';

const HOST = { name: 'host', description: 'A registered host', example: 'local' };
const DOMAIN = { name: 'domain', description: 'Domain name, or UUID', example: 'vm1' };

@ApiTags('domains')
@ApiProblemResponses(401, 404, 500, 503)
@Controller('v1/hosts/:host/domains')
@ApiParam(HOST)
export class DomainsController {
  constructor(
    private readonly domains: DomainsService,
    private readonly actions: DomainActionsService,
    private readonly jobs: JobsService,
  ) {}

  @Post(':domain/actions/:action')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Start, shut down, destroy, reboot, suspend or resume a domain, or set its autostart',
    description:
      'Checked against the live state (an action that cannot apply is 409 at once), then run as a job: ' +
      '202 with the job and its Location. With `Prefer: wait=N` (N <= 60) the answer waits up to N seconds ' +
      'and is 200 with the finished job if it finished. The same `Idempotency-Key` with the same request ' +
      'gives back the same job; with another request, 422.',
  })
  @ApiParam(DOMAIN)
  @ApiParam({ name: 'action', enum: DOMAIN_ACTIONS })
  @ApiJobResponses()
  @ApiProblemResponses(400, 409, 422)
  async domainAction(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Param('action') action: string,
    @Body() body: DomainActionDto,
    @Headers('prefer') prefer: string | undefined,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobModel> {
    const accepted = await this.actions.request(
      caller,
      host,
      domain,
      action,
      body ?? {},
      idempotencyKeyOf(idempotencyKey),
    );
    return respondWithJob(this.jobs, reply, accepted, prefer);
  }

  @Get()
  @ApiOperation({
    summary: 'List the domains of a host',
    description:
      'Sorted by name; filters combine. A page costs a fixed number of libvirt round trips (bulk calls).',
  })
  @ApiOkResponse({ type: DomainListModel })
  @ApiProblemResponses(400)
  listDomains(
    @Param('host') host: string,
    @Query() query: ListDomainsQueryDto,
  ): Promise<DomainListModel> {
    const { limit, cursor, ...filter } = query;
    return this.domains.list(host, filter, limit ?? DEFAULT_PAGE_SIZE, cursor);
  }

  @Get(':domain')
  @ApiOperation({ summary: 'A domain: state, sizing, disks with their backing chains, interfaces' })
  @ApiParam(DOMAIN)
  @ApiOkResponse({ type: DomainModel })
  @ApiProblemResponses(400)
  getDomain(@Param('host') host: string, @Param('domain') domain: string): Promise<DomainModel> {
    return this.domains.get(host, domain);
  }

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
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Query() query: XmlQueryDto,
  ): Promise<string> {
    return this.domains.xml(host, domain, query.inactive ?? false);
  }

  @Get(':domain/disks')
  @ApiOperation({
    summary: "The domain's disks and their backing chains",
    description:
      "Each chain is read from the live XML at the time of the request, with libvirt's indexes (`ref` is what libvirt accepts as vda[N]).",
  })
  @ApiParam(DOMAIN)
  @ApiOkResponse({ type: [DiskModel] })
  listDisks(@Param('host') host: string, @Param('domain') domain: string): Promise<DiskModel[]> {
    return this.domains.disks(host, domain);
  }

  @Get(':domain/disks/:target')
  @ApiOperation({ summary: 'One disk and its backing chain' })
  @ApiParam(DOMAIN)
  @ApiParam({ name: 'target', description: 'The disk target', example: 'vda' })
  @ApiOkResponse({ type: DiskModel })
  getDisk(
    @Param('host') host: string,
    @Param('domain') domain: string,
    @Param('target') target: string,
  ): Promise<DiskModel> {
    return this.domains.disk(host, domain, target);
  }

  @Get(':domain/snapshots')
  @ApiOperation({ summary: "The domain's snapshots with their disks, oldest first" })
  @ApiParam(DOMAIN)
  @ApiOkResponse({ type: [SnapshotModel] })
  listSnapshots(
    @Param('host') host: string,
    @Param('domain') domain: string,
  ): Promise<SnapshotModel[]> {
    return this.domains.snapshots(host, domain);
  }
}
