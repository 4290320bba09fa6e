import { Controller, Get, Headers, Inject, Query, Req, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Access } from '#src/common/auth/access.js';
import type { Caller } from '#src/common/auth/caller.js';
import { ApiProblemResponses } from '#src/common/decorators/api-problem-responses.decorator.js';
import { CurrentCaller } from '#src/common/decorators/current-caller.decorator.js';
import { DEFAULT_PAGE_SIZE } from '#src/common/pagination.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import type { GatewayEvent } from '#src/events/event.js';
import type { FeedSubscription } from '#src/events/event-feed.js';
import { filterFromQuery } from '#src/events/event-filter.js';
import { ListEventsQueryDto } from './dto/list-events-query.dto.js';
import type { EventsPage } from '#src/events/event-stream.js';
import { EventsService } from './events.service.js';
import { EventPageModel } from './models/event-page.model.js';

/** How long a client waits before reconnecting, as the stream tells it (the SSE `retry:` field). */
const SSE_RETRY_MS = 2000;

/**
 * The event stream over HTTP: server-sent events (`Accept: text/event-stream`)
 * that resume from Last-Event-ID or `?after=`, or JSON pages for batch
 * consumers. The same cursor, filter and scope rule as every other channel.
 */
@ApiTags('events')
@ApiProblemResponses(401, 429, 500, 503)
@Controller('v1/events')
export class EventsController {
  constructor(
    private readonly events: EventsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get()
  @Access('viewer')
  @ApiOperation({
    summary: 'Events: a server-sent event stream, or JSON pages',
    description:
      'With `Accept: text/event-stream`: every event the caller may see that matches the filter, from ' +
      '`Last-Event-ID` (or `after`; neither: from now) on, as it happens. Each event is `id:` (the cursor), ' +
      '`event:` (its type) and `data:` (the event as JSON); a comment line comes every EVENTS_HEARTBEAT_SECONDS ' +
      'when idle. A client that reads too slowly (more than EVENTS_CLIENT_BUFFER_BYTES unsent) is cut off ' +
      'and resumes with Last-Event-ID. Otherwise a JSON page of up to `limit` events after `after` (from the ' +
      'oldest retained without it); keep `nextCursor` and ask again. A cursor whose following events are ' +
      'no longer retained gets 410 CURSOR_EXPIRED, naming the oldest retained id: list again, then resume. ' +
      'Scoped tokens see the events of their domains and pools, of their hosts, and of their own jobs.',
  })
  @ApiProduces('application/json', 'text/event-stream')
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description:
      'Server-sent events: the id of the last event received (what EventSource sends on reconnect)',
  })
  @ApiOkResponse({
    type: EventPageModel,
    description: 'A JSON page, or (text/event-stream) the stream',
  })
  @ApiProblemResponses(400, 410)
  async listEvents(
    @CurrentCaller() caller: Caller,
    @Query() query: ListEventsQueryDto,
    @Headers('accept') accept: string | undefined,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<EventsPage | undefined> {
    const filter = filterFromQuery(query as Record<string, unknown>);
    if (!wantsEventStream(accept)) {
      return this.events.page(
        caller,
        filter,
        query.after ?? null,
        query.limit ?? DEFAULT_PAGE_SIZE,
      );
    }
    const [after, field] =
      lastEventId !== undefined && lastEventId !== ''
        ? [lastEventId, 'Last-Event-ID']
        : [query.after ?? null, 'after'];
    await this.stream(caller, filter, after, field, request, reply);
    return undefined;
  }

  private async stream(
    caller: Caller,
    filter: ReturnType<typeof filterFromQuery>,
    after: string | null,
    field: string,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<void> {
    const out = reply.raw;
    const limit = this.config.eventsClientBufferBytes;
    let open = true;
    /** Ends the stream; a slow reader's is dropped, since what it was not sent would never drain. */
    const end = (cut = false): void => {
      if (!open) return;
      open = false;
      clearInterval(heartbeat);
      subscription?.close();
      if (cut) out.destroy();
      else out.end();
    };
    const write = (text: string): void => {
      if (!open) return;
      out.write(text);
      // A slow reader is cut off, not buffered without limit: it resumes from its last id.
      if (out.writableLength > limit) end(true);
    };
    const sink = async (events: GatewayEvent[]): Promise<void> => {
      write(events.map(frame).join(''));
      // While catching up from a cursor, wait for the client to take what it was given.
      if (open && out.writableLength > limit / 2) {
        await new Promise<void>((resolve) => {
          out.once('drain', resolve);
          out.once('close', resolve);
        });
      }
    };
    // Refusals (a bad or expired cursor) are answered as problems, before the stream starts.
    if (after !== null) await this.events.checkCursor(after, field);
    reply.hijack();
    out.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
      'x-request-id': caller.requestId,
    });
    out.write(`retry: ${SSE_RETRY_MS}\n: connected\n\n`);
    const heartbeat = setInterval(
      () => write(': heartbeat\n\n'),
      this.config.eventsHeartbeatSeconds * 1000,
    );
    heartbeat.unref();
    let subscription: FeedSubscription | null = null;
    try {
      subscription = await this.events.follow(caller, filter, after, sink, () => end());
    } catch {
      end();
      return;
    }
    if (!open) subscription.close();
    request.raw.once('close', () => end());
    out.once('close', () => end());
  }
}

function wantsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept);
}

/** One event as the SSE wire carries it. JSON has no raw newline, so `data:` is one line. */
function frame(e: GatewayEvent): string {
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
}
