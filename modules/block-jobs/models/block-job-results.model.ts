/**
 * The result of a block job (commit, copy, pull): what
 * modules/block-jobs/block-jobs.processor.ts (and the reconciler, for a job
 * no worker followed to its end) records, also when the job was canceled or
 * failed. Declared once for REST and GraphQL, one type per job type.
 */
import { Field, ObjectType, registerEnumType } from '@nestjs/graphql';
import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { DiskModel } from '#modules/domains/models/domain.model.js';
import { declareJobType } from '#modules/jobs/models/job-results.js';
import { CHAIN_MEMBER_REF, resolvedOf } from '#modules/jobs/models/resolved-schemas.js';
import { S } from '#src/openapi/schema-variants.js';

export const CHAIN_OUTCOMES = ['applied', 'unchanged', 'unexpected'] as const;
export type ChainOutcomeName = (typeof CHAIN_OUTCOMES)[number];
const ChainOutcomeEnum = Object.fromEntries(CHAIN_OUTCOMES.map((o) => [o, o]));
registerEnumType(ChainOutcomeEnum, {
  name: 'BlockJobOutcome',
  description:
    'What the live chain says of the job: `applied` (the chain is the one the job leaves), `unchanged` (the one it started on), `unexpected` (neither)',
});

/** libvirt's virConnectDomainEventBlockJobStatus, lower-cased. */
export const LIBVIRT_BLOCK_JOB_STATUSES = ['completed', 'failed', 'canceled', 'ready'] as const;
export type LibvirtBlockJobStatus = (typeof LIBVIRT_BLOCK_JOB_STATUSES)[number];
const LibvirtBlockJobStatusEnum = Object.fromEntries(LIBVIRT_BLOCK_JOB_STATUSES.map((s) => [s, s]));
registerEnumType(LibvirtBlockJobStatusEnum, {
  name: 'LibvirtBlockJobStatus',
  description: "libvirt's virConnectDomainEventBlockJobStatus, lower-cased",
});

export const COMPLETION_SOURCES = ['event+chain', 'chain'] as const;
const COMPLETION_SOURCE_NAMES = { event_chain: 'event+chain', chain: 'chain' } as const;
registerEnumType(COMPLETION_SOURCE_NAMES, {
  name: 'BlockJobCompletionSource',
  description:
    "How the end was seen: `event_chain` (REST `event+chain`: libvirt's event, then the live chain), `chain` (the live chain alone: a job a worker re-attached to after it ended)",
});

@ObjectType({ isAbstract: true })
export abstract class BlockJobResult {
  @ApiProperty({
    enum: CHAIN_OUTCOMES,
    example: 'applied',
    description:
      'What the live chain says of the job: `applied` (the chain is the one the job leaves), `unchanged` (the one it started on), `unexpected` (neither)',
  })
  @Field(() => ChainOutcomeEnum)
  outcome!: ChainOutcomeName;

  @ApiProperty({
    type: String,
    enum: LIBVIRT_BLOCK_JOB_STATUSES,
    nullable: true,
    description:
      "How libvirt said the job ended (its event's status, lower-cased); null when the end was seen in the live chain alone",
    example: 'completed',
  })
  @Field(() => LibvirtBlockJobStatusEnum, { nullable: true })
  libvirtStatus!: LibvirtBlockJobStatus | null;

  @ApiProperty({
    type: String,
    enum: COMPLETION_SOURCES,
    nullable: true,
    description:
      "Applied jobs: how the end was seen (`event+chain`: libvirt's event, then the live chain; `chain`: the live chain alone, for a job a worker re-attached to after it ended); null otherwise",
    example: 'event+chain',
  })
  @Field(() => COMPLETION_SOURCE_NAMES, { nullable: true })
  completionSeenIn!: (typeof COMPLETION_SOURCES)[number] | null;

  @ApiProperty({
    type: Boolean,
    nullable: true,
    description:
      'Two-phase jobs (active commit, copy): whether the guest was switched to the new image; null for the others',
  })
  @Field(() => Boolean, { nullable: true })
  pivoted!: boolean | null;

  @ApiProperty({
    description:
      'Whether a worker re-attached to the job (after a crash, a lost host or a restart)',
  })
  @Field()
  reattached!: boolean;

