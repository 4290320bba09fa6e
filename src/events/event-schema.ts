import type { BlockJobEventPart, GatewayEvent, JobEventPart } from './event.js';
import { CURSOR, type EventsPage } from './event-stream.js';
import { EVENT_TYPE_NAMES, type EventTypeDeclaration } from './event-types.js';

/**
 * The JSON Schema (draft-07, as AsyncAPI 3 payloads take it) of GatewayEvent:
 * what every channel delivers, declared once beside the interface and tied to
 * it at compile time (each properties object must name exactly the keys of
 * the part it describes). openapi/asyncapi.yaml is generated from it.
 */

export type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | 'null';

/** The part of JSON Schema the gateway's documents use. */
export interface JsonSchema {
  readonly $ref?: string;
  readonly description?: string;
  readonly type?: JsonType | readonly JsonType[];
  readonly const?: string | number | null;
  readonly enum?: readonly (string | null)[];
  readonly format?: 'date-time' | 'uuid';
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | JsonSchema;
  readonly items?: JsonSchema;
  readonly oneOf?: readonly JsonSchema[];
  readonly allOf?: readonly JsonSchema[];
}

/** One schema per key of T, no key missing and none extra. */
type PropertiesOf<T> = { readonly [K in keyof Required<T>]: JsonSchema };

/** An object whose keys are all always present, and nothing else. */
function object<T>(properties: PropertiesOf<T>, description?: string): JsonSchema {
  return {
    ...(description === undefined ? {} : { description }),
    type: 'object',
    properties,
    required: Object.keys(properties),
    additionalProperties: false,
  };
}

/** A part that is an object or null. */
function nullable(schema: JsonSchema, description: string): JsonSchema {
  return { description, oneOf: [schema, { type: 'null' }] };
}

/** The values of a string union, all of them (the record's keys are checked against the union). */
function valuesOf<T extends string>(all: Record<T, true>): readonly T[] {
  return Object.keys(all) as T[];
}

const BLOCK_JOB_TYPES = valuesOf<BlockJobEventPart['type']>({
  pull: true,
  copy: true,
  commit: true,
  'active-commit': true,
  unknown: true,
});
const BLOCK_JOB_STATUSES = valuesOf<BlockJobEventPart['status']>({
  completed: true,
  failed: true,
  canceled: true,
  ready: true,
  unknown: true,
});

const BLOCK_JOB_SCHEMA = object<BlockJobEventPart>({
  disk: { type: 'string', description: "The disk's target (`vda`)." },
  type: { type: 'string', enum: BLOCK_JOB_TYPES, description: "libvirt's type of the block job." },
  status: {
    type: 'string',
    enum: BLOCK_JOB_STATUSES,
    description: "libvirt's status: `ready` for a mirror that can be pivoted, else how it ended.",
  },
  jobId: {
    type: ['string', 'null'],
    description:
      "The gateway's job on this disk, when it has one (null for a block job started outside the gateway).",
  },
});

type JobProgressPart = NonNullable<JobEventPart['progress']>;
type JobErrorPart = NonNullable<JobEventPart['error']>;

const JOB_SCHEMA = object<JobEventPart>({
  id: { type: 'string', description: "The job's id (as `/v1/jobs/{id}` and `job(id)` take it)." },
  type: { type: 'string', description: "The job's type (`domain.start`, `block.commit`, …)." },
  state: {
    type: 'string',
    description:
      'The state at the change: queued, running, ready, pivoting, completed, failed or canceled.',
  },
  previousState: {
    type: ['string', 'null'],
    description: 'The state before (null when the job was just queued, and in job.progress).',
  },
  progress: nullable(
    object<JobProgressPart>({
      cur: { type: 'number', minimum: 0, description: 'Work done (bytes for block jobs).' },
      end: { type: 'number', minimum: 0, description: 'Work in all, as known now.' },
      percent: { type: 'number', minimum: 0, maximum: 100, description: '`cur` of `end`, in %.' },
    }),
    "The job's progress as last reported (null before any).",
  ),
  error: nullable(
    object<JobErrorPart>({
      code: {
        type: 'string',
        description: "The gateway's error code (NOT_FOUND, INVALID_STATE, HOST_UNREACHABLE…).",
      },
      message: { type: 'string', description: 'What went wrong.' },
      libvirtCode: {
        type: ['string', 'null'],
        description: "libvirt's error name when libvirt refused (VIR_ERR_OPERATION_INVALID…).",
      },
    }),
    'Why the job failed (null unless it failed).',
  ),
  result: {
    type: ['object', 'null'],
    additionalProperties: true,
    description: "The job's result, in the event of its completed state (null before).",
  },
  requestedBy: { type: 'string', description: 'The id of the caller that asked for the job.' },
  disk: { type: ['string', 'null'], description: 'The disk the job works on (null: none).' },
  pool: {
    type: ['string', 'null'],
    description: 'The storage pool of a storage job (null: none).',
  },
});

type DomainPart = NonNullable<GatewayEvent['domain']>;

