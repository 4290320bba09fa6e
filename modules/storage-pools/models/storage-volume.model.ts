/**
 * Storage volume views, declared once for REST (@ApiProperty) and GraphQL
 * (@Field). Sizes are bytes (Float in GraphQL: Int is 32-bit).
 */
import { Field, Float, ObjectType, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';

import { STORAGE_VOLUME_TYPES, type StorageVolumeType } from '../storage-states.js';

const StorageVolumeTypeEnum = Object.fromEntries(STORAGE_VOLUME_TYPES.map((t) => [t, t]));
registerEnumType(StorageVolumeTypeEnum, {
  name: 'StorageVolumeType',
  description: "libvirt's virStorageVolType: file, block, dir, network, netdir, ploop",
});

@ApiSchema({ name: 'StorageBackingStore' })
@ObjectType('StorageBackingStore', { description: 'The image a volume is backed by' })
export class StorageBackingStoreModel {
  @ApiProperty({
    type: String,
    nullable: true,
    example: '/var/lib/libvirt/images/base.qcow2',
  })
  @Field(() => String, { nullable: true })
  path!: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The backing image format, null when the volume does not record it',
    example: 'qcow2',
  })
  @Field(() => String, { nullable: true })
  format!: string | null;
}

@ApiSchema({ name: 'StorageVolume' })
@ObjectType('StorageVolume')
export class StorageVolumeModel {
  @ApiProperty({ example: 'vm1.qcow2' })
  @Field()
  name!: string;

  @ApiProperty({
    description: 'Unique on the host (for file volumes, the path)',
    example: '/var/lib/libvirt/images/vm1.qcow2',
  })
  @Field()
  key!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Where the volume is on the host, as a domain disk would name it',
    example: '/var/lib/libvirt/images/vm1.qcow2',
  })
  @Field(() => String, { nullable: true })
  path!: string | null;

  @ApiProperty({
    enum: STORAGE_VOLUME_TYPES,
    enumName: 'StorageVolumeType',
    nullable: true,
    description: 'Null only for a type newer than this gateway knows',
    example: 'file',
  })
  @Field(() => StorageVolumeTypeEnum, { nullable: true })
  type!: StorageVolumeType | null;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Image format: qcow2, raw, iso…; null when libvirt states none',
    example: 'qcow2',
  })
  @Field(() => String, { nullable: true })
  format!: string | null;

  @ApiProperty({
    type: 'integer',
    description: 'Virtual size the guest sees, in bytes',
    example: 33554432,
  })
  @Field(() => Float)
  capacityBytes!: number;

  @ApiProperty({ type: 'integer', description: 'Bytes allocated on the host', example: 200704 })
  @Field(() => Float)
  allocationBytes!: number;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'Size of the file or device on the host; null where libvirt does not report it',
    example: 196616,
  })
  @Field(() => Float, { nullable: true })
  physicalBytes!: number | null;

  @ApiProperty({ type: StorageBackingStoreModel, nullable: true })
  @Field(() => StorageBackingStoreModel, { nullable: true })
  backingStore!: StorageBackingStoreModel | null;
}

@ApiSchema({ name: 'StorageVolumeList' })
export class StorageVolumeListModel {
  @ApiProperty({ type: [StorageVolumeModel], description: 'Sorted by name' })
  items!: StorageVolumeModel[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as cursor for the next page; null on the last page',
  })
  nextCursor!: string | null;
}
