import { ErrorCode } from '../common/errors/app-error.js';
import { describeCode } from '../common/errors/problem-details.js';
import { CONFIG_DEFAULTS } from '../config/config.js';
import {
  eventPageSchema,
  eventTypeSchema,
  GATEWAY_EVENT_SCHEMA,
  WEBHOOK_HEADERS_SCHEMA,
  type JsonSchema,
} from '../events/event-schema.js';
import { EVENT_TYPES, type EventTypeDeclaration } from '../events/event-types.js';
import { packageVersion } from './openapi-document.js';
import { toYaml } from './yaml.js';

/** The committed AsyncAPI document, relative to the repository root. */
export const ASYNCAPI_PATH = 'openapi/asyncapi.yaml';

const HEADER =
  "# The AsyncAPI 3 document of virtgate's events, generated from src/events/ (the vocabulary\n" +
  '# and the event schema) by `npm run openapi`: do not edit. A test fails when it is stale.\n';

const EVENTS_PATH = '/v1/events';
const GRAPHQL_PATH = '/graphql';

type Declaration = EventTypeDeclaration;
const DECLARATIONS: readonly Declaration[] = EVENT_TYPES;

const ref = (path: string): { $ref: string } => ({ $ref: path });
const schemaRef = (name: string) => ref(`#/components/schemas/${name}`);

const d = CONFIG_DEFAULTS;
const CURSOR_EXPIRED = describeCode(ErrorCode.CURSOR_EXPIRED);

const SOURCES: Record<Declaration['source'], string> = {
  domain: "a libvirt domain event, from the host's event registration",
  'block-job': "libvirt's block-job event (BLOCK_JOB_2), correlated to the gateway job by disk",
  job: "the gateway job's record, appended in the same step as the change",
  host: "the host's event connection, watched by the worker that holds the host",
  webhook: 'the webhook dispatcher',
  gateway: "the gateway's own state: the loss of its Redis data, and its recovery",
};

const INFO_DESCRIPTION = `What happens on the gateway's hosts and to its jobs, as events: libvirt's domain and block-job events, gateway job state changes and progress, host connections, webhooks disabled. Every event is appended once to one stream, and delivered on three channels: server-sent events and JSON pages at \`${EVENTS_PATH}\`, GraphQL subscriptions over graphql-ws at \`${GRAPHQL_PATH}\`, and signed webhooks. This document describes the gateway: its \`send\` operations are what it sends, its \`receive\` operations what it takes.

**One cursor.** An event's \`id\` (\`<ms>-<n>\`, increasing) is its place in the stream, the same on every channel. Give it back to resume after it: \`Last-Event-ID\` or \`?after=\` on ${EVENTS_PATH}, \`after\` on the GraphQL subscription; a REST page's ids resume a subscription and back.

**Retention.** The stream keeps the last EVENTS_RETENTION_MAX_EVENTS events (default ${d.EVENTS_RETENTION_MAX_EVENTS}) for at most EVENTS_RETENTION_HOURS (default ${d.EVENTS_RETENTION_HOURS}). A cursor older than what is kept (or from a stream that was reset) is refused with ${CURSOR_EXPIRED.status} and code \`${ErrorCode.CURSOR_EXPIRED}\` on the stream and the pages (a GraphQL error with that code on a subscription), naming the oldest retained id (\`oldestEventId\`): list again, then resume from there. A client never silently misses events.

**At least once.** An event may arrive more than once (a reconnect from an older cursor, a webhook delivery retried); every delivery of one event carries its \`id\`: deduplicate by it. When the worker holding a host dies or loses it, another takes the host over within EVENTS_LEASE_MS (default ${d.EVENTS_LEASE_MS} ms); what changed meanwhile comes as events marked \`reconciled\`, and while a host's connection is down the stream says so (\`host.disconnected\` … \`host.reconnected\`).

**One filter language**, applied on the server: hosts, domains (name or UUID), types (exact, or wildcards \`*\`, \`domain.*\`, \`block-job.*\`), jobs (a job's own events and the block-job events correlated to it). Each list given narrows the events to those matching one of its entries; a list left out matches all. As query parameters: \`host\`, \`domain\`, \`type\`, \`job\`, comma-separated or repeated; in GraphQL: \`filter: { hosts, domains, types, jobs }\`; a webhook has its own filter.

**Scope.** A caller sees the events it may see by the scope rule of every resource: an unscoped token all; a scoped one the events of the domains (or, for storage jobs, pools) in its scope on its hosts, its hosts' own events, and the jobs it asked for. Job progress comes at most once per EVENTS_PROGRESS_INTERVAL_MS (default ${d.EVENTS_PROGRESS_INTERVAL_MS} ms) per job.`;

