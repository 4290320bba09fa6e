/**
 * Domain views, declared once for REST (@ApiProperty) and GraphQL (@Field).
 * Sizes are bytes (Float in GraphQL: Int is 32-bit).
 */
import { Field, Float, ID, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { DOMAIN_STATES, type DomainStateName } from '../domain-state.js';
import { ScopeFilteredProperty } from '#src/common/dto/scope-filtered.js';
import { JobProgressModel } from '#modules/jobs/models/job.model.js';
import { registerValueEnum } from '#src/graphql/value-enum.js';
import { DISK_DEVICES, DISK_IMAGE_FORMATS, DISK_SOURCE_TYPES } from '#src/xml/domain-xml.js';

export const DomainStateEnum = Object.fromEntries(DOMAIN_STATES.map((s) => [s, s]));
registerEnumType(DomainStateEnum, {
  name: 'DomainState',
  description: "libvirt's virDomainState, lower-cased",
});

/*
 * What libvirt reports of a disk, as closed sets (libvirt's domain XML schema
 * allows no other values). These are wider than what a new domain's spec takes
 * (DiskBus, DiskDevice): a domain defined elsewhere may use any of them.
 */
export const LibvirtDiskBusEnum = registerValueEnum(
  ['ide', 'fdc', 'scsi', 'virtio', 'xen', 'usb', 'uml', 'sata', 'sd'] as const,
  'LibvirtDiskBus',
  "A disk's bus as libvirt reports it (its domain XML schema's values)",
);
export const LibvirtDiskDeviceEnum = registerValueEnum(
  ['disk', 'cdrom', 'floppy', 'lun'] as const,
  'LibvirtDiskDevice',
  'What a disk is to the guest, as libvirt reports it',
);
export const ImageSourceTypeEnum = registerValueEnum(
  ['file', 'block', 'dir', 'network', 'volume', 'nvme', 'vhostuser'] as const,
  'ImageSourceType',
  "Where an image of a disk's chain lives (libvirt's disk source type)",
);
export const LibvirtBlockJobTypeEnum = registerValueEnum(
  ['pull', 'copy', 'commit', 'active-commit', 'backup', 'unknown'] as const,
  'LibvirtBlockJobType',
  "libvirt's type of a block job (virDomainBlockJobType); unknown for a type this gateway does not know",
);

@ApiSchema({ name: 'NetworkSource' })
@ObjectType('NetworkSource')
export class NetworkSourceModel {
  @ApiProperty({ example: 'rbd' })
  @Field()
  protocol!: string;

  @ApiProperty({ type: String, nullable: true, example: 'pool/image' })
  @Field(() => String, { nullable: true })
  name!: string | null;

  @ApiProperty({ type: [String], example: ['mon1:6789'] })
  @Field(() => [String])
  hosts!: string[];
}

@ApiSchema({ name: 'ChainImage' })
@ObjectType('ChainImage')
export class ChainImageModel {
  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: '0 = the image the guest writes to, 1 = its backing file, …',
    example: 0,
  })
  @Field(() => Int)
  depth!: number;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description:
      "libvirt's index of this image in the live XML (what `vda[N]` names); null where libvirt gives none",
    example: 3,
  })
  @Field(() => Int, { nullable: true })
  index!: number | null;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The reference libvirt accepts for this image, e.g. vda[3]',
    example: 'vda[3]',
  })
  @Field(() => String, { nullable: true })
  ref!: string | null;

  @ApiProperty({
    enum: DISK_SOURCE_TYPES,
    enumName: 'DiskSourceType',
    description: "libvirt's source type: file, block, network, volume, dir…",
    example: 'file',
  })
  @Field(() => ImageSourceTypeEnum)
  type!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'File or device path',
    example: '/var/lib/libvirt/images/vm1.qcow2',
  })
  @Field(() => String, { nullable: true })
  path!: string | null;

  @ApiProperty({ type: NetworkSourceModel, nullable: true })
  @Field(() => NetworkSourceModel, { nullable: true })
  network!: NetworkSourceModel | null;

  @ApiProperty({
    enum: DISK_IMAGE_FORMATS,
    enumName: 'DiskImageFormat',
    nullable: true,
    example: 'qcow2',
  })
  @Field(() => String, { nullable: true })
  format!: string | null;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'Virtual size, bytes, where libvirt gives it',
    example: 10737418240,
  })
  @Field(() => Float, { nullable: true })
  capacityBytes!: number | null;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'Allocated bytes, where libvirt gives them',
  })
  @Field(() => Float, { nullable: true })
  allocationBytes!: number | null;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'Bytes on the host (file size), where libvirt gives them',
  })
  @Field(() => Float, { nullable: true })
  physicalBytes!: number | null;
}