/** The properties of GatewayEvent: exactly its keys (the compiler checks both ways). */
const GATEWAY_EVENT_PROPERTIES = {
  id: {
    type: 'string',
    pattern: CURSOR.source,
    description:
      "The cursor: the event's stream id (`<ms>-<n>`), increasing. Give it as `Last-Event-ID`, " +
      '`after` or the GraphQL `after` to resume after this event, on any channel. Every delivery ' +
      'of one event carries the same id: deduplicate by it.',
  },
  time: { type: 'string', format: 'date-time', description: 'When the source saw it (ISO 8601).' },
  type: {
    type: 'string',
    enum: EVENT_TYPE_NAMES,
    description: "The event's type, from the gateway's vocabulary (one message per type).",
  },
  host: {
    type: ['string', 'null'],
    description: "The host's name in the gateway (null for an event of no host: webhook.disabled).",
  },
  domain: nullable(
    object<DomainPart>({
      uuid: {
        type: ['string', 'null'],
        format: 'uuid',
        description: "The domain's UUID (null only for a job's domain not yet defined).",
      },
      name: { type: 'string', description: "The domain's name." },
    }),
    'The domain the event is about (null: none).',
  ),
  detail: {
    type: ['string', 'null'],
    description:
      "libvirt's detail of a lifecycle event (`booted`, `destroyed`, …); null otherwise.",
  },
  reconciled: {
    type: 'boolean',
    description:
      'True for an event produced by reconciliation: the change happened while no worker listened ' +
      "to the host (a lost connection, a worker taken over) and was found by comparing the host's " +
      'state with what was last announced.',
  },
  blockJob: nullable(
    BLOCK_JOB_SCHEMA,
    'For block-job events: the block job as libvirt reports it, with the gateway job that runs it.',
  ),
  job: nullable(
    JOB_SCHEMA,
    "For job events: the gateway job's record at the change (null for other events).",
  ),
  data: {
    type: ['object', 'null'],
    additionalProperties: true,
    description:
      "What the type carries beyond the above (a device alias, a tray's state, …); null when nothing.",
  },
} satisfies Record<keyof GatewayEvent, JsonSchema>;

/** One event, as every channel delivers it. */
export const GATEWAY_EVENT_SCHEMA: JsonSchema = object<GatewayEvent>(
  GATEWAY_EVENT_PROPERTIES,
  'One event, as every channel delivers it (SSE `data:`, JSON pages, GraphQL subscriptions, ' +
    'webhook bodies). Every key is always present; those that do not apply to the type are null.',
);

/**
 * What one type adds to GATEWAY_EVENT_SCHEMA (to be met together with it):
 * the type itself; for lifecycle types, libvirt's details, and for the
 * others no detail; the job of a job event and the block job of a block-job
 * event are never null.
 */
export function eventTypeSchema(declaration: EventTypeDeclaration): JsonSchema {
  const properties: Partial<Record<keyof GatewayEvent, JsonSchema>> = {
    type: { const: declaration.type, description: `Always \`${declaration.type}\`.` },
    detail:
      declaration.details === undefined
        ? { type: 'null', description: 'Always null: this is no lifecycle event.' }
        : {
            type: ['string', 'null'],
            enum: [...declaration.details, null],
            description:
              "libvirt's detail of the lifecycle event; null when reconciled (the change was found, not heard) " +
              'or when libvirt sent a detail newer than this list (its number is then `data.detailCode`).',
          },
  };
  if (declaration.source === 'job') {
    properties.job = { type: 'object', description: "The job's record at the change." };
  }
  if (declaration.source === 'block-job') {
    properties.blockJob = { type: 'object', description: 'The block job.' };
  }
  return { type: 'object', properties };
}

/** A page of events (JSON pages), its events described by `event` (a schema or a reference). */
export function eventPageSchema(event: JsonSchema): JsonSchema {
  return object<EventsPage>(
    {
      items: {
        type: 'array',
        items: event,
        description: 'The events after `after` that the filter and scope let through, in order.',
      },
      nextCursor: {
        type: ['string', 'null'],
        description:
          'Where the next page goes on from (give it as `after`): the id of the last entry read, ' +
          'matching or not, or the `after` given when nothing was read (null: the stream holds none).',
      },
      more: {
        type: 'boolean',
        description:
          'Whether entries after `nextCursor` were there when the page was read (false: caught up; ask again later).',
      },
      scopeFiltered: {
        type: 'boolean',
        description: "Whether events out of the caller's scope were left out.",
      },
    },
    'A page of events. A page scans a bounded number of entries, so a narrow filter may answer ' +
      'with fewer events than `limit` and `more` set: go on from `nextCursor`.',
  );
}

/**
 * The Standard Webhooks headers of every webhook delivery and job callback
 * (https://www.standardwebhooks.com), by name.
 */
export const WEBHOOK_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

export const WEBHOOK_HEADERS_SCHEMA: JsonSchema = {
  type: 'object',
  description:
    "The Standard Webhooks headers: a receiver verifies a delivery with the specification's own libraries (the `standardwebhooks` npm package, for one) and the webhook's secret (`whsec_…`).",
  properties: {
    [WEBHOOK_HEADERS.id]: {
      type: 'string',
      description:
        "The delivery's id: the same across the retries of one delivery (deduplicate on it, or on the event's `id`).",
    },
    [WEBHOOK_HEADERS.timestamp]: {
      type: 'string',
      pattern: '^[0-9]+$',
      description:
        'When this attempt was made, in Unix seconds (a receiver refuses one too far from its clock).',
    },
    [WEBHOOK_HEADERS.signature]: {
      type: 'string',
      pattern: '^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$',
      description:
        '`v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">` with the secret\'s ' +
        "key; two of them, space-separated, while a rotated secret's grace period runs (one per " +
        'secret): a receiver accepts the delivery when one verifies.',
    },
  },
  required: Object.values(WEBHOOK_HEADERS),
};
