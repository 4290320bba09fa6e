/** Snapshot views, declared once for REST (@ApiProperty) and GraphQL (@Field). */
import { Field, ObjectType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';

@ApiSchema({ name: 'SnapshotDisk' })
@ObjectType('SnapshotDisk')
export class SnapshotDiskModel {
  @ApiProperty({ example: 'vda' })
  @Field()
  target!: string;

  @ApiProperty({ description: 'external, internal, manual or no', example: 'external' })
  @Field()
  snapshot!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The overlay created for an external snapshot',
  })
  @Field(() => String, { nullable: true })
  path!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'qcow2' })
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
    type: String,
    nullable: true,
    description: 'The domain state captured (running, shutoff, disk-snapshot…)',
  })
  @Field(() => String, { nullable: true })
  state!: string | null;

  @ApiProperty({ type: String, nullable: true, example: '2026-11-29T07:00:00.000Z' })
  @Field(() => String, { nullable: true })
  createdAt!: string | null;

  @ApiProperty({ type: String, nullable: true, description: 'Name of the parent snapshot' })
  @Field(() => String, { nullable: true })
  parent!: string | null;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Memory state: internal, external or no',
  })
  @Field(() => String, { nullable: true })
  memory!: string | null;

  @ApiProperty({ type: [SnapshotDiskModel] })
  @Field(() => [SnapshotDiskModel])
  disks!: SnapshotDiskModel[];
}
