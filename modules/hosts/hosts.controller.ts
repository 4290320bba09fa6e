import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { PageQueryDto } from '#src/common/dto/page-query.dto.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import { CreateHostDto, UpdateHostDto } from './dto/create-host.dto.js';
import { HostsService } from './hosts.service.js';
import { HostListModel, HostModel } from './models/host.model.js';

@ApiTags('hosts')
@ApiProblemResponses(401, 429, 500, 503)
@Controller('v1/hosts')
export class HostsController {
  constructor(private readonly hosts: HostsService) {}

  @Access('admin')
  @Post()
  @ApiOperation({
    summary: 'Register a libvirt host (admin)',
    description:
      'With `credentials` for a qemu+tls:// or qemu+ssh:// URI: certificates and keys inline or as files under HOST_CREDENTIAL_DIRS, kept encrypted with VIRTGATE_SECRETS_KEY (409 without one) and never returned; the view shows only their kind, subjects, expiry and fingerprints. `ssh.trustOnFirstUse` connects once now and pins the host key it meets (503 if the host does not answer).',
  })
  @ApiCreatedResponse({ type: HostModel })
  @ApiProblemResponses(400, 403, 409, 503)
  createHost(@CurrentCaller() caller: Caller, @Body() body: CreateHostDto): Promise<HostModel> {
    return this.hosts.create(caller, body);
  }

  @Access('viewer')
  @Get()
  @ApiOperation({ summary: 'List the registered hosts with their connection state' })
  @ApiOkResponse({ type: HostListModel })
  @ApiProblemResponses(400)
  listHosts(@CurrentCaller() caller: Caller, @Query() query: PageQueryDto): Promise<HostListModel> {
    return this.hosts.list(caller, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor);
  }

  @Access('viewer')
  @Get(':host')
  @ApiOperation({
    summary: 'A host: connection state, hostname, versions, node info, capabilities',
  })
  @ApiOkResponse({ type: HostModel })
  @ApiProblemResponses(404)
  getHost(@CurrentCaller() caller: Caller, @Param('host') host: string): Promise<HostModel> {
    return this.hosts.get(caller, host);
  }

  @Access('admin')
  @Patch(':host')
  @ApiOperation({
    summary: "Change a host's URI or rotate its credentials (admin)",
    description:
      'Connections opened from now on, in every api and worker process, use the new credentials; the open ones go on. A new URI drops the connections to the old one at once. `removeCredentials: true` removes the registered ones.',
  })
  @ApiOkResponse({ type: HostModel })
  @ApiProblemResponses(400, 403, 404, 409)
  updateHost(
    @CurrentCaller() caller: Caller,
    @Param('host') host: string,
    @Body() body: UpdateHostDto,
  ): Promise<HostModel> {
    return this.hosts.update(caller, host, body);
  }

  @Access('admin')
  @Delete(':host')
  @HttpCode(204)
  @ApiOperation({ summary: 'Unregister a host (admin); its domains are not touched' })
  @ApiNoContentResponse()
  @ApiProblemResponses(403, 404)
  async deleteHost(@CurrentCaller() caller: Caller, @Param('host') host: string): Promise<void> {
    await this.hosts.remove(caller, host);
  }
}
