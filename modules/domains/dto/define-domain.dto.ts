import { Field, InputType, Int, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiPropertyOptional, OmitType } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { OptionalHostPath, OptionalImageFormat } from '#src/common/dto/input-fields.js';
import type { ImageFormat } from '#src/common/input-rules.js';

/** Names of new domains: what libvirt, file names and URLs all take without quoting. */
export const DOMAIN_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
export const DOMAIN_NAME_RULE =
  'must be 1-64 letters, digits, ".", "_", "+" or "-", starting with a letter or digit';

export const DOMAIN_TYPES = ['qemu', 'kvm'] as const;
const MAX_MEMORY_MIB = 16 * 1024 * 1024;
export const DISK_BUSES = ['virtio', 'sata', 'scsi', 'ide', 'usb'] as const;
export const DISK_DEVICES = ['disk', 'cdrom'] as const;
export const NIC_MODELS = ['virtio', 'e1000', 'rtl8139'] as const;

const enumOf = <T extends string>(values: readonly T[], name: string): Record<T, T> => {
  const e = Object.fromEntries(values.map((v) => [v, v])) as Record<T, T>;
  registerEnumType(e, { name });
  return e;
};
export const DomainTypeEnum = enumOf(DOMAIN_TYPES, 'DomainType');
export const DiskBusEnum = enumOf(DISK_BUSES, 'DiskBus');
export const DiskDeviceEnum = enumOf(DISK_DEVICES, 'DiskDevice');
export const NicModelEnum = enumOf(NIC_MODELS, 'NicModel');

