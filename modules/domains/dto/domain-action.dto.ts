import { Field, InputType, Int, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiPropertyOptional, PickType } from '@nestjs/swagger';
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
    type: 'integer',
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

/** The options each action accepts (any other is refused: `start takes no timeoutSeconds`). */
export const ACTION_OPTIONS: Readonly<Record<DomainAction, readonly (keyof DomainActionDto)[]>> = {
  start: ['paused'],
  shutdown: ['timeoutSeconds', 'force'],
  destroy: ['graceful'],
  reboot: [],
  suspend: [],
  resume: [],
  autostart: ['enabled'],
};

/** The options of the other actions, which `action` refuses. */
export function refusedOptions(action: DomainAction): (keyof DomainActionDto)[] {
  const all = new Set(Object.values(ACTION_OPTIONS).flat());
  return [...all].filter((field) => !ACTION_OPTIONS[action].includes(field));
}

/*
 * Each action's own body, as the OpenAPI document shows it on the action's own
 * operation (POST …/actions/start, …). They are the fields of DomainActionDto,
 * declared there once; the handlers validate with DomainActionDto and the
 * service refuses a field the action does not take (`start takes no
 * timeoutSeconds`), so these only say to clients what each action takes.
 */

/** `start`: the only option is to leave the domain paused. */
export class StartDomainOptions extends PickType(DomainActionDto, ['paused'] as const) {}

/** `shutdown`: how long to wait, and whether to power off after. */
export class ShutdownDomainOptions extends PickType(DomainActionDto, [
  'timeoutSeconds',
  'force',
] as const) {}

/** `destroy`: whether QEMU is asked to terminate gracefully first. */
export class DestroyDomainOptions extends PickType(DomainActionDto, ['graceful'] as const) {}

/** `autostart`: `enabled` is required. */
export class AutostartDomainOptions {
  @ApiProperty({ description: 'Start the domain when the host starts' })
  enabled!: boolean;
}
