import { Inject } from '@nestjs/common';
import { Args, ArgsType, Field, ID, Resolver, Subscription } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsOptional, IsString, IsUUID, ValidateNested } from 'class-validator';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import type { GatewayEvent, JobEventPart } from '#src/events/event.js';
import { EventFeed } from '#src/events/event-feed.js';
import { checkEventFilter } from '#src/events/event-filter.js';
import { EVENT_STREAM, type EventStream } from '#src/events/event-stream.js';
import type { JobRecord } from '#jobs/job-store.js';
import { TERMINAL_STATES, type JobState } from '#jobs/job-types.js';
import { JobModel, JobsService } from '#modules/jobs/index.js';
import { EventFilterInput } from './dto/event-filter.input.js';
import { EventsService } from './events.service.js';
import { FeedIterator } from './feed-iterator.js';
import { EventModel } from './models/event.model.js';

@ArgsType()
class EventsArgs {
  @Field(() => EventFilterInput, {
    nullable: true,
    description: 'Which events: each list given narrows them; none: every event the token may see',
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => EventFilterInput)
  filter?: EventFilterInput;

  @Field(() => String, {
    nullable: true,
    description:
      'Resume after this event id (exclusive): every retained event after it comes first, in order, then the new ones. None: from now on. An id older than retention is CURSOR_EXPIRED (with extensions.oldestEventId)',
  })
  @IsOptional()
  @IsString()
  after?: string;
}

@ArgsType()
class JobIdArgs {
  @Field(() => ID)
  @IsUUID()
  id!: string;
}

const JOB_EVENT_TYPES = new Set<string>(['job.state-changed', 'job.progress']);

/** Sizes measured: the feed hands each live event, one object, to every subscriber. */
const sizes = new WeakMap<GatewayEvent, number>();

/** An event's size as the client receives it, roughly (its JSON's length), measured once. */
function sizeOfEvent(e: GatewayEvent): number {
  let size = sizes.get(e);
  if (size === undefined) {
    size = JSON.stringify(e).length;
    sizes.set(e, size);
  }
  return size;
}

/**
 * The event stream over GraphQL subscriptions (graphql-ws at /graphql): the
 * same stream, cursor, filter language and scope rule as the other channels,
 * read through this process's EventFeed, so every api process serves every
 * event.
 */
@Resolver()
export class EventsResolver {
  constructor(
    @Inject(EVENT_STREAM) private readonly stream: EventStream,
    private readonly feed: EventFeed,
    private readonly jobs: JobsService,
    private readonly eventsService: EventsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Access('viewer')
  @Subscription(() => EventModel, {
    name: 'events',
    description:
      'Events as they happen, filtered (the filter language of every channel), only those the token may see (its scopes); with `after`, first every retained event after that id. A subscriber that falls more than EVENTS_CLIENT_BUFFER_BYTES behind gets UNAVAILABLE: resume with `after`',
    resolve: (event: GatewayEvent) => event,
  })
  async events(
    @CurrentCaller() caller: Caller,
    @Args() args: EventsArgs,
  ): Promise<AsyncIterableIterator<GatewayEvent>> {
    const filter = checkEventFilter(args.filter ?? {}, (key) => `filter.${key}`);
    const after = args.after ?? null;
    if (after !== null) await this.stream.checkCursor(after, 'after');
    return this.follow(after, this.eventsService.accepts(caller, filter));
  }

  @Access('viewer')
  @Subscription(() => JobModel, {
    name: 'job',
    description:
      'A job (NOT_FOUND when there is none the token may see): its record as it is now, then at each change of its state and each progress event (at most one per EVENTS_PROGRESS_INTERVAL_MS), until it is final; then the subscription completes',
    resolve: (record: JobRecord) => record,
  })
  async followJob(
    @CurrentCaller() caller: Caller,
    @Args() { id }: JobIdArgs,
  ): Promise<AsyncIterableIterator<JobRecord>> {
    const { record, cursor } = await this.jobs.snapshot(caller, id);
    if (TERMINAL_STATES.has(record.state)) return new JobUpdates(record, null, async () => null);
    const events = await this.follow(
      cursor,
      (e) => JOB_EVENT_TYPES.has(e.type) && e.job?.id === id,
    );
    return new JobUpdates(record, events, async () => {
      try {
        return await this.jobs.get(caller, id);
      } catch {
        return null; // pruned meanwhile: the event's own facts still stand
      }
    });
  }

  /** A bounded iterator over the feed from `after` (null: from now). */
  private async follow(
    after: string | null,
    accept: (e: GatewayEvent) => boolean,
  ): Promise<FeedIterator<GatewayEvent>> {
    const iterator = new FeedIterator<GatewayEvent>(
      this.config.eventsClientBufferBytes,
      sizeOfEvent,
    );
    const subscription = await this.feed.subscribe(
      after,
      accept,
      (batch) => iterator.push(batch),
      (err) => iterator.fail(err),
    );
    iterator.attach(subscription);
    return iterator;
  }
}

/**
 * A job's record, then the record at each of its events until it is final.
 * Each item is the record as read when the event is handled, with what the
 * event itself carries (state, progress, error, result, the time as
 * updatedAt) taking precedence, so a fast job still shows each state it went
 * through, in order, even when the record has moved on meanwhile.
 */
class JobUpdates implements AsyncIterableIterator<JobRecord> {
  private first: JobRecord | null;
  private last: JobRecord;
  private ended = false;

  constructor(
    initial: JobRecord,
    private readonly events: FeedIterator<GatewayEvent> | null,
    private readonly reread: () => Promise<JobRecord | null>,
  ) {
    this.first = initial;
    this.last = initial;
  }

  async next(): Promise<IteratorResult<JobRecord>> {
    if (this.first !== null) {
      const first = this.first;
      this.first = null;
      if (TERMINAL_STATES.has(first.state)) this.end();
      return { value: first, done: false };
    }
    if (this.ended || this.events === null) return { value: undefined, done: true };
    const step = await this.events.next();
    if (step.done || this.ended) {
      this.end();
      return { value: undefined, done: true };
    }
    const record = atEvent((await this.reread()) ?? this.last, step.value.job!, step.value.time);
    this.last = record;
    if (TERMINAL_STATES.has(record.state)) this.end();
    return { value: record, done: false };
  }

  return(): Promise<IteratorResult<JobRecord>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private end(): void {
    this.ended = true;
    this.first = null;
    void this.events?.return();
  }
}

/** `record` as of one of its events: the event's own facts over the record's. */
function atEvent(record: JobRecord, job: JobEventPart, time: string): JobRecord {
  const state = job.state as JobState;
  const final = TERMINAL_STATES.has(state);
  return {
    ...record,
    state,
    progress: job.progress,
    error: job.error,
    result: final ? (job.result ?? record.result) : null,
    finishedAt: final ? record.finishedAt : null,
    updatedAt: time,
  };
}