@ApiSchema({ name: 'DiskMirror' })
@ObjectType('DiskMirror')
export class DiskMirrorModel {
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The image written to (null for a network destination)',
    example: '/var/lib/libvirt/images/vm1-copy.qcow2',
  })
  @Field(() => String, { nullable: true })
  path!: string | null;

  @ApiProperty({
    enum: DISK_IMAGE_FORMATS,
    enumName: 'DiskImageFormat',
    nullable: true,
    example: 'qcow2',
  })
  @Field(() => String, { nullable: true })
  format!: string | null;

  @ApiProperty({
    enum: ['copy', 'active-commit'],
    type: String,
    nullable: true,
    description: "libvirt's job: copy or active-commit",
  })
  @Field(() => LibvirtBlockJobTypeEnum, { nullable: true })
  job!: string | null;

  @ApiProperty({ description: 'libvirt reports the job ready to pivot' })
  @Field()
  ready!: boolean;
}

@ApiSchema({ name: 'DiskBlockJob' })
@ObjectType('DiskBlockJob')
export class DiskBlockJobModel {
  @ApiProperty({
    enum: ['pull', 'copy', 'commit', 'active-commit', 'backup', 'unknown'],
    description:
      "libvirt's type of the block job: pull, copy, commit, active-commit, backup or unknown",
    example: 'copy',
  })
  @Field(() => LibvirtBlockJobTypeEnum)
  type!: string;

  @ApiProperty({ type: JobProgressModel, description: "libvirt's progress (bytes)" })
  @Field(() => JobProgressModel)
  progress!: JobProgressModel;

  @ApiProperty({
    description: 'A copy or active commit that has caught up: it can be pivoted (or canceled)',
  })
  @Field()
  ready!: boolean;

  @ApiProperty({
    type: String,
    nullable: true,
    description:
      "The gateway's job that runs it (an adopted job included); null when the gateway has none: a block job " +
      'started outside it, which the next reconciliation adopts',
    example: '0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11',
  })
  @Field(() => ID, {
    nullable: true,
    description: "The gateway's job that runs it; null for a block job it has no job for",
  })
  jobId!: string | null;
}

@ApiSchema({ name: 'Disk' })
@ObjectType('Disk')
export class DiskModel {
  @ApiProperty({ example: 'vda' })
  @Field()
  target!: string;

  @ApiProperty({ type: String, nullable: true, example: 'virtio' })
  @Field(() => LibvirtDiskBusEnum, { nullable: true })
  bus!: string | null;

  @ApiProperty({
    enum: DISK_DEVICES,
    example: 'disk',
  })
  @Field(() => LibvirtDiskDeviceEnum)
  device!: string;

  @ApiProperty()
  @Field()
  readOnly!: boolean;

  @ApiProperty({
    type: [ChainImageModel],
    description:
      'The backing chain as libvirt reports it now, from the top (depth 0) down to the base',
  })
  @Field(() => [ChainImageModel])
  chain!: ChainImageModel[];

  @ApiProperty({
    description:
      'True when libvirt states the whole chain. False for a domain that is not running: libvirt does not probe backing files of inactive definitions',
  })
  @Field()
  chainComplete!: boolean;

