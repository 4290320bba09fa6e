/** Snapshot views, declared once for REST (@ApiProperty) and GraphQL (@Field). */
import { Field, ObjectType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { registerValueEnum } from '#src/graphql/value-enum.js';
import { DISK_IMAGE_FORMATS } from '#src/xml/domain-xml.js';

/** libvirt's virDomainSnapshotState: the domain states, and disk-snapshot (a disk-only snapshot). */
export const SNAPSHOT_STATES = [
  'nostate',
  'running',
  'blocked',
  'paused',
  'shutdown',
  'shutoff',
  'crashed',
  'pmsuspended',
  'disk-snapshot',
] as const;

/** libvirt's snapshot locations (virDomainSnapshotLocation) as its XML writes them. */
export const SNAPSHOT_LOCATIONS = ['no', 'internal', 'external', 'manual'] as const;

/** libvirt's closed sets of a snapshot's XML (its domain snapshot schema). */
const DiskSnapshotKindEnum = registerValueEnum(
  ['external', 'internal', 'manual', 'no'] as const,
  'DiskSnapshotKind',
  'How the snapshot holds a disk: external (an overlay), internal, manual (left to the caller) or no',
);
const SnapshotStateEnum = registerValueEnum(
  SNAPSHOT_STATES,
  'SnapshotState',
  "The domain's state the snapshot captured (disk-snapshot: disks only)",
);
const SnapshotMemoryEnum = registerValueEnum(
  ['internal', 'external', 'no'] as const,
  'SnapshotMemory',
  "The snapshot's memory state: internal, external or no",
);

@ApiSchema({ name: 'SnapshotDisk' })
@ObjectType('SnapshotDisk')
export class SnapshotDiskModel {
  @ApiProperty({ example: 'vda' })
  @Field()
  target!: string;

  @ApiProperty({ enum: SNAPSHOT_LOCATIONS, example: 'external' })
  @Field(() => DiskSnapshotKindEnum)
  snapshot!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The overlay created for an external snapshot',
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
}

@ApiSchema({ name: 'Snapshot' })
@ObjectType('Snapshot')
export class SnapshotModel {
  @ApiProperty({ example: 'before-upgrade' })
  @Field()
  name!: string;

  @ApiProperty({ type: String, nullable: true })
  @Field(() => String, { nullable: true })
  description!: string | null;

  @ApiProperty({
    enum: SNAPSHOT_STATES,
    nullable: true,
    description: 'The domain state captured (running, shutoff, disk-snapshot…)',
  })
  @Field(() => SnapshotStateEnum, { nullable: true })
  state!: string | null;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    example: '2026-11-29T07:00:00.000Z',
  })
  @Field(() => String, { nullable: true })
  createdAt!: string | null;

  @ApiProperty({ type: String, nullable: true, description: 'Name of the parent snapshot' })
  @Field(() => String, { nullable: true })
  parent!: string | null;

  @ApiProperty({
    enum: SNAPSHOT_LOCATIONS,
    nullable: true,
    description: 'Where the memory state is: internal, external or no (none kept)',
  })
  @Field(() => SnapshotMemoryEnum, { nullable: true })
  memory!: string | null;

  @ApiProperty({ type: [SnapshotDiskModel] })
  @Field(() => [SnapshotDiskModel])
  disks!: SnapshotDiskModel[];
}
