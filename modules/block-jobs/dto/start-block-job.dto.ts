import { Field, Float, InputType, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  MinLength,
} from 'class-validator';
import { ImageFormatEnum } from '#src/common/dto/input-fields.js';

export const BLOCK_JOB_KINDS = ['commit', 'copy', 'pull'] as const;
export type BlockJobKind = (typeof BLOCK_JOB_KINDS)[number];
export const BlockJobKindEnum = Object.fromEntries(BLOCK_JOB_KINDS.map((k) => [k, k]));
registerEnumType(BlockJobKindEnum, { name: 'BlockJobKind' });

export const COPY_FORMATS = ['qcow2', 'raw'] as const;
export type CopyFormat = (typeof COPY_FORMATS)[number];

/** Above 2^52 bytes/s libvirt may refuse a bandwidth; it is far beyond any disk anyway. */
export const MAX_BANDWIDTH = 2 ** 52;

const REF_HELP =
  "`vda[N]` (libvirt's index of the image in the disk's live chain, as GET …/disks/{target} shows it in `ref`) or the image's absolute path";

/**
 * A block job on one disk. Each type takes its own fields; a field another
 * type takes is refused (400), so a typo cannot silently change what runs.
 */
@InputType('StartBlockJobInput')
export class StartBlockJobDto {
  @ApiProperty({
    enum: BLOCK_JOB_KINDS,
    description:
      '`commit`: merge images of the chain into a lower one (with `top` at depth 0, an active commit, which ends with a pivot). ' +
      '`copy`: copy the disk to a new image and switch the guest to it (a pivot). ' +
      '`pull`: pull backing images into the image the guest writes to.',
    example: 'commit',
  })
  @Field(() => BlockJobKindEnum)
  @IsIn(BLOCK_JOB_KINDS)
  type!: BlockJobKind;

