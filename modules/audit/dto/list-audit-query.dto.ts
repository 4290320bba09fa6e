import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsISO8601, IsOptional, IsString, MaxLength } from 'class-validator';
import {
  AUDIT_ACTIONS,
  AUDIT_RESULTS,
  type AuditAction,
  type AuditResult,
} from '#src/common/audit/audit-log.js';
import { PageQueryDto } from '#src/common/dto/page-query.dto.js';
import type { AuditFilter } from './audit-filter.js';

export class ListAuditQueryDto extends PageQueryDto implements AuditFilter {
  @ApiPropertyOptional({ description: 'The actor id (token id or JWT subject)', example: 'admin' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  actor?: string;

  @ApiPropertyOptional({ enum: AUDIT_ACTIONS })
  @IsOptional()
  @IsIn(AUDIT_ACTIONS)
  action?: AuditAction;

  @ApiPropertyOptional({ description: 'The target, exactly as listed', example: 'local/vm1' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  target?: string;

  @ApiPropertyOptional({ example: 'local' })
  @IsOptional()
  @IsString()
  @MaxLength(63)
  host?: string;

  @ApiPropertyOptional({ enum: AUDIT_RESULTS })
  @IsOptional()
  @IsIn(AUDIT_RESULTS)
  result?: AuditResult;

  @ApiPropertyOptional({ description: 'The X-Request-Id of the request' })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  requestId?: string;

  @ApiPropertyOptional({ description: "The client's address", example: '127.0.0.1' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  address?: string;

  @ApiPropertyOptional({
    description: 'ISO 8601: entries at or after',
    example: '2026-12-01T00:00:00Z',
  })
  @IsOptional()
  @IsISO8601({ strict: true })
  since?: string;

  @ApiPropertyOptional({ description: 'ISO 8601: entries at or before' })
  @IsOptional()
  @IsISO8601({ strict: true })
  until?: string;
}
