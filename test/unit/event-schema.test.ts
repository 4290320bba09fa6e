/**
 * The declared event schema (src/events/event-schema.ts) against the events
 * the code builds: every key newEvent() gives is a required property and
 * nothing else is, every property says what it is, events of every type
 * conform, and the schema refuses what breaks the contract. (The compiler
 * ties the schema's keys to GatewayEvent's; this ties it to the values.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newEvent, type GatewayEvent, type JobEventPart } from '#src/events/event.js';
import { GATEWAY_EVENT_SCHEMA, type JsonSchema } from '#src/events/event-schema.js';
import { EVENT_TYPES, type EventType, type EventTypeDeclaration } from '#src/events/event-types.js';
import { eventSchemaErrors, schemaErrors } from '../support/json-schema.js';

const JOB: JobEventPart = {
  id: '7c0bd2a4-5c47-4c1b-9f4e-1b1f3b0c9a11',
  type: 'block.commit',
  state: 'running',
  previousState: 'queued',
  progress: { cur: 1048576, end: 4194304, percent: 25 },
  error: null,
  result: null,
  requestedBy: 'admin',
  disk: 'vda',
  pool: null,
};

/** A plausible event of each type, as the publishers build them. */
function sample(type: EventType): GatewayEvent {
  const declaration: EventTypeDeclaration = EVENT_TYPES.find((d) => d.type === type)!;
  const domain = { uuid: '4b8e1f0e-7d1a-4a63-9a0e-2f3f0f6c1d22', name: 'vm1' };
  const base = { id: '1796204112225-3' };
  switch (declaration.source) {
    case 'domain':
      return {
        ...base,
        ...newEvent(type, 'local', {
          domain,
          detail: declaration.details?.[0] ?? null,
          data: type === 'domain.device-added' ? { alias: 'virtio-disk1' } : null,
        }),
      };
    case 'block-job':
      return {
        ...base,
        ...newEvent(type, 'local', {
          domain,
          blockJob: { disk: 'vda', type: 'active-commit', status: 'ready', jobId: JOB.id },
        }),
      };
    case 'job':
      return { ...base, ...newEvent(type, 'local', { domain, job: JOB }) };
    case 'host':
      return { ...base, ...newEvent(type, 'local', { reconciled: false }) };
    case 'webhook':
      return { ...base, ...newEvent(type, null, { data: { webhookId: 'w1', reason: 'gone' } }) };
    case 'gateway':
      return { ...base, ...newEvent(type, null, { data: { detectedAt: base.id } }) };
  }
}

/** Every schema under `schema` that is a property, with its path. */
function properties(schema: JsonSchema, path = '$'): [string, JsonSchema][] {
  const found: [string, JsonSchema][] = [];
  for (const [key, s] of Object.entries(schema.properties ?? {})) {
    found.push([`${path}.${key}`, s], ...properties(s, `${path}.${key}`));
  }
  for (const s of [...(schema.oneOf ?? []), ...(schema.allOf ?? [])]) {
    found.push(...properties(s, path));
  }
  if (schema.items) found.push(...properties(schema.items, `${path}[]`));
  return found;
}

describe('event schema', () => {
  it('requires exactly the keys every event has', () => {
    const keys = ['id', ...Object.keys(newEvent('host.reconnected', 'local'))].sort();
    assert.deepEqual([...(GATEWAY_EVENT_SCHEMA.required ?? [])].sort(), keys);
    assert.deepEqual(Object.keys(GATEWAY_EVENT_SCHEMA.properties ?? {}).sort(), keys);
    assert.equal(GATEWAY_EVENT_SCHEMA.additionalProperties, false);
  });

  it('describes every property, nested ones too', () => {
    const all = properties(GATEWAY_EVENT_SCHEMA);
    assert.ok(all.length > 30, `${all.length} properties`);
    const undescribed = all.filter(([, s]) => !s.description).map(([path]) => path);
    assert.deepEqual(undescribed, []);
  });

  it("takes an event of every type, and its type's enum is the vocabulary", () => {
    assert.deepEqual(
      GATEWAY_EVENT_SCHEMA.properties?.type?.enum,
      EVENT_TYPES.map((d) => d.type),
    );
    for (const { type } of EVENT_TYPES) {
      assert.deepEqual(eventSchemaErrors(sample(type)), [], type);
    }
  });

  it('refuses what breaks the contract, saying where', () => {
    const started = sample('domain.started');
    const cases: [string, unknown, RegExp][] = [
      ['an unknown type', { ...started, type: 'domain.exploded' }, /\$\.type: .* is none of/],
      ['a missing key', (({ data: _, ...rest }) => rest)(started), /'data' is missing/],
      ['an extra key', { ...started, extra: 1 }, /'extra' is not allowed/],
      ['no cursor', { ...started, id: 'abc' }, /\$\.id: 'abc' does not match/],
      ['no time', { ...started, time: 'yesterday' }, /'yesterday' is no date-time/],
      ['a detail of another type', { ...started, detail: 'destroyed' }, /\$\.detail:/],
      ['a detail that is no name', { ...started, detail: 2 }, /\$\.detail:/],
      [
        'a detail where none applies',
        { ...sample('domain.rebooted'), detail: 'booted' },
        /\$\.detail: "booted" is not null/,
      ],
      ['a job event without its job', { ...sample('job.progress'), job: null }, /\$\.job: null/],
      [
        'a block-job event without its block job',
        { ...sample('block-job.ready'), blockJob: null },
        /\$\.blockJob: null/,
      ],
      [
        'an unknown block-job status',
        {
          ...sample('block-job.failed'),
          blockJob: { disk: 'vda', type: 'commit', status: 'exploded', jobId: null },
        },
        /\$\.blockJob\.status: "exploded" is none of/,
      ],
      [
        'a progress over 100 %',
        { ...sample('job.progress'), job: { ...JOB, progress: { cur: 2, end: 1, percent: 200 } } },
        /\$\.job\.progress\.percent: 200 > 100/,
      ],
      ['a domain without a name', { ...started, domain: { uuid: null } }, /'name' is missing/],
      ['reconciled as a string', { ...started, reconciled: 'no' }, /\$\.reconciled: "no" is not/],
    ];
    for (const [what, event, message] of cases) {
      const errors = eventSchemaErrors(event);
      assert.ok(errors.length > 0, `${what}: refused`);
      assert.match(errors.join('\n'), message, what);
    }
  });

  it('knows the keywords it checks, and fails on one it does not', () => {
    assert.deepEqual(schemaErrors({ type: 'integer', minimum: 1 }, 2), []);
    assert.deepEqual(schemaErrors({ type: 'integer' }, 1.5), ['$: 1.5 is not integer']);
    assert.throws(
      () => schemaErrors({ maxLength: 3 } as unknown as JsonSchema, 'abcd'),
      /does not know 'maxLength'/,
    );
  });
});
