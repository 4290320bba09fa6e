import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsISO8601,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';

const list = (description: string, example: string[]): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({ type: [String], description, example }),
    IsOptional(),
    IsArray(),
    ArrayMaxSize(100),
    IsString({ each: true }),
    MaxLength(256, { each: true }),
  );

/** The filter language of every event channel (src/events/event-filter.ts). */
@ApiSchema({ name: 'WebhookFilter' })
export class WebhookFilterDto {
  @list('Host names; absent or empty: every host', ['local'])
  hosts?: string[];

  @list('Domain names or UUIDs; absent or empty: every domain', ['vm1'])
  domains?: string[];

  @list('Event types, or wildcards (`*`, `domain.*`, `block-job.*`); absent or empty: every type', [
    'domain.*',
    'job.state-changed',
  ])
  types?: string[];

  @list(
    'Gateway job ids (a job\u2019s own events and its block-job events); absent or empty: every job',
    [],
  )
  jobs?: string[];
}

/** At most 500 characters, none of them a control character. */
const DESCRIPTION = /^[^\p{Cc}]{0,500}$/u;

@ApiSchema({ name: 'CreateWebhook' })
export class CreateWebhookDto {
  @ApiProperty({
    description:
      'Where deliveries go: http(s), no user name or password; its name must resolve only to allowed addresses',
    example: 'https://hooks.example.com/virtgate',
  })
  @IsString()
  @MaxLength(2048)
  url!: string;

  @ApiPropertyOptional({ type: WebhookFilterDto, description: 'Absent: every event' })
  @IsOptional()
  @ValidateNested()
  @Type(() => WebhookFilterDto)
  filter?: WebhookFilterDto;

  @ApiPropertyOptional({ default: true, description: 'false: made disabled' })
  @IsOptional()
  @IsBoolean()
  active?: boolean;

  @ApiPropertyOptional({
    description: 'What it is for, up to 500 characters',
    example: 'CMDB sync',
  })
  @IsOptional()
  @IsString()
  @Matches(DESCRIPTION, {
    message: 'description must be at most 500 characters, no control characters',
  })
  description?: string;
}

@ApiSchema({ name: 'UpdateWebhook' })
export class UpdateWebhookDto {
  @ApiPropertyOptional({ description: 'A new URL, checked as at creation' })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  url?: string;

  @ApiPropertyOptional({ type: WebhookFilterDto, description: 'Replaces the whole filter' })
  @IsOptional()
  @ValidateNested()
  @Type(() => WebhookFilterDto)
  filter?: WebhookFilterDto;

  @ApiPropertyOptional({
    description:
      'false disables it; true enables it again (its failure count starts over; events from before are not sent: redeliver them by time range)',
  })
  @IsOptional()
  @IsBoolean()
  active?: boolean;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(DESCRIPTION, {
    message: 'description must be at most 500 characters, no control characters',
  })
  description?: string;
}

@ApiSchema({ name: 'RedeliverWebhook' })
export class RedeliverRangeDto {
  @ApiProperty({
    description: 'ISO 8601: events at or after this time',
    example: '2026-12-01T00:00:00Z',
  })
  @IsISO8601({ strict: true })
  since!: string;

  @ApiPropertyOptional({ description: 'ISO 8601: events at or before this time; absent: now' })
  @IsOptional()
  @IsISO8601({ strict: true })
  until?: string;
}