@InputType('DomainDiskSpecInput')
export class DomainDiskSpecDto {
  @ApiPropertyOptional({
    description:
      'A volume of this storage pool (with `volume`); the disk uses its path and, by default, its format',
    example: 'default',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  pool?: string;

  @ApiPropertyOptional({ description: 'The volume in `pool`', example: 'vm1.qcow2' })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  volume?: string;

  @OptionalHostPath({
    description:
      'Or an absolute path on the host (a file or a block device). Its format is needed unless the path is a volume of a pool libvirt knows',
    example: '/var/lib/libvirt/images/vm1.qcow2',
  })
  path?: string;

  @OptionalImageFormat({
    description: "The image format; by default the volume's",
  })
  format?: ImageFormat;

  @ApiPropertyOptional({
    enum: DISK_BUSES,
    description: 'The bus; by default `virtio`, and `sata` for a cdrom',
  })
  @Field(() => DiskBusEnum, { nullable: true })
  @IsOptional()
  @IsIn(DISK_BUSES)
  bus?: (typeof DISK_BUSES)[number];

  @ApiPropertyOptional({ enum: DISK_DEVICES, default: 'disk' })
  @Field(() => DiskDeviceEnum, { nullable: true })
  @IsOptional()
  @IsIn(DISK_DEVICES)
  device?: (typeof DISK_DEVICES)[number];

  @ApiPropertyOptional({
    description: "The guest-side name; by default the bus's next free one (vda, vdb…; sda…; hda…)",
    example: 'vda',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^(vd|sd|hd)[a-z]{1,2}$/, {
    message: 'target must be vd, sd or hd followed by one or two letters (vda, sdb, hdc)',
  })
  target?: string;

  @ApiPropertyOptional({ description: 'Read-only for the guest (always, for a cdrom)' })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @IsBoolean()
  readOnly?: boolean;
}

@InputType('DomainInterfaceSpecInput')
export class DomainInterfaceSpecDto {
  @ApiPropertyOptional({ description: 'A libvirt network', example: 'default' })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  network?: string;

  @ApiPropertyOptional({ description: 'Or a bridge of the host', example: 'br0' })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$/, {
    message: 'bridge must be an interface name (1-15 letters, digits, ".", "_" or "-")',
  })
  bridge?: string;

  @ApiPropertyOptional({ enum: NIC_MODELS, default: 'virtio' })
  @Field(() => NicModelEnum, { nullable: true })
  @IsOptional()
  @IsIn(NIC_MODELS)
  model?: (typeof NIC_MODELS)[number];

  @ApiPropertyOptional({
    description: 'A MAC address; libvirt picks one when absent',
    example: '52:54:00:12:34:56',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, {
    message: 'mac must be six hex pairs separated by ":"',
  })
  mac?: string;
}

/**
 * A new domain: either a structured spec (`name`, `memoryMiB`, `vcpus`,
 * disks, interfaces…) that the gateway builds into domain XML, or, for
 * admins, libvirt domain XML as it is (`xml`, alone).
 */
@InputType('DefineDomainInput')
export class DefineDomainDto {
  @ApiPropertyOptional({
    description:
      'libvirt domain XML, as it is (admins only; no other field with it). A UUID is added when it has none',
    example: "<domain type='kvm'><name>vm1</name>…</domain>",
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(1_000_000)
  xml?: string;

  @ApiPropertyOptional({ description: `The domain's name: ${DOMAIN_NAME_RULE}`, example: 'vm1' })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(DOMAIN_NAME_PATTERN, { message: `name ${DOMAIN_NAME_RULE}` })
  name?: string;

  @ApiPropertyOptional({
    description:
      'A UUID for the domain; by default a new one (derived from the Idempotency-Key when there is one)',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsUUID()
  uuid?: string;

  @ApiPropertyOptional({
    enum: DOMAIN_TYPES,
    description:
      "kvm (hardware virtualization) or qemu (emulation, TCG); by default kvm where the host's capabilities offer it, else qemu",
  })
  @Field(() => DomainTypeEnum, { nullable: true })
  @IsOptional()
  @IsIn(DOMAIN_TYPES)
  type?: (typeof DOMAIN_TYPES)[number];

  @ApiPropertyOptional({
    type: 'integer',
    description: 'Memory in MiB',
    minimum: 16,
    maximum: MAX_MEMORY_MIB,
    example: 1024,
  })
  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(16)
  @Max(MAX_MEMORY_MIB)
  memoryMiB?: number;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 1024, example: 2 })
  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1024)
  vcpus?: number;

  @ApiPropertyOptional({
    description: "Guest architecture; by default the host's (from its capabilities)",
    example: 'x86_64',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^[a-z0-9_]{1,32}$/, { message: 'arch must be an architecture name (x86_64, aarch64)' })
  arch?: string;

  @ApiPropertyOptional({
    description: "Machine type; by default the first the host's capabilities list for the arch",
    example: 'pc-q35-7.2',
  })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^[A-Za-z0-9._-]{1,64}$/, { message: 'machine must be a machine type name' })
  machine?: string;

  @ApiPropertyOptional({ maxLength: 4096 })
  @Field(() => String, { nullable: true })
  @IsOptional()
  @IsString()
  @MaxLength(4096)
  description?: string;

  @ApiPropertyOptional({ type: [DomainDiskSpecDto], maxItems: 32 })
  @Field(() => [DomainDiskSpecDto], { nullable: true })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(32)
  @ValidateNested({ each: true })
  @Type(() => DomainDiskSpecDto)
  disks?: DomainDiskSpecDto[];

  @ApiPropertyOptional({ type: [DomainInterfaceSpecDto], maxItems: 16 })
  @Field(() => [DomainInterfaceSpecDto], { nullable: true })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(16)
  @ValidateNested({ each: true })
  @Type(() => DomainInterfaceSpecDto)
  interfaces?: DomainInterfaceSpecDto[];
}

/*
 * The two bodies POST …/domains takes, as the OpenAPI document shows them (a
 * `oneOf`): a spec, whose name, memoryMiB and vcpus are required, or raw XML
 * alone. The handler validates with DefineDomainDto and the service refuses a
 * spec without them and XML with anything beside it; these only tell clients.
 */

/** A domain from a structured spec. */
export class DomainSpec extends OmitType(DefineDomainDto, [
  'xml',
  'name',
  'memoryMiB',
  'vcpus',
] as const) {
  @ApiProperty({
    description: `The domain's name: ${DOMAIN_NAME_RULE}`,
    pattern: DOMAIN_NAME_PATTERN.source,
    example: 'vm1',
  })
  name!: string;

  @ApiProperty({
    type: 'integer',
    description: 'Memory in MiB',
    minimum: 16,
    maximum: MAX_MEMORY_MIB,
    example: 1024,
  })
  memoryMiB!: number;

  @ApiProperty({ type: 'integer', minimum: 1, maximum: 1024, example: 2 })
  vcpus!: number;
}

/** A domain from libvirt domain XML as it is (admins only). */
export class DomainXml {
  @ApiProperty({
    description:
      'libvirt domain XML, as it is (admins only; no other field with it). A UUID is added when it has none',
    maxLength: 1_000_000,
    example: "<domain type='kvm'><name>vm1</name>…</domain>",
  })
  xml!: string;
}

const queryBoolean = Transform(({ value }: { value: unknown }) =>
  value === 'true' ? true : value === 'false' ? false : value,
);

/** The options of DELETE …/domains/{domain} (query string); the service takes them as they are. */
@InputType('UndefineDomainOptions')
export class UndefineDomainQueryDto {
  @ApiPropertyOptional({
    description:
      "Also remove libvirt's metadata of the domain's snapshots (their files stay). Without it, a domain with snapshot metadata is refused (409)",
    default: false,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @queryBoolean
  @IsBoolean()
  snapshotsMetadata?: boolean;

  @ApiPropertyOptional({
    description:
      'Also remove a managed save image. Without it, libvirt refuses a domain that has one',
    default: false,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @queryBoolean
  @IsBoolean()
  managedSave?: boolean;

  @ApiPropertyOptional({
    description: 'Also delete the UEFI variables file (NVRAM); by default it is kept',
    default: false,
  })
  @Field(() => Boolean, { nullable: true })
  @IsOptional()
  @queryBoolean
  @IsBoolean()
  nvram?: boolean;
}
