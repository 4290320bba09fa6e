import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '#src/common/pagination.js';

const LIST = 'Comma-separated; repeatable. Any entry may match.';

/** The query of GET /v1/events: the cursor, a page size, and the filter of every event channel. */
export class ListEventsQueryDto {
  @ApiPropertyOptional({
    description:
      'The id of the last event seen (exclusive). JSON pages: without it, from the oldest retained. ' +
      'Server-sent events: without it (and without Last-Event-ID), from now. 410 CURSOR_EXPIRED when ' +
      'events after it are no longer retained.',
    example: '1796204112225-0',
  })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  after?: string;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'JSON pages only: most events in the page',
    minimum: 1,
    maximum: MAX_PAGE_SIZE,
    default: DEFAULT_PAGE_SIZE,
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  limit?: number;

  @ApiPropertyOptional({ type: [String], description: `Host names. ${LIST}`, example: ['local'] })
  @IsOptional()
  @IsString({ each: true })
  @MaxLength(4096, { each: true })
  host?: string | string[];

  @ApiPropertyOptional({
    type: [String],
    description: `Domain names or UUIDs. ${LIST}`,
    example: ['vm1'],
  })
  @IsOptional()
  @IsString({ each: true })
  @MaxLength(4096, { each: true })
  domain?: string | string[];

  @ApiPropertyOptional({
    type: [String],
    description: `Event types or wildcards (\`*\`, \`block-job.*\`, \`domain.*\`). ${LIST}`,
    example: ['domain.*,block-job.*'],
  })
  @IsOptional()
  @IsString({ each: true })
  @MaxLength(4096, { each: true })
  type?: string | string[];

  @ApiPropertyOptional({
    type: [String],
    description: `Gateway job ids: a job's own events and the block-job events correlated to it. ${LIST}`,
  })
  @IsOptional()
  @IsString({ each: true })
  @MaxLength(4096, { each: true })
  job?: string | string[];
}
