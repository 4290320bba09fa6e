import { Field, InputType } from '@nestjs/graphql';
import { IsIn, IsISO8601, IsOptional, IsString, MaxLength } from 'class-validator';
import {
  AUDIT_ACTIONS,
  AUDIT_RESULTS,
  type AuditAction,
  type AuditResult,
} from '#src/common/audit/audit-log.js';
import type { AuditFilter } from './audit-filter.js';
import { AuditActionEnum, AuditResultEnum } from '../models/audit-event.model.js';

@InputType('AuditFilter')
export class AuditFilterInput implements AuditFilter {
  @Field(() => String, { nullable: true, description: 'The actor id (token id or JWT subject)' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  actor?: string;

  @Field(() => AuditActionEnum, { nullable: true })
  @IsOptional()
  @IsIn(AUDIT_ACTIONS)
  action?: AuditAction;

  @Field(() => String, { nullable: true, description: 'The target, exactly as listed' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  target?: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(63)
  host?: string;

  @Field(() => AuditResultEnum, { nullable: true })
  @IsOptional()
  @IsIn(AUDIT_RESULTS)
  result?: AuditResult;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  requestId?: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  address?: string;

  @Field(() => String, { nullable: true, description: 'ISO 8601: entries at or after' })
  @IsOptional()
  @IsISO8601({ strict: true })
  since?: string;

  @Field(() => String, { nullable: true, description: 'ISO 8601: entries at or before' })
  @IsOptional()
  @IsISO8601({ strict: true })
  until?: string;
}
