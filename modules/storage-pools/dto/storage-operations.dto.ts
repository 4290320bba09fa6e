import { Field, Float, InputType, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { OptionalHostPath, OptionalImageFormat } from '#src/common/dto/input-fields.js';
import {
  ABSOLUTE_PATH,
  STORAGE_NAME_PATTERN,
  STORAGE_NAME_RULE,
  type ImageFormat,
} from '#src/common/input-rules.js';

export const POOL_TYPES = ['dir'] as const;
export const POOL_ACTIONS = ['start', 'stop', 'refresh'] as const;
export type PoolAction = (typeof POOL_ACTIONS)[number];
export const PoolTypeEnum = Object.fromEntries(POOL_TYPES.map((t) => [t, t]));
registerEnumType(PoolTypeEnum, { name: 'PoolType' });
export const PoolActionEnum = Object.fromEntries(POOL_ACTIONS.map((a) => [a, a]));
registerEnumType(PoolActionEnum, { name: 'PoolAction' });

@InputType('DefinePoolInput')
export class DefinePoolDto {
  @ApiProperty({ description: `The pool's name: ${STORAGE_NAME_RULE}`, example: 'images' })
  @Field(() => String)
  @Matches(STORAGE_NAME_PATTERN, { message: `name ${STORAGE_NAME_RULE}` })
  name!: string;

  @ApiPropertyOptional({
    enum: POOL_TYPES,
    default: 'dir',
    description: 'The pool type: `dir`, a directory of image files (the only one so far)',
  })
  @Field(() => PoolTypeEnum, { nullable: true })
  @IsOptional()
  @IsIn(POOL_TYPES)
  type?: (typeof POOL_TYPES)[number];

  @ApiProperty({
    description:
      'The directory that holds the volumes (absolute). It need not exist yet: start with build: true creates it',
    example: '/srv/images',
  })
  @Field(() => String)
  @IsString()
  @MaxLength(4096)
  @Matches(ABSOLUTE_PATH, { message: 'path must be an absolute path' })
  path!: string;
}

/** The options of a pool action; only start takes one. */
export class PoolActionDto {
  @ApiPropertyOptional({
    description: "start: build the pool first (a dir pool's directory is created when missing)",
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  build?: boolean;
}

@InputType('VolumeBackingInput')
export class VolumeBackingDto {
  @ApiPropertyOptional({
    description: "The backing image's pool (with `volume`); by default the new volume's pool",
    example: 'images',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  pool?: string;

  @ApiPropertyOptional({ description: 'A volume as the backing image', example: 'base.qcow2' })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  volume?: string;

  @OptionalHostPath({
    description:
      'Or an absolute path (its format is needed unless it is a volume of a pool libvirt knows)',
    example: '/srv/images/base.qcow2',
  })
  path?: string;

  @OptionalImageFormat({
    description: "The backing image's format; by default its volume's",
  })
  format?: ImageFormat;
}

@InputType('CreateVolumeInput')
export class CreateVolumeDto {
  @ApiProperty({
    description: `The volume's name (its file name): ${STORAGE_NAME_RULE}`,
    example: 'vm1.qcow2',
  })
  @Field(() => String)
  @Matches(STORAGE_NAME_PATTERN, { message: `name ${STORAGE_NAME_RULE}` })
  name!: string;

  @OptionalImageFormat({ default: 'qcow2' })
  format?: ImageFormat;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: Number.MAX_SAFE_INTEGER,
    description:
      'Virtual size in bytes (rounded up to 512 bytes); required unless there is a backing image, whose size is then the default. Files are sparse: nothing is allocated up front',
    example: 10 * 1024 ** 3,
  })
  @Field(() => Float, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(Number.MAX_SAFE_INTEGER)
  capacityBytes?: number;

  @ApiPropertyOptional({
    type: VolumeBackingDto,
    description: 'qcow2 only: a backing image, making the volume an overlay of it',
  })
  @Field(() => VolumeBackingDto, { nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => VolumeBackingDto)
  backing?: VolumeBackingDto;
}
