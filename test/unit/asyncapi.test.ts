/**
 * openapi/asyncapi.yaml: committed as the generator writes it from the
 * event declarations (a stale file fails here: run `npm run openapi`), a
 * valid AsyncAPI 3 document by @asyncapi/parser, and describing every event
 * type on every channel that carries events.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import {
  DiagnosticSeverity,
  Parser,
  type AsyncAPIDocumentInterface,
  type SchemaInterface,
} from '@asyncapi/parser';
import { WEBHOOK_HEADERS } from '#src/events/event-schema.js';
import { EVENT_TYPES, type EventTypeDeclaration } from '#src/events/event-types.js';
import {
  ASYNCAPI_PATH,
  buildAsyncApiDocument,
  serializeAsyncApiDocument,
} from '#src/openapi/asyncapi-document.js';
import { packageVersion } from '#src/openapi/openapi-document.js';
import { toYaml } from '#src/openapi/yaml.js';

// dist/test/unit/ → repository root
const committed = readFileSync(new URL(`../../../${ASYNCAPI_PATH}`, import.meta.url), 'utf8');

/** Parses with @asyncapi/parser; the errors and warnings as lines, and the data it read. */
async function parse(text: string) {
  const output = await new Parser().parse(text);
  const lines = (severity: DiagnosticSeverity) =>
    output.diagnostics
      .filter((d) => d.severity === severity)
      .map((d) => `${d.code} at ${d.path.join('.')}: ${d.message}`);
  return {
    document: output.document,
    errors: lines(DiagnosticSeverity.Error),
    warnings: lines(DiagnosticSeverity.Warning),
    data: output.extras?.document.data as unknown,
  };
}

describe('AsyncAPI document', () => {
  let document: AsyncAPIDocumentInterface;

  before(async () => {
    const parsed = await parse(committed);
    assert.ok(parsed.document, `${ASYNCAPI_PATH} does not parse: ${parsed.errors.join('\n')}`);
    document = parsed.document;
  });

  it(`${ASYNCAPI_PATH} is what the generator writes from the declarations`, () => {
    assert.equal(
      serializeAsyncApiDocument(buildAsyncApiDocument()),
      committed,
      `${ASYNCAPI_PATH} is out of date: run \`npm run openapi\` and commit the result`,
    );
  });

  it('is a valid AsyncAPI 3 document, read back as the value it was written from', async () => {
    const { errors, warnings, data } = await parse(committed);
    assert.deepEqual(
      errors,
      [],
      `@asyncapi/parser reports ${errors.length} errors and ${warnings.length} warnings:\n` +
        [...errors, ...warnings].join('\n'),
    );
    // The YAML emitter round-trips: the parser read exactly the generated value.
    assert.deepStrictEqual(data, buildAsyncApiDocument());
    assert.equal(document.version(), '3.0.0');
    assert.equal(document.info().version(), packageVersion());
  });

  it('has a message for every event type on the stream, GraphQL and webhooks', () => {
    for (const channelId of ['events', 'graphql', 'webhook']) {
      const channel = document.channels().get(channelId);
      assert.ok(channel, channelId);
      for (const declaration of EVENT_TYPES as readonly EventTypeDeclaration[]) {
        const message = channel.messages().get(declaration.type);
        const where = `${channelId} ${declaration.type}`;
        assert.ok(message, `${where} has a message`);
        assert.equal(message.name(), declaration.type, where);
        assert.equal(message.summary(), declaration.summary, where);
        const refinement: Record<string, SchemaInterface> | undefined = message
          .payload()
          ?.allOf()?.[1]
          ?.properties();
        assert.equal(refinement?.type?.const(), declaration.type, where);
        assert.deepEqual(
          refinement?.detail?.enum(),
          // A reconciled lifecycle event has no detail: null is among the values.
          'details' in declaration && declaration.details
            ? [...declaration.details, null]
            : undefined,
          where,
        );
        const headers: string[] = Object.keys(message.headers()?.properties() ?? {});
        assert.deepEqual(
          headers,
          channelId === 'webhook' ? Object.values(WEBHOOK_HEADERS) : [],
          `${where}: the Standard Webhooks headers on webhook deliveries only`,
        );
      }
    }
    // Each event channel's operation sends every type.
    for (const [operationId, action, count] of [
      ['sendEventStream', 'send', EVENT_TYPES.length + 1],
      ['sendEventPages', 'send', 2],
      ['receiveGraphqlSubscribe', 'receive', 1],
      ['sendGraphqlEvents', 'send', EVENT_TYPES.length],
      ['sendGraphqlJob', 'send', 1],
      ['sendWebhookDelivery', 'send', EVENT_TYPES.length],
    ] as const) {
      const operation = document.operations().get(operationId);
      assert.ok(operation, operationId);
      assert.equal(operation.action(), action, operationId);
      assert.equal(operation.messages().length, count, operationId);
    }
  });

  it('writes YAML that reads back as the same value, whatever the strings hold', async () => {
    const strings = [
      '',
      ' leading space',
      'trailing space ',
      'yes',
      'No',
      'null',
      '~',
      '1.0',
      '0x1f',
      '3.0.0',
      '-1',
      '- item',
      'a: b',
      'a #comment',
      '#not a comment',
      "it's",
      'say "hi"',
      'back\\slash',
      'tab\there',
      'two\nlines',
      'ends with a newline\n',
      '\nstarts with one',
      'indented\n  second line\n\nafter a blank one',
      '  indented first\nsecond',
      `${'long '.repeat(20)}: with a colon`,
      'unicode … → é ✓',
      'control \u0001 and \u2028 and \u0085',
      '@at',
      '`code`',
      '* star',
      '& amp',
      '! bang',
      '{brace}',
      '[bracket]',
      '%percent',
      '|pipe',
      '>fold',
      '?question',
      '/v1/events',
      '$ref',
    ];
    const value = {
      asyncapi: '3.0.0',
      info: {
        title: 'round trip',
        version: '1.0.0',
        'x-strings': strings,
        // ($ref as a key is a reference to the parser: it is among the strings only.)
        'x-keys': Object.fromEntries(strings.filter((s) => s !== '$ref').map((s, i) => [s, i])),
        'x-nested': [[1, [2, []]], { a: {}, b: [{ c: null, d: true, e: -1.5 }] }, []],
      },
      channels: {},
      operations: {},
    };
    const { errors, data } = await parse(toYaml(value));
    assert.deepEqual(errors, []);
    assert.deepStrictEqual(data, value);
  });
});
