/**
 * The result of a `domain.snapshot` job (modules/snapshots/snapshots.processor.ts):
 * the overlays made and the disks read back. Declared once for REST and GraphQL.
 */
import { Field, ObjectType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { DiskModel } from '#modules/domains/models/domain.model.js';
import { declareJobType } from '#modules/jobs/models/job-results.js';
import { resolvedOf } from '#modules/jobs/models/resolved-schemas.js';
import { S } from '#src/openapi/schema-variants.js';

@ApiSchema({ name: 'SnapshotOverlay', description: 'The overlay a snapshot put on one disk' })
@ObjectType('SnapshotOverlay')
export class SnapshotOverlay {
  @ApiProperty({ example: 'vda' })
  @Field()
  target!: string;

  @ApiProperty({
    description: 'The overlay, now the image the guest writes to',
    example: '/var/lib/libvirt/images/vm1.before-upgrade.qcow2',
  })
  @Field()
  path!: string;
}

@ApiSchema({ name: 'SnapshotResult', description: 'The result of a `domain.snapshot` job' })
@ObjectType('SnapshotResult')
export class SnapshotResult {
  @ApiProperty({ description: "The snapshot's name", example: 'before-upgrade' })
  @Field()
  name!: string;

  @ApiProperty({ description: 'Whether libvirt keeps the snapshot in its list (metadata)' })
  @Field()
  metadata!: boolean;

  @ApiProperty({
    description:
      'Whether the job changed anything: false when an earlier attempt had made the overlays already',
  })
  @Field()
  changed!: boolean;

  @ApiProperty({ type: [SnapshotOverlay], description: "Each disk's new overlay" })
  @Field(() => [SnapshotOverlay])
  overlays!: SnapshotOverlay[];

  @ApiProperty({
    type: [DiskModel],
    description:
      "The snapshot's disks as read back from libvirt, the overlay at the top of each chain",
  })
  @Field(() => [DiskModel])
  disks!: DiskModel[];
}

declareJobType('domain.snapshot', {
  result: SnapshotResult,
  resolved: {
    schema: resolvedOf({
      name: S.string("The snapshot's name"),
      description: S.nullable(S.string("The snapshot's description")),
      metadata: S.boolean('Whether libvirt keeps the snapshot in its list'),
      disks: S.array(
        S.object({
          target: S.string('The disk'),
          top: S.string('Its top image when the request was accepted'),
          overlay: S.string('The overlay the snapshot puts on it'),
        }),
        "Each disk's overlay",
      ),
    }),
  },
});

declare module '#jobs/job-types.js' {
  interface JobResults {
    'domain.snapshot': SnapshotResult;
  }
}
