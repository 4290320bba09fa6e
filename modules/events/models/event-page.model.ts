import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { ScopeFilteredProperty } from '#src/common/dto/scope-filtered.js';
import { ErrorCode } from '#src/common/errors/app-error.js';
import type { BlockJobEventPart, GatewayEvent, JobEventPart } from '#src/events/event.js';
import { EVENT_TYPE_NAMES, type EventType } from '#src/events/event-types.js';
import { JOB_STATES, JOB_TYPES } from '#jobs/job-types.js';

/** The OpenAPI schemas of events as REST serves them (the shape of src/events/event.ts). */
@ApiSchema({ name: 'EventDomain' })
export class EventDomainModel {
  @ApiProperty({
    type: String,
    nullable: true,
    example: '5b0a5f4e-62d3-4a3c-8f34-0c1d6b2e7a10',
    description: 'null only in the events of a job for a domain not yet defined',
  })
  uuid!: string | null;

  @ApiProperty({ example: 'vm1' })
  name!: string;
}

@ApiSchema({ name: 'EventBlockJob' })
export class EventBlockJobModel implements BlockJobEventPart {
  @ApiProperty({ example: 'vda' })
  disk!: string;

  @ApiProperty({ enum: ['pull', 'copy', 'commit', 'active-commit', 'unknown'] })
  type!: BlockJobEventPart['type'];

  @ApiProperty({ enum: ['completed', 'failed', 'canceled', 'ready', 'unknown'] })
  status!: BlockJobEventPart['status'];

  @ApiProperty({
    type: String,
    nullable: true,
    description: "The gateway's job on this disk (null: a block job started outside the gateway)",
  })
  jobId!: string | null;
}

@ApiSchema({ name: 'EventJobProgress' })
export class EventJobProgressModel {
  @ApiProperty({ type: 'integer' })
  cur!: number;

  @ApiProperty({ type: 'integer' })
  end!: number;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    maximum: 100,
    description: '`cur` of `end`, in whole %',
  })
  percent!: number;
}

@ApiSchema({ name: 'EventJobError' })
export class EventJobErrorModel {
  @ApiProperty({
    enum: ErrorCode,
    enumName: 'ErrorCode',
    description: "The gateway's error code, as in problem documents",
  })
  code!: ErrorCode;

  @ApiProperty()
  message!: string;

  @ApiProperty({ type: String, nullable: true })
  libvirtCode!: string | null;
}

@ApiSchema({ name: 'EventJob' })
export class EventJobModel implements JobEventPart {
  @ApiProperty()
  id!: string;

  @ApiProperty({ enum: Object.keys(JOB_TYPES), example: 'block.commit' })
  type!: string;

  @ApiProperty({ enum: JOB_STATES, example: 'running' })
  state!: string;

  @ApiProperty({ enum: JOB_STATES, nullable: true, example: 'queued' })
  previousState!: string | null;

  @ApiProperty({ type: EventJobProgressModel, nullable: true })
  progress!: EventJobProgressModel | null;

  @ApiProperty({ type: EventJobErrorModel, nullable: true })
  error!: EventJobErrorModel | null;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: "The job's result, in the event of its completion (null before)",
  })
  result!: Record<string, unknown> | null;

  @ApiProperty({ description: 'The id of the caller that asked for the job' })
  requestedBy!: string;

  @ApiProperty({ type: String, nullable: true })
  disk!: string | null;

  @ApiProperty({ type: String, nullable: true })
  pool!: string | null;
}

@ApiSchema({ name: 'Event' })
export class EventModel implements GatewayEvent {
  @ApiProperty({ description: 'The cursor (a Redis stream id)', example: '1796204112225-0' })
  id!: string;

  @ApiProperty({ format: 'date-time', example: '2026-12-02T10:15:12.225Z' })
  time!: string;

  @ApiProperty({
    enum: EVENT_TYPE_NAMES,
    enumName: 'EventType',
    description: 'What happened (each type and its fields: openapi/asyncapi.yaml)',
  })
  type!: EventType;

  @ApiProperty({ type: String, nullable: true, example: 'local' })
  host!: string | null;

  @ApiProperty({ type: EventDomainModel, nullable: true })
  domain!: EventDomainModel | null;

  @ApiProperty({
    type: String,
    nullable: true,
    example: 'booted',
    description: "libvirt's detail of a lifecycle event",
  })
  detail!: string | null;

  @ApiProperty({
    description:
      'Found by reconciliation: the change happened while no worker listened to the host',
  })
  reconciled!: boolean;

  @ApiProperty({ type: EventBlockJobModel, nullable: true })
  blockJob!: EventBlockJobModel | null;

  @ApiProperty({ type: EventJobModel, nullable: true })
  job!: EventJobModel | null;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'What the type carries beyond the rest',
  })
  data!: Record<string, unknown> | null;
}

@ApiSchema({ name: 'EventPage' })
export class EventPageModel {
  @ApiProperty({ type: [EventModel] })
  items!: EventModel[];

  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'Where to go on from: the last event read, matching the filter or not (null: the stream holds none)',
  })
  nextCursor!: string | null;

  @ApiProperty({ description: 'More events were there after nextCursor when the page was read' })
  more!: boolean;

  @ScopeFilteredProperty()
  scopeFiltered!: boolean;
}
