import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import { AuditService } from './audit.service.js';
import { ListAuditQueryDto } from './dto/list-audit-query.dto.js';
import { AuditEventListModel } from './models/audit-event.model.js';

/** The audit trail, read-only: there is no route that changes or deletes an entry. */
@ApiTags('audit')
@ApiProblemResponses(401, 429, 403, 500, 503)
@Access('admin')
@Controller('v1/audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @ApiOperation({
    summary: 'The audit trail, newest first (admin)',
    description:
      'Job requests, host registrations, token changes and denied requests: who, what, target, when, request id, ' +
      'address and result. Filters combine. Entries are kept AUDIT_RETENTION_DAYS (90 by default). Denied ' +
      'authentications are one entry per address per AUDIT_DENIED_WINDOW_SECONDS, with `detail.folded`.',
  })
  @ApiOkResponse({ type: AuditEventListModel })
  @ApiProblemResponses(400)
  listAudit(
    @CurrentCaller() caller: Caller,
    @Query() query: ListAuditQueryDto,
  ): Promise<AuditEventListModel> {
    const { limit, cursor, ...filter } = query;
    return this.audit.list(caller, filter, limit ?? DEFAULT_PAGE_SIZE, cursor);
  }
}
