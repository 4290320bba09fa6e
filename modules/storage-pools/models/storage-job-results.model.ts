/**
 * The results of the storage jobs (pools and volumes): what
 * modules/storage-pools/storage-pools.processor.ts returns, the pool's or
 * volume's view read back. Declared once for REST and GraphQL.
 */
import { Field, ObjectType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { declareJobType } from '#modules/jobs/models/job-results.js';
import { resolvedOf } from '#modules/jobs/models/resolved-schemas.js';
import { S } from '#src/openapi/schema-variants.js';
import { StoragePoolModel } from './storage-pool.model.js';
import { StorageVolumeModel } from './storage-volume.model.js';

const CHANGED =
  'Whether the job changed anything: false when the pool or volume was so already (a job run again after a crash finds its work done)';

/** A pool job whose pool is still there: its view read back. */
@ObjectType({ isAbstract: true })
abstract class PoolViewResult {
  @ApiProperty({ description: CHANGED })
  @Field()
  changed!: boolean;

  @ApiProperty({ type: StoragePoolModel, description: 'The pool as libvirt has it now' })
  // Nullable in GraphQL as in StopPoolResult: a union's members must agree on a field's type.
  @Field(() => StoragePoolModel, {
    nullable: true,
    description: 'The pool as libvirt has it now (never null here)',
  })
  pool!: StoragePoolModel;
}

@ApiSchema({ name: 'DefinePoolResult', description: 'The result of a `pool.define` job' })
@ObjectType('DefinePoolResult')
export class DefinePoolResult extends PoolViewResult {}

@ApiSchema({ name: 'StartPoolResult', description: 'The result of a `pool.start` job' })
@ObjectType('StartPoolResult')
export class StartPoolResult extends PoolViewResult {}

@ApiSchema({ name: 'RefreshPoolResult', description: 'The result of a `pool.refresh` job' })
@ObjectType('RefreshPoolResult')
export class RefreshPoolResult extends PoolViewResult {}

@ApiSchema({ name: 'StopPoolResult', description: 'The result of a `pool.stop` job' })
@ObjectType('StopPoolResult')
export class StopPoolResult {
  @ApiProperty({ description: CHANGED })
  @Field()
  changed!: boolean;

  @ApiProperty({
    type: StoragePoolModel,
    nullable: true,
    description: 'The pool as libvirt has it now; null for a transient pool, gone once stopped',
  })
  @Field(() => StoragePoolModel, { nullable: true })
  pool!: StoragePoolModel | null;
}

@ApiSchema({
  name: 'UndefinePoolResult',
  description: 'The result of a `pool.undefine` job: the pool undefined',
})
@ObjectType('UndefinePoolResult')
export class UndefinePoolResult {
  @ApiProperty({ description: CHANGED })
  @Field()
  changed!: boolean;

  @ApiProperty({ description: "The pool's name", example: 'images' })
  // `poolName` in GraphQL: `pool` is the pool's view in the other members of JobResult.
  @Field(() => String, { name: 'poolName', description: "The pool's name" })
  pool!: string;

  @ApiProperty({ description: "The pool's UUID", example: '8d2a3a0e-6f7b-4c1e-9a55-0c7d2b1f4e21' })
  @Field()
  uuid!: string;
}

@ApiSchema({ name: 'CreateVolumeResult', description: 'The result of a `volume.create` job' })
@ObjectType('CreateVolumeResult')
export class CreateVolumeResult {
  @ApiProperty({ description: CHANGED })
  @Field()
  changed!: boolean;

  @ApiProperty({ type: StorageVolumeModel, description: 'The volume as libvirt has it now' })
  @Field(() => StorageVolumeModel)
  volume!: StorageVolumeModel;
}

@ApiSchema({
  name: 'DeleteVolumeResult',
  description: 'The result of a `volume.delete` job: the volume deleted',
})
@ObjectType('DeleteVolumeResult')
export class DeleteVolumeResult {
  @ApiProperty({ description: CHANGED })
  @Field()
  changed!: boolean;

  // `poolName` and `volumeName` in GraphQL: `pool` and `volume` are views in the other members of JobResult.
  @ApiProperty({ description: "The volume's pool", example: 'images' })
  @Field(() => String, { name: 'poolName', description: "The volume's pool" })
  pool!: string;

  @ApiProperty({ description: "The volume's name", example: 'vm1.qcow2' })
  @Field(() => String, { name: 'volumeName', description: "The volume's name" })
  volume!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: "The volume's file when the deletion was asked for",
    example: '/var/lib/libvirt/images/vm1.qcow2',
  })
  @Field(() => String, { nullable: true })
  path!: string | null;
}

const resolved = (properties: Parameters<typeof resolvedOf>[0]) => ({
  schema: resolvedOf(properties, { hostJob: true }),
});
const POOL = {
  pool: S.string("The pool's name"),
  uuid: S.string("The pool's UUID (chosen at request time for a define): a re-run finds it by it"),
};
const VOLUME = {
  pool: S.string("The volume's pool"),
  poolUuid: S.string("The pool's UUID"),
  volume: S.string("The volume's name"),
};

declareJobType('pool.define', {
  result: DefinePoolResult,
  resolved: resolved({ ...POOL, xml: S.string('The pool XML defined') }),
});
declareJobType('pool.start', {
  result: StartPoolResult,
  resolved: resolved({ ...POOL, build: S.boolean('Build the pool (make its directory) first') }),
});
declareJobType('pool.stop', { result: StopPoolResult, resolved: resolved(POOL) });
declareJobType('pool.refresh', { result: RefreshPoolResult, resolved: resolved(POOL) });
declareJobType('pool.undefine', { result: UndefinePoolResult, resolved: resolved(POOL) });
declareJobType('volume.create', {
  result: CreateVolumeResult,
  resolved: resolved({
    ...VOLUME,
    xml: S.string('The volume XML created'),
    format: S.enum(['raw', 'qcow2'], "The volume's format"),
    capacityBytes: S.nullable(S.integer('Its size; null: the size of its backing image')),
    backing: S.nullable(
      S.object(
        { path: S.string('The backing image'), format: S.string("The backing image's format") },
        { description: 'The image a qcow2 volume is backed by' },
      ),
    ),
  }),
});
declareJobType('volume.delete', {
  result: DeleteVolumeResult,
  resolved: resolved({
    ...VOLUME,
    path: S.nullable(S.string("The volume's file when the deletion was asked for")),
  }),
});

declare module '#jobs/job-types.js' {
  interface JobResults {
    'pool.define': DefinePoolResult;
    'pool.start': StartPoolResult;
    'pool.stop': StopPoolResult;
    'pool.refresh': RefreshPoolResult;
    'pool.undefine': UndefinePoolResult;
    'volume.create': CreateVolumeResult;
    'volume.delete': DeleteVolumeResult;
  }
}
