import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsOptional, Max, Min } from 'class-validator';

export const DOMAIN_ACTIONS = [
  'start',
  'shutdown',
  'destroy',
  'reboot',
  'suspend',
  'resume',
  'autostart',
] as const;
export type DomainAction = (typeof DOMAIN_ACTIONS)[number];

/** The options of every domain action; each action takes only its own (others are refused). */
export class DomainActionDto {
  @ApiPropertyOptional({ description: 'start: leave the domain paused', default: false })
  @IsOptional()
  @IsBoolean()
  paused?: boolean;

  @ApiPropertyOptional({
    description: 'shutdown: how long the guest may take',
    minimum: 1,
    maximum: 3600,
    default: 60,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(3600)
  timeoutSeconds?: number;

  @ApiPropertyOptional({
    description: 'shutdown: power off (destroy) when the guest did not shut down in time',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  force?: boolean;

  @ApiPropertyOptional({
    description: 'destroy: ask QEMU to terminate gracefully first',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  graceful?: boolean;

  @ApiPropertyOptional({
    description: 'autostart (required): start the domain when the host starts',
  })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;
}
