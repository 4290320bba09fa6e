import { Field, InputType, Int, registerEnumType } from '@nestjs/graphql';
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
export const DomainActionEnum = Object.fromEntries(DOMAIN_ACTIONS.map((a) => [a, a]));
registerEnumType(DomainActionEnum, { name: 'DomainAction' });

/** The options of every domain action; each action takes only its own (others are refused). */
@InputType('DomainActionOptions')
export class DomainActionDto {
  @ApiPropertyOptional({ description: 'start: leave the domain paused', default: false })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  paused?: boolean;

  @ApiPropertyOptional({
    description: 'shutdown: how long the guest may take',
    minimum: 1,
    maximum: 3600,
    default: 60,
  })
  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(3600)
  timeoutSeconds?: number;

  @ApiPropertyOptional({
    description: 'shutdown: power off (destroy) when the guest did not shut down in time',
    default: false,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  force?: boolean;

  @ApiPropertyOptional({
    description: 'destroy: ask QEMU to terminate gracefully first',
    default: false,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  graceful?: boolean;

  @ApiPropertyOptional({
    description: 'autostart (required): start the domain when the host starts',
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;
}
