/**
 * Storage pool views, declared once for REST (@ApiProperty) and GraphQL
 * (@Field). Sizes are bytes (Float in GraphQL: Int is 32-bit).
 */
import { Field, Float, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';

import { registerValueEnum } from '#src/graphql/value-enum.js';
import { STORAGE_POOL_STATES, type StoragePoolState } from '../storage-states.js';
import { ScopeFilteredProperty } from '#src/common/dto/scope-filtered.js';

const StoragePoolStateEnum = Object.fromEntries(STORAGE_POOL_STATES.map((s) => [s, s]));
registerEnumType(StoragePoolStateEnum, {
  name: 'StoragePoolState',
  description:
    "libvirt's virStoragePoolState: inactive (defined, not started), building, running, " +
    'degraded (running, some parts unavailable), inaccessible (running, storage unreachable)',
});

/** libvirt's pool types (its storage pool schema); unknown for a pool XML that names none. */
const StoragePoolTypeEnum = registerValueEnum(
  [
    'dir',
    'fs',
    'netfs',
    'logical',
    'disk',
    'iscsi',
    'iscsi-direct',
    'scsi',
    'mpath',
    'rbd',
    'sheepdog',
    'gluster',
    'zfs',
    'vstorage',
    'unknown',
  ] as const,
  'StoragePoolType',
  "A storage pool's type, as libvirt reports it (a new pool's is PoolType)",
);

@ApiSchema({ name: 'StoragePoolSourceHost' })
@ObjectType('StoragePoolSourceHost')
export class StoragePoolSourceHostModel {
  @ApiProperty({ example: 'nfs.example.com' })
  @Field()
  name!: string;

  @ApiProperty({ type: 'integer', nullable: true, example: null })
  @Field(() => Int, { nullable: true })
  port!: number | null;
}

@ApiSchema({ name: 'StoragePoolSource' })
@ObjectType('StoragePoolSource', {
  description: "Where a pool's storage comes from; which parts are set depends on the pool type",
})
export class StoragePoolSourceModel {
  @ApiProperty({
    type: [StoragePoolSourceHostModel],
    description: 'Servers of a network pool: NFS server, iSCSI portal, Ceph monitors',
  })
  @Field(() => [StoragePoolSourceHostModel])
  hosts!: StoragePoolSourceHostModel[];

  @ApiProperty({
    type: [String],
    description:
      'Disks of a disk pool, physical volumes of a logical pool, the IQN of an iSCSI target',
    example: [],
  })
  @Field(() => [String])
  devices!: string[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The exported directory of a netfs pool',
    example: '/export/images',
  })
  @Field(() => String, { nullable: true })
  dir!: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The volume group of a logical pool, the Ceph pool of an rbd pool',
    example: null,
  })
  @Field(() => String, { nullable: true })
  name!: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'nfs, cifs, gpt, lvm2…',
    example: 'nfs',
  })
  @Field(() => String, { nullable: true })
  format!: string | null;
}

@ApiSchema({ name: 'StoragePool' })
@ObjectType('StoragePool')
export class StoragePoolModel {
  @ApiProperty({ example: 'images' })
  @Field()
  name!: string;

  @ApiProperty({ example: 'e66048ef-c26e-457a-a405-158845e0cdac' })
  @Field()
  uuid!: string;

  @ApiProperty({
    description: "libvirt's pool type: dir, fs, netfs, logical, disk, iscsi, rbd…",
    example: 'dir',
  })
  @Field(() => StoragePoolTypeEnum)
  type!: string;

  @ApiProperty({
    enum: STORAGE_POOL_STATES,
    enumName: 'StoragePoolState',
    example: 'running',
  })
  @Field(() => StoragePoolStateEnum)
  state!: StoragePoolState;

  @ApiProperty({
    description:
      'True when the pool has a persistent definition (false: transient, gone when stopped)',
    example: true,
  })
  @Field()
  persistent!: boolean;

  @ApiProperty({ description: 'Started when libvirtd starts', example: false })
  @Field()
  autostart!: boolean;

  @ApiProperty({
    type: String,
    nullable: true,
    description: "Where the pool's volumes appear on the host; null for pools without one (rbd)",
    example: '/var/lib/libvirt/images',
  })
  @Field(() => String, { nullable: true })
  path!: string | null;

  @ApiProperty({ type: StoragePoolSourceModel })
  @Field(() => StoragePoolSourceModel)
  source!: StoragePoolSourceModel;

  @ApiProperty({
    type: 'integer',
    description: 'Total size in bytes, as of the last refresh; 0 while inactive',
    example: 270553174016,
  })
  @Field(() => Float)
  capacityBytes!: number;

  @ApiProperty({
    type: 'integer',
    description: 'Bytes in use, as of the last refresh; 0 while inactive',
    example: 23747989504,
  })
  @Field(() => Float)
  allocationBytes!: number;

  @ApiProperty({
    type: 'integer',
    description: 'Bytes free for new volumes, as of the last refresh; 0 while inactive',
    example: 246805184512,
  })
  @Field(() => Float)
  availableBytes!: number;
}

@ApiSchema({ name: 'StoragePoolList' })
export class StoragePoolListModel {
  @ApiProperty({ type: [StoragePoolModel], description: 'Sorted by name' })
  items!: StoragePoolModel[];

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as cursor for the next page; null on the last page',
  })
  nextCursor!: string | null;

  @ScopeFilteredProperty()
  scopeFiltered!: boolean;
}