const FILTER_QUERY: Record<string, JsonSchema> = {
  host: { type: 'string', description: 'Host names, comma-separated (or the parameter repeated).' },
  domain: { type: 'string', description: 'Domain names or UUIDs, comma-separated (or repeated).' },
  type: {
    type: 'string',
    description: 'Event types or wildcards (`*`, `block-job.*`), comma-separated (or repeated).',
  },
  job: { type: 'string', description: 'Gateway job ids, comma-separated (or repeated).' },
};

const STREAM_AFTER_QUERY: JsonSchema = {
  type: 'string',
  description:
    'Resume after this event id (exclusive), as `Last-Event-ID` does; left out: from what comes next.',
};
const PAGE_AFTER_QUERY: JsonSchema = {
  type: 'string',
  description: 'The page begins after this event id (exclusive); left out: from the oldest retained.',
};

function messageDescription(declaration: Declaration): string {
  const details =
    declaration.details === undefined
      ? ''
      : `\n\nlibvirt's details (\`detail\`): ${declaration.details.map((x) => `\`${x}\``).join(', ')}.`;
  return `Source: ${SOURCES[declaration.source]}.${details}`;
}

function eventMessage(declaration: Declaration, webhook: boolean) {
  return {
    name: declaration.type,
    title: declaration.type,
    summary: declaration.summary,
    description: messageDescription(declaration),
    contentType: 'application/json',
    ...(webhook ? { headers: schemaRef('WebhookHeaders') } : {}),
    payload: schemaRef(declaration.type),
    tags: [{ name: declaration.source }],
  };
}

/** A channel's messages: one per event type, each the component message `prefix` + type. */
function eventMessagesOf(prefix: string): Record<string, { $ref: string }> {
  return Object.fromEntries(
    DECLARATIONS.map((x) => [x.type, ref(`#/components/messages/${prefix}${x.type}`)]),
  );
}

/** An operation's messages: every event type's message of `channel`. */
function operationEventMessages(channel: string): { $ref: string }[] {
  return DECLARATIONS.map((x) => ref(`#/channels/${channel}/messages/${x.type}`));
}

