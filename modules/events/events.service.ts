import { Inject, Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { isUnscoped } from '#src/common/auth/scope.js';
import type { GatewayEvent } from '#src/events/event.js';
import { EventFeed, type EventSink, type FeedSubscription } from '#src/events/event-feed.js';
import { eventMatcher, eventVisibleTo, type EventFilter } from '#src/events/event-filter.js';
import { EVENT_STREAM, type EventStream, type EventsPage } from '#src/events/event-stream.js';

/**
 * The events a caller may see, through one filter and one cursor, for
 * every channel of the api: JSON pages and server-sent events here, GraphQL
 * subscriptions through the same `follow`.
 */
@Injectable()
export class EventsService {
  constructor(
    @Inject(EVENT_STREAM) private readonly stream: EventStream,
    private readonly feed: EventFeed,
  ) {}

  /** What `caller` may see of the events matching `filter`, as one test. */
  accepts(caller: Caller, filter: EventFilter): (e: GatewayEvent) => boolean {
    const matches = eventMatcher(filter);
    if (isUnscoped(caller)) return matches;
    return (e) => matches(e) && eventVisibleTo(caller, e);
  }

  /** Checks a cursor a client gave: 400 when malformed, 410 CURSOR_EXPIRED when no longer retained. */
  checkCursor(cursor: string, field: string): Promise<void> {
    return this.stream.checkCursor(cursor, field);
  }

  async page(
    caller: Caller,
    filter: EventFilter,
    after: string | null,
    limit: number,
  ): Promise<EventsPage> {
    if (after !== null) await this.stream.checkCursor(after, 'after');
    const page = await this.stream.page(after, limit, this.accepts(caller, filter));
    return {
      items: page.events,
      nextCursor: page.next,
      more: page.more,
      scopeFiltered: !isUnscoped(caller),
    };
  }

  /**
   * Follows the events `caller` may see matching `filter`, after `after`
   * (null: from now; checked first with checkCursor).
   */
  follow(
    caller: Caller,
    filter: EventFilter,
    after: string | null,
    sink: EventSink,
    onError: (err: unknown) => void,
  ): Promise<FeedSubscription> {
    return this.feed.subscribe(after, this.accepts(caller, filter), sink, onError);
  }
}
