import { Field, ID, ObjectType } from '@nestjs/graphql';
import { EVENT_TYPES, type EventType } from '#src/events/event-types.js';
import { JSONScalar } from '#src/graphql/json.scalar.js';
import type { JobState, JobType } from '#jobs/job-types.js';
import {
  JobErrorModel,
  JobProgressModel,
  JobStateEnum,
  JobTypeEnum,
} from '#modules/jobs/models/job.model.js';
import { registerValueEnum } from '#src/graphql/value-enum.js';
import { LibvirtBlockJobTypeEnum } from '#modules/domains/models/domain.model.js';

/**
 * An event's type as an enum. GraphQL enum values cannot hold the dots and
 * dashes of the vocabulary (`block-job.ready`), so each is written with '_'
 * (`block_job_ready`), the rule of every enum of this schema over a dotted
 * vocabulary (JobType, AuditAction); the enum maps them both ways, and the
 * filters (`EventFilterInput.types`, with their wildcards) keep the channel
 * names. Generated from EVENT_TYPES, so the committed schema changes when the
 * vocabulary does.
 */
export const EventTypeEnum = registerValueEnum(
  EVENT_TYPES.map((d) => d.type),
  'EventType',
  'An event type (REST, server-sent events, webhooks: domain.started, block-job.ready, …)',
);

/** libvirt's status of a block job in its event: `ready` for a mirror that can be pivoted, else how it ended. */
export const BlockJobStatusEnum = registerValueEnum(
  ['completed', 'failed', 'canceled', 'ready', 'unknown'] as const,
  'BlockJobStatus',
  "libvirt's status of a block job: ready (a mirror that can be pivoted), else how it ended",
);

@ObjectType('EventDomain', { description: 'The domain an event is about' })
export class EventDomainModel {
  @Field(() => String, {
    nullable: true,
    description: 'Null only in the events of a job for a domain not yet defined',
  })
  uuid!: string | null;

  @Field()
  name!: string;
}

@ObjectType('EventBlockJob', {
  description: 'A block job as libvirt reports it, with the gateway job that runs it',
})
export class EventBlockJobModel {
  @Field({ description: "The disk's target (vda)" })
  disk!: string;

  @Field(() => LibvirtBlockJobTypeEnum)
  type!: string;

  @Field(() => BlockJobStatusEnum)
  status!: string;

  @Field(() => ID, {
    nullable: true,
    description: "The gateway's job on this disk (null for a block job started outside it)",
  })
  jobId!: string | null;
}

@ObjectType('EventJob', {
  description: "A gateway job's record at the change (job.state-changed, job.progress)",
})
export class EventJobModel {
  @Field(() => ID)
  id!: string;

  @Field(() => JobTypeEnum)
  type!: JobType;

  @Field(() => JobStateEnum)
  state!: JobState;

  @Field(() => JobStateEnum, {
    nullable: true,
    description: 'The state before (null when the job was just queued, and in job.progress)',
  })
  previousState!: JobState | null;

  @Field(() => JobProgressModel, { nullable: true })
  progress!: JobProgressModel | null;

  @Field(() => JobErrorModel, { nullable: true })
  error!: JobErrorModel | null;

  @Field(() => JSONScalar, {
    nullable: true,
    description: "The job's result, in the event of its completed state (null before)",
  })
  result!: Record<string, unknown> | null;

  @Field({ description: 'The id of the caller that asked for the job' })
  requestedBy!: string;

  @Field(() => String, { nullable: true })
  disk!: string | null;

  @Field(() => String, { nullable: true, description: 'The storage pool of a storage job' })
  pool!: string | null;
}

@ObjectType('Event', {
  description:
    'One event of the gateway, as every channel delivers it (server-sent events, JSON pages, webhooks): every field is always there, null when it does not apply to the type',
})
export class EventModel {
  @Field(() => ID, {
    description:
      "The cursor: the event's stream id (<ms>-<n>), increasing; pass it as `after` to resume",
  })
  id!: string;

  @Field({ description: 'When the source saw it (ISO 8601)' })
  time!: string;

  @Field(() => EventTypeEnum)
  type!: EventType;

  @Field(() => String, { nullable: true })
  host!: string | null;

  @Field(() => EventDomainModel, { nullable: true })
  domain!: EventDomainModel | null;

  @Field(() => String, {
    nullable: true,
    description: "libvirt's detail of a lifecycle event (booted, destroyed, …)",
  })
  detail!: string | null;

  @Field({
    description:
      'True for an event found by reconciliation: it happened while no worker listened to the host',
  })
  reconciled!: boolean;

  @Field(() => EventBlockJobModel, { nullable: true })
  blockJob!: EventBlockJobModel | null;

  @Field(() => EventJobModel, { nullable: true })
  job!: EventJobModel | null;

  @Field(() => JSONScalar, {
    nullable: true,
    description: 'What the type carries beyond the other fields (a device alias, a tray state, …)',
  })
  data!: Record<string, unknown> | null;
}