/** The AsyncAPI 3.0 document of the event channels (committed as ASYNCAPI_PATH, served at /docs/asyncapi.yaml). */
export function buildAsyncApiDocument(): Record<string, unknown> {
  const gatewayHost = {
    host: {
      default: `localhost:${d.PORT}`,
      description:
        "The gateway's address (`host:port`), as it is deployed (behind a TLS proxy: https, wss).",
    },
  };
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'virtgate events',
      version: packageVersion(),
      description: INFO_DESCRIPTION,
      license: { name: 'Apache-2.0' },
    },
    defaultContentType: 'application/json',
    servers: {
      gateway: {
        host: '{host}',
        protocol: 'http',
        description:
          'The gateway (the api role): REST, server-sent events and JSON pages. Every request needs `Authorization: Bearer <token>`.',
        variables: gatewayHost,
        security: [ref('#/components/securitySchemes/bearer')],
      },
      gatewayWebSocket: {
        host: '{host}',
        protocol: 'ws',
        description: `The gateway's GraphQL endpoint ${GRAPHQL_PATH}, as a WebSocket speaking the graphql-ws protocol (\`graphql-transport-ws\`), authenticated with the same bearer token as every request.`,
        variables: gatewayHost,
        security: [ref('#/components/securitySchemes/bearer')],
      },
      webhookReceiver: {
        host: '{host}',
        protocol: 'https',
        description:
          "A webhook's receiver, at the URL its webhook (or a job's `callbackUrl`) gives: http or https, no credentials in the URL; the gateway checks the name's every address against its allow and deny lists, connects to the address it checked and follows no redirect.",
        variables: {
          host: {
            default: 'localhost:9000',
            description: "The receiver's address, from the webhook's URL.",
          },
        },
      },
    },
    channels: {
      events: {
        address: EVENTS_PATH,
        title: 'Server-sent events',
        summary: `GET ${EVENTS_PATH} with Accept: text/event-stream.`,
        description: `A \`text/event-stream\` of events, catch-up then live, in order and without gaps. Each event is one frame: \`id:\` its cursor, \`event:\` its type (the message's name), \`data:\` the event as JSON (one line).

Resume with the \`Last-Event-ID\` header (a browser's EventSource sends it when it reconnects) or \`?after=<id>\`; without either, the stream begins with what comes next. An expired cursor is answered ${CURSOR_EXPIRED.status} \`${ErrorCode.CURSOR_EXPIRED}\` (application/problem+json) before the stream begins.

An idle stream gets a comment line (\`:\` …) every EVENTS_HEARTBEAT_SECONDS (default ${d.EVENTS_HEARTBEAT_SECONDS}). A client that lets more than EVENTS_CLIENT_BUFFER_BYTES (default ${d.EVENTS_CLIENT_BUFFER_BYTES}) pile up unsent is cut off, not buffered without limit: reconnect with \`Last-Event-ID\` to resume.`,
        servers: [ref('#/servers/gateway')],
        messages: { ...eventMessagesOf(''), cursorExpired: ref('#/components/messages/cursorExpired') },
      },
      eventPages: {
        address: EVENTS_PATH,
        title: 'JSON pages',
        summary: `GET ${EVENTS_PATH}?after=…&limit=… with Accept: application/json.`,
        description: `For batch consumers: a page of the events after \`after\`, filtered as the stream is. Keep \`next\` and ask again from it. An expired cursor is ${CURSOR_EXPIRED.status} \`${ErrorCode.CURSOR_EXPIRED}\`, as on the stream. The request and its bounds are in openapi.json.`,
        servers: [ref('#/servers/gateway')],
        messages: {
          eventPage: ref('#/components/messages/eventPage'),
          cursorExpired: ref('#/components/messages/cursorExpired'),
        },
      },
      graphql: {
        address: GRAPHQL_PATH,
        title: 'GraphQL subscriptions',
        summary: 'graphql-ws at /graphql: events(filter, after) and job(id).',
        description: `Subscriptions over graphql-ws (Mercurius). \`subscription { events(filter: { hosts, domains, types, jobs }, after: "<id>") { … } }\` gives the events, catch-up then live, each as a \`next\` message's \`payload.data.events\` with the fields asked for of the same event. \`subscription { job(id: "<id>") { … } }\` gives the job's state and progress until it ends. The types are in schema.graphql; every api process reads the one stream, so a subscriber on any process sees every event.`,
        servers: [ref('#/servers/gatewayWebSocket')],
        messages: {
          subscribe: ref('#/components/messages/graphqlSubscribe'),
          ...eventMessagesOf(''),
          job: ref('#/components/messages/graphqlJob'),
        },
      },
      webhook: {
        address: null,
        title: 'Webhook deliveries',
        summary: "POST to a webhook's URL, signed as Standard Webhooks specifies.",
        description: `Each event a webhook's filter (and its creator's scope) lets through is POSTed to its URL as JSON (the event itself), with the Standard Webhooks headers; a job's \`callbackUrl\` gets the same delivery when the job ends. Any 2xx answer is success; anything else (3xx included) and network errors are failures, retried with exponential backoff and jitter, honouring \`Retry-After\` on 429 and 503. A 410 answer disables the webhook at once, and so does a run of failures (with a \`webhook.disabled\` event). Every attempt is in the webhook's delivery log (\`/v1/webhooks/{id}/deliveries\`).`,
        servers: [ref('#/servers/webhookReceiver')],
        messages: eventMessagesOf('webhookDelivery.'),
      },
    },
    operations: {
      sendEventStream: {
        action: 'send',
        channel: ref('#/channels/events'),
        title: 'Stream events',
        summary: 'The gateway sends the events a client asked for as server-sent events.',
        bindings: {
          http: {
            method: 'GET',
            query: {
              type: 'object',
              properties: { after: STREAM_AFTER_QUERY, ...FILTER_QUERY },
            },
            bindingVersion: '0.3.0',
          },
        },
        messages: [...operationEventMessages('events'), ref('#/channels/events/messages/cursorExpired')],
      },
      sendEventPages: {
        action: 'send',
        channel: ref('#/channels/eventPages'),
        title: 'Page through events',
        summary: 'The gateway answers a page of events.',
        bindings: {
          http: {
            method: 'GET',
            query: {
              type: 'object',
              properties: {
                after: PAGE_AFTER_QUERY,
                limit: { type: 'integer', minimum: 1, description: 'Most events in the page.' },
                ...FILTER_QUERY,
              },
            },
            bindingVersion: '0.3.0',
          },
        },
        messages: [
          ref('#/channels/eventPages/messages/eventPage'),
          ref('#/channels/eventPages/messages/cursorExpired'),
        ],
      },
      receiveGraphqlSubscribe: {
        action: 'receive',
        channel: ref('#/channels/graphql'),
        title: 'Subscribe',
        summary: 'The gateway takes a subscription: events(filter, after) or job(id).',
        messages: [ref('#/channels/graphql/messages/subscribe')],
      },
      sendGraphqlEvents: {
        action: 'send',
        channel: ref('#/channels/graphql'),
        title: 'Events of a subscription',
        summary: 'The gateway sends the events of an events(filter, after) subscription.',
        messages: operationEventMessages('graphql'),
      },
      sendGraphqlJob: {
        action: 'send',
        channel: ref('#/channels/graphql'),
        title: 'A job of a subscription',
        summary: 'The gateway sends the job of a job(id) subscription at each change.',
        messages: [ref('#/channels/graphql/messages/job')],
      },
      sendWebhookDelivery: {
        action: 'send',
        channel: ref('#/channels/webhook'),
        title: 'Deliver to a webhook',
        summary: "The gateway POSTs an event to a webhook's receiver.",
        bindings: { http: { method: 'POST', bindingVersion: '0.3.0' } },
        messages: operationEventMessages('webhook'),
      },
    },
    components: {
      schemas: {
        GatewayEvent: GATEWAY_EVENT_SCHEMA,
        ...Object.fromEntries(
          DECLARATIONS.map((x) => [
            x.type,
            { allOf: [schemaRef('GatewayEvent'), eventTypeSchema(x)] } satisfies JsonSchema,
          ]),
        ),
        EventPage: eventPageSchema(schemaRef('GatewayEvent')),
        CursorExpired: {
          type: 'object',
          description:
            'An RFC 9457 problem document (ProblemDetails in openapi.json): the cursor is older than what the stream retains, or from a stream that was reset.',
          properties: {
            status: { const: CURSOR_EXPIRED.status, description: 'The HTTP status.' },
            code: { const: ErrorCode.CURSOR_EXPIRED, description: "The gateway's error code." },
            detail: { type: 'string', description: 'What to do: list again, then resume.' },
            oldestEventId: {
              type: ['string', 'null'],
              description: 'The oldest event id retained (null: none): resume from it.',
            },
          },
          required: ['status', 'code', 'oldestEventId'],
        } satisfies JsonSchema,
        WebhookHeaders: WEBHOOK_HEADERS_SCHEMA,
        GraphqlSubscribe: {
          type: 'object',
          description: "graphql-ws's subscribe message.",
          properties: {
            id: { type: 'string', description: "The subscription's id, chosen by the client." },
            type: { const: 'subscribe', description: 'The message type.' },
            payload: {
              type: 'object',
              description: 'The operation.',
              properties: {
                query: {
                  type: 'string',
                  description:
                    'A subscription document: `events(filter, after)` or `job(id)`, with the fields wanted.',
                },
                variables: {
                  type: ['object', 'null'],
                  additionalProperties: true,
                  description: "The document's variables.",
                },
                operationName: { type: ['string', 'null'], description: 'Which operation.' },
              },
              required: ['query'],
            },
          },
          required: ['id', 'type', 'payload'],
        } satisfies JsonSchema,
        GraphqlJob: {
          type: 'object',
          additionalProperties: true,
          description:
            'The fields asked for of the `Job` (schema.graphql), as the `job(id)` query gives them, each time its state or progress changes; the subscription completes after its final state.',
        } satisfies JsonSchema,
      },
      messages: {
        ...Object.fromEntries(DECLARATIONS.map((x) => [x.type, eventMessage(x, false)])),
        ...Object.fromEntries(
          DECLARATIONS.map((x) => [`webhookDelivery.${x.type}`, eventMessage(x, true)]),
        ),
        eventPage: {
          name: 'eventPage',
          title: 'A page of events',
          contentType: 'application/json',
          payload: schemaRef('EventPage'),
        },
        cursorExpired: {
          name: 'cursorExpired',
          title: 'Cursor expired',
          summary: `${CURSOR_EXPIRED.status} ${ErrorCode.CURSOR_EXPIRED}: the cursor is older than what is retained.`,
          contentType: 'application/problem+json',
          payload: schemaRef('CursorExpired'),
          bindings: { http: { statusCode: CURSOR_EXPIRED.status, bindingVersion: '0.3.0' } },
        },
        graphqlSubscribe: {
          name: 'subscribe',
          title: 'Subscribe',
          summary: 'A graphql-ws subscribe message.',
          payload: schemaRef('GraphqlSubscribe'),
        },
        graphqlJob: {
          name: 'job',
          title: 'Job',
          summary: 'The job of a job(id) subscription, at a change.',
          payload: schemaRef('GraphqlJob'),
        },
      },
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API token (vg_…), as every endpoint of the gateway takes it.',
        },
      },
    },
  };
}

/** The document as written to ASYNCAPI_PATH. */
export function serializeAsyncApiDocument(document: Record<string, unknown>): string {
  return `${HEADER}${toYaml(document)}`;
}