  @ApiPropertyOptional({
    description: `commit: the highest image to merge, ${REF_HELP}. Omitted or at depth 0: an active commit.`,
    example: 'vda[1]',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(4096)
  top?: string;

  @ApiPropertyOptional({
    description:
      `commit: the image to merge into, ${REF_HELP}; omitted, the bottom of the chain (with shallow, the image right below top); ` +
      "never one another domain's disk names or that backs a storage volume outside the chain (409). " +
      'pull: pull down to this image (it and what backs it stay); omitted, pull the whole chain.',
    example: 'vda[3]',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(4096)
  base?: string;

  @ApiPropertyOptional({
    description:
      'commit: merge into the image right below top. copy: copy only the top image; the copy is backed by the same images.',
    default: false,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  shallow?: boolean;

  @ApiPropertyOptional({
    description:
      "commit: delete the merged images once the commit succeeded (409 when another domain's disk names one)",
    default: false,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  deleteCommittedImages?: boolean;

  @ApiPropertyOptional({
    description:
      'copy (required): where the copy goes, an absolute path on the host (a file libvirt creates, unless reuseExisting), ' +
      'or `pool/volume`: an existing storage volume (with reuseExisting: true), or a new volume the copy creates in an active dir pool',
    example: '/var/lib/libvirt/images/vm1-copy.qcow2',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(4096)
  destination?: string;

  @ApiPropertyOptional({
    enum: COPY_FORMATS,
    description: "copy: the copy's format; default: the top image's format",
  })
  @Field(() => ImageFormatEnum, { nullable: true })
  @IsOptional()
  @IsIn(COPY_FORMATS)
  format?: CopyFormat;

  @ApiPropertyOptional({
    description:
      'copy: the destination exists already (created beforehand, with the right size and, for a shallow copy, backing) ' +
      "and is overwritten; a file another domain's disk names, or that backs a storage volume, is refused (409)",
    default: false,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  reuseExisting?: boolean;

  @ApiPropertyOptional({
    type: 'integer',
    description: 'Speed limit in bytes per second; 0 or omitted: none',
    minimum: 0,
    maximum: MAX_BANDWIDTH,
    example: 104857600,
  })
  @Field(() => Float, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_BANDWIDTH)
  bandwidth?: number;

  @ApiPropertyOptional({
    description:
      'Active commit and copy: switch the guest to the new image as soon as libvirt reports the job ready. ' +
      'With false, the job waits in state `ready` for POST /v1/jobs/{id}/pivot or a cancel (which keeps the original image).',
    default: true,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  pivot?: boolean;
}

/*
 * Each type's own body, as the OpenAPI document shows them: a `oneOf` of these
 * three with a discriminator on `type` (block-jobs.controller.ts). They hold
 * exactly the fields each type's plan takes (plans/*.plan.ts `fields`); the
 * handler validates with StartBlockJobDto above and the plan refuses a field
 * its type does not take, so these only tell clients what each type takes.
 */

const BANDWIDTH_DOC = {
  type: 'integer',
  description: 'Speed limit in bytes per second; 0 or omitted: none',
  minimum: 0,
  maximum: MAX_BANDWIDTH,
  example: 104857600,
} as const;

/** `commit`: merge images of the chain into a lower one. */
export class CommitBlockJob {
  @ApiProperty({ enum: ['commit'], description: 'A block commit' })
  type!: 'commit';

  @ApiPropertyOptional({
    description: `The highest image to merge, ${REF_HELP}. Omitted or at depth 0: an active commit, which ends with a pivot.`,
    minLength: 1,
    maxLength: 4096,
    example: 'vda[1]',
  })
  top?: string;

  @ApiPropertyOptional({
    description:
      `The image to merge into, ${REF_HELP}; omitted, the bottom of the chain (with shallow, the image right below top); ` +
      "never one another domain's disk names or that backs a storage volume outside the chain (409).",
    minLength: 1,
    maxLength: 4096,
    example: 'vda[3]',
  })
  base?: string;

  @ApiPropertyOptional({ description: 'Merge into the image right below top.', default: false })
  shallow?: boolean;

  @ApiPropertyOptional({
    description:
      "Delete the merged images once the commit succeeded (409 when another domain's disk names one).",
    default: false,
  })
  deleteCommittedImages?: boolean;

  @ApiPropertyOptional(BANDWIDTH_DOC)
  bandwidth?: number;

  @ApiPropertyOptional({
    description:
      'An active commit: switch the guest to the base as soon as libvirt reports the job ready. ' +
      'With false, the job waits in state `ready` for POST /v1/jobs/{id}/pivot or a cancel (which keeps the original image).',
    default: true,
  })
  pivot?: boolean;
}

/** `copy`: copy the disk to a new image and switch the guest to it. */
export class CopyBlockJob {
  @ApiProperty({ enum: ['copy'], description: 'A block copy' })
  type!: 'copy';

  @ApiProperty({
    description:
      'Where the copy goes: an absolute path on the host (a file libvirt creates, unless reuseExisting), ' +
      'or `pool/volume`: an existing storage volume (with reuseExisting: true), or a new volume the copy creates in an active dir pool',
    minLength: 1,
    maxLength: 4096,
    example: '/var/lib/libvirt/images/vm1-copy.qcow2',
  })
  destination!: string;

  @ApiPropertyOptional({
    enum: COPY_FORMATS,
    description: "The copy's format; by default the top image's format",
  })
  format?: CopyFormat;

  @ApiPropertyOptional({
    description: 'Copy only the top image; the copy is backed by the same images.',
    default: false,
  })
  shallow?: boolean;

  @ApiPropertyOptional({
    description:
      'The destination exists already (created beforehand, with the right size and, for a shallow copy, backing) ' +
      "and is overwritten; a file another domain's disk names, or that backs a storage volume, is refused (409)",
    default: false,
  })
  reuseExisting?: boolean;

  @ApiPropertyOptional(BANDWIDTH_DOC)
  bandwidth?: number;

  @ApiPropertyOptional({
    description:
      'Switch the guest to the copy as soon as libvirt reports the job ready. ' +
      'With false, the job waits in state `ready` for POST /v1/jobs/{id}/pivot or a cancel (which keeps the original image).',
    default: true,
  })
  pivot?: boolean;
}

/** `pull`: pull backing images into the image the guest writes to. */
export class PullBlockJob {
  @ApiProperty({ enum: ['pull'], description: 'A block pull' })
  type!: 'pull';

  @ApiPropertyOptional({
    description: `Pull down to this image, ${REF_HELP} (it and what backs it stay); omitted, pull the whole chain.`,
    minLength: 1,
    maxLength: 4096,
    example: 'vda[3]',
  })
  base?: string;

  @ApiPropertyOptional(BANDWIDTH_DOC)
  bandwidth?: number;
}
