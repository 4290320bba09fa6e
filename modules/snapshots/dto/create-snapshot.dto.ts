import { Field, InputType } from '@nestjs/graphql';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { OptionalHostPath } from '#src/common/dto/input-fields.js';

/** Snapshot names end up in file names: the same rule as domain names. */
export const SNAPSHOT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

@InputType('SnapshotDiskInput')
export class SnapshotDiskDto {
  @ApiProperty({ description: 'The disk (its target)', example: 'vda' })
  @Field(() => String)
  @IsString()
  @MaxLength(32)
  target!: string;

  @OptionalHostPath({
    description:
      'Absolute path of the new overlay file; by default next to the current top image: `<dir>/<image-base>.<snapshot-name>.qcow2`',
    example: '/var/lib/libvirt/images/vm1.before-upgrade.qcow2',
  })
  path?: string;
}

/** An external disk-only snapshot: a new qcow2 overlay on each disk named (all writable disks by default). */
@InputType('CreateSnapshotInput')
export class CreateSnapshotDto {
  @ApiPropertyOptional({
    description:
      'The snapshot name, also part of the default overlay file names (1-64 letters, digits, ".", "_", "+" or "-"); by default the UTC time, `YYYYMMDD-HHMMSS`',
    example: 'before-upgrade',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(SNAPSHOT_NAME_PATTERN, {
    message:
      'name must be 1-64 letters, digits, ".", "_", "+" or "-", starting with a letter or digit',
  })
  name?: string;

  @ApiPropertyOptional({ maxLength: 4096 })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(4096)
  description?: string;

  @ApiPropertyOptional({
    type: [SnapshotDiskDto],
    description:
      'The disks to snapshot, each optionally with its overlay path; by default every writable disk with a file or block source',
  })
  @Field(() => [SnapshotDiskDto], { nullable: true })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(64)
  @ValidateNested({ each: true })
  @Type(() => SnapshotDiskDto)
  disks?: SnapshotDiskDto[];

  @ApiPropertyOptional({
    description:
      "Also record the snapshot in libvirt's snapshot metadata (listed by GET …/snapshots). Off by default: the overlays are chain members like any other, which block commit and pull later merge; libvirt's metadata would then name files that are gone",
    default: false,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  metadata?: boolean;
}
