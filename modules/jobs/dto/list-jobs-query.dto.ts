import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { PageQueryDto } from '#src/common/dto/page-query.dto.js';
import { JOB_STATES, JOB_TYPES, type JobState, type JobType } from '#jobs/job-types.js';

export class ListJobsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ example: 'local' })
  @IsOptional()
  @IsString()
  @MaxLength(63)
  host?: string;

  @ApiPropertyOptional({ description: 'Domain name or UUID', example: 'vm1' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  domain?: string;

  @ApiPropertyOptional({ enum: JOB_STATES })
  @IsOptional()
  @IsIn(JOB_STATES)
  state?: JobState;

  @ApiPropertyOptional({ enum: Object.keys(JOB_TYPES) })
  @IsOptional()
  @IsIn(Object.keys(JOB_TYPES))
  type?: JobType;
}
