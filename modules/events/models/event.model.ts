import { Field, ID, ObjectType } from '@nestjs/graphql';
import { GraphQLScalarType, Kind } from 'graphql';
import { EVENT_TYPES, isEventType, type EventType } from '#src/events/event-types.js';
import { JSONScalar } from '#src/graphql/json.scalar.js';
import type { JobState } from '#jobs/job-types.js';
import { JobErrorModel, JobProgressModel, JobStateEnum } from '#modules/jobs/models/job.model.js';

/**
 * An event's type as a scalar, not an enum: GraphQL enum values cannot hold
 * the dots and dashes of the vocabulary (`block-job.ready`), and renamed
 * values (BLOCK_JOB_READY) would be a second vocabulary beside the one the
 * filters, server-sent events and webhooks use. The scalar keeps the names
 * as they are, and its description lists them (generated from EVENT_TYPES,
 * so the committed schema changes when the vocabulary does).
 */
export const EventTypeScalar = new GraphQLScalarType({
  name: 'EventType',
  description: `An event type, as every channel names it: ${EVENT_TYPES.map((d) => d.type).join(', ')}`,
  serialize: (v) => v,
  parseValue: (v) => {
    if (typeof v === 'string' && isEventType(v)) return v;
    throw new TypeError(`not an event type: ${JSON.stringify(v)}`);
  },
  parseLiteral: (node) => {
    if (node.kind === Kind.STRING && isEventType(node.value)) return node.value;
    throw new TypeError('not an event type');
  },
});

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

  @Field({ description: 'pull, copy, commit, active-commit or unknown' })
  type!: string;

  @Field({ description: 'completed, failed, canceled, ready or unknown' })
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

  @Field({ description: 'The job type (domain.start, block.commit, …)' })
  type!: string;

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

  @Field(() => EventTypeScalar)
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
