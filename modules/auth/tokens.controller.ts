import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
} from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import {
  AUDIT_LOG,
  audited,
  type AuditDetail,
  type AuditLog,
} from '#src/common/audit/audit-log.js';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { PageQueryDto } from '#src/common/dto/page-query.dto.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import { CreateTokenDto, CreatedTokenDto, TokenDto, TokenListDto } from './dto/token.dto.js';
import { TokensService } from './tokens.service.js';

@ApiTags('auth')
@ApiProblemResponses(401, 429, 500, 503)
@Controller('v1/tokens')
export class TokensController {
  constructor(
    private readonly tokens: TokensService,
    @Inject(AUDIT_LOG) private readonly audit: AuditLog,
  ) {}

  /** Token changes go to the audit trail, refusals too (never the token or its hash). */
  private audited<T>(
    caller: Caller,
    action: 'token.create' | 'token.revoke',
    target: (result: T | null) => string | null,
    detail: AuditDetail,
    run: () => Promise<T>,
  ): Promise<T> {
    return audited(this.audit, caller, action, target, detail, run);
  }

  @Access('admin')
  @Post()
  @ApiOperation({
    summary: 'Make an API token (admin): shown once, never more than its creator holds',
  })
  @ApiCreatedResponse({ type: CreatedTokenDto })
  @ApiProblemResponses(400, 403)
  async createToken(
    @CurrentCaller() caller: Caller,
    @Body() body: CreateTokenDto,
  ): Promise<CreatedTokenDto> {
    const { token, record } = await this.audited(
      caller,
      'token.create',
      (r) => (r ? `token:${r.record.id}` : null),
      { name: body.name, role: body.role, scoped: body.scopes ? 'true' : 'false' },
      () =>
        this.tokens.create(caller, {
          name: body.name,
          role: body.role,
          scopes: body.scopes?.map((s) => ({
            host: s.host,
            ...(s.domains ? { domains: s.domains } : {}),
            ...(s.pools ? { pools: s.pools } : {}),
          })),
          expiresAt: body.expiresAt,
        }),
    );
    return { ...record, token };
  }

  @Access('admin')
  @Get()
  @ApiOperation({ summary: 'List API tokens (admin), never the tokens themselves' })
  @ApiOkResponse({ type: TokenListDto })
  @ApiProblemResponses(400, 403)
  listTokens(@CurrentCaller() caller: Caller, @Query() query: PageQueryDto): Promise<TokenListDto> {
    return this.tokens.list(caller, query.limit ?? DEFAULT_PAGE_SIZE, query.cursor);
  }

  @Access('viewer')
  @Get('self')
  @ApiOperation({ summary: 'The token this request authenticated with' })
  @ApiOkResponse({ type: TokenDto })
  @ApiProblemResponses(404)
  async getSelf(@CurrentCaller() caller: Caller): Promise<TokenDto> {
    const record = await this.tokens.get(caller.id);
    if (!record) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        'this request did not authenticate with an API token',
      );
    }
    return record;
  }

  @Access('admin')
  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Revoke a token (admin): at once, with every token made under it',
  })
  @ApiNoContentResponse()
  @ApiProblemResponses(403, 404, 409)
  async revokeToken(@CurrentCaller() caller: Caller, @Param('id') id: string): Promise<void> {
    await this.audited(
      caller,
      'token.revoke',
      () => `token:${id}`,
      {},
      () => this.tokens.revoke(caller, id),
    );
  }
}