  @ApiProperty({
    type: [String],
    description:
      "The chain's image paths when the job started, the top (the image the guest writes to) first",
    example: ['/var/lib/libvirt/images/vm1-snap.qcow2', '/var/lib/libvirt/images/vm1.qcow2'],
  })
  @Field(() => [String])
  chainBefore!: string[];

  @ApiProperty({
    type: DiskModel,
    description:
      "The disk as read back from the live XML at the end, with libvirt's current indexes",
  })
  @Field(() => DiskModel)
  disk!: DiskModel;

  @ApiProperty({
    type: Boolean,
    nullable: true,
    description:
      "Whether the persistent definition's chain differs from the live one; null for a transient domain",
  })
  @Field(() => Boolean, { nullable: true })
  persistentChainDiffers!: boolean | null;
}

@ApiSchema({ name: 'CommitResult', description: 'The result of a `block.commit` job' })
@ObjectType('CommitResult')
export class CommitResult extends BlockJobResult {}

@ApiSchema({ name: 'CopyResult', description: 'The result of a `block.copy` job' })
@ObjectType('CopyResult')
export class CopyResult extends BlockJobResult {}

@ApiSchema({ name: 'PullResult', description: 'The result of a `block.pull` job' })
@ObjectType('PullResult')
export class PullResult extends BlockJobResult {}

const BANDWIDTH = S.integer('Bytes per second; 0: no limit');

/** A block job libvirt was running with no record of the gateway's, taken on by reconciliation. */
const ADOPTED = resolvedOf(
  {
    adopted: S.enum([true], 'An adopted job'),
    disk: S.string('The disk'),
    libvirtType: S.integer("libvirt's virDomainBlockJobType when the job was adopted"),
    pivot: S.enum([false], 'Never: an adopted job waits in `ready` for a pivot or a cancel'),
    active: S.boolean('Commits: the top is the active image'),
    top: CHAIN_MEMBER_REF,
    base: CHAIN_MEMBER_REF,
    source: CHAIN_MEMBER_REF,
    destination: S.string("Copy: the mirror's image"),
    format: S.nullable(S.string("Copy: the mirror's format")),
  },
  { optional: ['active', 'top', 'base', 'source', 'destination', 'format'] },
);

/** A job's own parameters, or an adopted job's. */
const resolved = (own: Parameters<typeof resolvedOf>[0], optional: string[] = []) => ({
  schema: { oneOf: [resolvedOf(own, { optional }), ADOPTED] },
});

declareJobType('block.commit', {
  result: CommitResult,
  resolved: resolved({
    disk: S.string('The disk'),
    top: CHAIN_MEMBER_REF,
    base: CHAIN_MEMBER_REF,
    active: S.boolean('The top is the active image: a two-phase job that ends with a pivot'),
    shallow: S.boolean('Merge into the image right below top'),
    deleteCommittedImages: S.boolean('Delete the merged images once the commit succeeded'),
    bandwidth: BANDWIDTH,
    pivot: S.boolean('Active commit: pivot as soon as libvirt reports the job ready'),
  }),
});
declareJobType('block.copy', {
  result: CopyResult,
  resolved: resolved(
    {
      disk: S.string('The disk'),
      source: CHAIN_MEMBER_REF,
      destination: S.string('The absolute path of the copy'),
      format: S.enum(['qcow2', 'raw'], "The copy's format"),
      shallow: S.boolean('Copy only the top image'),
      reuseExisting: S.boolean('The destination existed and is overwritten'),
      bandwidth: BANDWIDTH,
      pivot: S.boolean('Pivot as soon as libvirt reports the job ready'),
      newVolumeIn: S.nullable(S.string('The dir pool the copy creates its destination in')),
    },
    ['newVolumeIn'],
  ),
});
declareJobType('block.pull', {
  result: PullResult,
  resolved: resolved({
    disk: S.string('The disk'),
    top: CHAIN_MEMBER_REF,
    base: S.nullable(CHAIN_MEMBER_REF),
    bandwidth: BANDWIDTH,
  }),
});

declare module '#jobs/job-types.js' {
  interface JobResults {
    'block.commit': CommitResult;
    'block.copy': CopyResult;
    'block.pull': PullResult;
  }
}
