import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
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
import { CreateHostDto } from './dto/create-host.dto.js';
import { HostsService } from './hosts.service.js';
import { HostListModel, HostModel } from './models/host.model.js';

@ApiTags('hosts')
@ApiProblemResponses(401, 500)
@Controller('v1/hosts')
export class HostsController {
  constructor(private readonly hosts: HostsService) {}

  @Access('admin')
  @Post()
  @ApiOperation({ summary: 'Register a libvirt host (admin)' })
  @ApiCreatedResponse({ type: HostModel })
  @ApiProblemResponses(400, 403, 409)
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
  @Delete(':host')
  @HttpCode(204)
  @ApiOperation({ summary: 'Unregister a host (admin); its domains are not touched' })
  @ApiNoContentResponse()
  @ApiProblemResponses(403, 404)
  async deleteHost(@CurrentCaller() caller: Caller, @Param('host') host: string): Promise<void> {
    await this.hosts.remove(caller, host);
  }
}