  @ApiProperty({
    description:
      "True when the persistent definition's chain differs from the live one (the top image, or a backing image it names): the domain would boot from other images next time",
  })
  @Field()
  persistentChainDiffers!: boolean;

  @ApiProperty({
    type: [ChainImageModel],
    nullable: true,
    description: "The persistent definition's chain, when it differs from the live one",
  })
  @Field(() => [ChainImageModel], { nullable: true })
  persistentChain!: ChainImageModel[] | null;

  @ApiProperty({
    type: DiskMirrorModel,
    nullable: true,
    description:
      'What a block copy or active commit running on the disk writes to, and switches the disk to at its pivot; null when none runs',
  })
  @Field(() => DiskMirrorModel, { nullable: true })
  mirror!: DiskMirrorModel | null;

  @ApiProperty({
    type: DiskBlockJobModel,
    nullable: true,
    description:
      'The block job libvirt runs on the disk now (read from libvirt, whether the gateway has a record of it or ' +
      'not); null when none runs, and for a domain that is not running',
  })
  @Field(() => DiskBlockJobModel, { nullable: true })
  blockJob!: DiskBlockJobModel | null;
}

@ApiSchema({ name: 'NetworkInterface' })
@ObjectType('NetworkInterface')
export class InterfaceModel {
  @ApiProperty({ description: 'network, bridge, user, direct…', example: 'network' })
  @Field()
  type!: string;

  @ApiProperty({ type: String, nullable: true, example: '52:54:00:12:34:56' })
  @Field(() => String, { nullable: true })
  mac!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'virtio' })
  @Field(() => String, { nullable: true })
  model!: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The network, bridge or device it attaches to',
    example: 'default',
  })
  @Field(() => String, { nullable: true })
  source!: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Host-side device of a running domain',
    example: 'vnet0',
  })
  @Field(() => String, { nullable: true })
  target!: string | null;
}

@ApiSchema({ name: 'DomainSummary' })
@ObjectType('DomainSummary')
export class DomainSummaryModel {
  @ApiProperty({ example: '6695eb01-f6a4-8304-79aa-97f2502e193f' })
  @Field()
  uuid!: string;

  @ApiProperty({ example: 'vm1' })
  @Field()
  name!: string;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'Runtime id; null when the domain is not running',
    example: 7,
  })
  @Field(() => Int, { nullable: true })
  id!: number | null;

  @ApiProperty({ enum: DOMAIN_STATES, example: 'running' })
  @Field(() => DomainStateEnum)
  state!: DomainStateName;

  @ApiProperty({
    description: "Why it is in that state (libvirt's reason, lower-cased)",
    example: 'booted',
  })
  @Field()
  stateReason!: string;

  @ApiProperty({ type: 'integer', nullable: true, example: 2 })
  @Field(() => Int, { nullable: true })
  vcpus!: number | null;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'Current memory, bytes',
    example: 2147483648,
  })
  @Field(() => Float, { nullable: true })
  memoryBytes!: number | null;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'Maximum memory, bytes',
    example: 2147483648,
  })
  @Field(() => Float, { nullable: true })
  maxMemoryBytes!: number | null;

  @ApiProperty()
  @Field()
  autostart!: boolean;

  @ApiProperty({ description: 'False for a transient domain (no persistent definition)' })
  @Field()
  persistent!: boolean;
}

@ApiSchema({ name: 'Domain' })
@ObjectType('Domain')
export class DomainModel extends DomainSummaryModel {
  @ApiProperty({ type: [DiskModel] })
  @Field(() => [DiskModel])
  disks!: DiskModel[];

  @ApiProperty({ type: [InterfaceModel] })
  @Field(() => [InterfaceModel])
  interfaces!: InterfaceModel[];
}

@ApiSchema({ name: 'DomainList' })
export class DomainListModel {
  @ApiProperty({ type: [DomainSummaryModel] })
  items!: DomainSummaryModel[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as cursor for the next page; null on the last page',
  })
  nextCursor!: string | null;

  @ScopeFilteredProperty()
  scopeFiltered!: boolean;
}
