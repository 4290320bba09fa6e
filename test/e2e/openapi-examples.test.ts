/**
 * Every example in the committed openapi/openapi.json conforms to its schema
 * (a schema's own `example`, a parameter's, a header's, a media type's
 * `example` and each of its `examples`, resolved when they are references),
 * checked with Ajv as JSON Schema 2020-12 (OpenAPI 3.1's dialect). And each
 * problem answer shows an example of its own status, not one for all.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { codeForHttpStatus, describeCode } from '#src/common/errors/problem-details.js';
import type { ErrorCode } from '#src/common/errors/app-error.js';
import { OPENAPI_PATH } from '#src/openapi/openapi-document.js';

type Json = Record<string, unknown>;

// CommonJS modules: their classes are their default exports' `default`.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

// dist/test/e2e/ → repository root
const document = JSON.parse(
  readFileSync(new URL(`../../../${OPENAPI_PATH}`, import.meta.url), 'utf8'),
) as Json;

const DOC_ID = 'openapi.json';
const ajv = new Ajv2020({
  strict: true,
  strictTypes: false,
  allErrors: true,
  keywords: [
    // OpenAPI's own schema keywords, which validate nothing.
    'example',
    'discriminator',
    'xml',
    'externalDocs',
    // The document's top level, which is the root of the schema resource.
    ...Object.keys(document).filter((k) => k !== '$id'),
  ],
});
addFormats(ajv);
// The whole document as one schema resource: components refer to each other by `#/components/…`.
ajv.addSchema({ ...document, $id: DOC_ID }, DOC_ID, undefined, false);

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON pointer's segment, escaped and URI-encoded (for a `$ref` fragment). */
function segment(key: string): string {
  return encodeURIComponent(key.replaceAll('~', '~0').replaceAll('/', '~1'));
}

function resolvePointer(ref: string): unknown {
  assert.ok(ref.startsWith('#/'), `only local references: ${ref}`);
  return ref
    .slice(2)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), document);
}

interface Example {
  /** Where the example is, for the message. */
  where: string;
  /** The pointer (segments) of the schema it must conform to. */
  schema: string[];
  value: unknown;
}

const examples: Example[] = [];

/** A schema at `path`: its own example, and those of the schemas inside it. */
function visitSchema(schema: unknown, path: string[]): void {
  if (!isObject(schema)) return;
  if ('example' in schema) {
    examples.push({ where: path.join('/'), schema: path, value: schema.example });
  }
  if (Array.isArray(schema.examples)) {
    schema.examples.forEach((value, i) =>
      examples.push({ where: `${path.join('/')}/examples/${i}`, schema: path, value }),
    );
  }
  for (const key of ['properties', 'patternProperties', '$defs'] as const) {
    if (isObject(schema[key])) {
      for (const [name, sub] of Object.entries(schema[key])) {
        visitSchema(sub, [...path, key, name]);
      }
    }
  }
  for (const key of ['items', 'additionalProperties', 'not', 'contains'] as const) {
    visitSchema(schema[key], [...path, key]);
  }
  for (const key of ['allOf', 'anyOf', 'oneOf', 'prefixItems'] as const) {
    const list = schema[key];
    if (Array.isArray(list)) list.forEach((sub, i) => visitSchema(sub, [...path, key, String(i)]));
  }
}

/** A parameter, header or media type at `path`: its schema, and its example(s) against it. */
function visitHolder(holder: unknown, path: string[]): void {
  if (!isObject(holder) || !('schema' in holder)) return;
  const schemaPath = [...path, 'schema'];
  visitSchema(holder.schema, schemaPath);
  if ('example' in holder) {
    examples.push({
      where: `${path.join('/')}/example`,
      schema: schemaPath,
      value: holder.example,
    });
  }
  if (isObject(holder.examples)) {
    for (const [name, entry] of Object.entries(holder.examples)) {
      const example =
        isObject(entry) && typeof entry.$ref === 'string' ? resolvePointer(entry.$ref) : entry;
      assert.ok(isObject(example) && 'value' in example, `${path.join('/')}/examples/${name}`);
      examples.push({
        where: `${path.join('/')}/examples/${name}`,
        schema: schemaPath,
        value: example.value,
      });
    }
  }
}

function visitHeaders(headers: unknown, path: string[]): void {
  if (!isObject(headers)) return;
  for (const [name, header] of Object.entries(headers)) visitHolder(header, [...path, name]);
}

function visitContent(content: unknown, path: string[]): void {
  if (!isObject(content)) return;
  for (const [type, media] of Object.entries(content)) visitHolder(media, [...path, type]);
}

const components = (document.components ?? {}) as Json;
for (const [name, schema] of Object.entries((components.schemas ?? {}) as Json)) {
  visitSchema(schema, ['components', 'schemas', name]);
}
visitHeaders(components.headers, ['components', 'headers']);
for (const [path, item] of Object.entries(document.paths as Json)) {
  for (const [method, operation] of Object.entries(item as Json)) {
    if (!isObject(operation)) continue;
    const at = ['paths', path, method];
    ((operation.parameters ?? []) as unknown[]).forEach((p, i) =>
      visitHolder(p, [...at, 'parameters', String(i)]),
    );
    if (isObject(operation.requestBody)) {
      visitContent(operation.requestBody.content, [...at, 'requestBody', 'content']);
    }
    for (const [status, response] of Object.entries((operation.responses ?? {}) as Json)) {
      if (!isObject(response)) continue;
      visitContent(response.content, [...at, 'responses', status, 'content']);
      visitHeaders(response.headers, [...at, 'responses', status, 'headers']);
    }
  }
}

describe(`${OPENAPI_PATH} examples`, () => {
  it('every example conforms to its schema', () => {
    // Schemas, parameters, headers, problem and job answers all have some.
    assert.ok(examples.length > 200, `only ${examples.length} examples found`);
    const failures: string[] = [];
    for (const example of examples) {
      const validate = ajv.compile({ $ref: `${DOC_ID}#/${example.schema.map(segment).join('/')}` });
      if (!validate(example.value)) {
        failures.push(
          `${example.where}: ${ajv.errorsText(validate.errors, { dataVar: 'example' })} (${JSON.stringify(example.value)?.slice(0, 200)})`,
        );
      }
    }
    assert.deepEqual(failures, [], `${failures.length} of ${examples.length} examples fail`);
  });

  it('an invalid example fails (the check is not vacuous)', () => {
    const validate = ajv.compile({ $ref: `${DOC_ID}#/components/schemas/ProblemDetails` });
    assert.equal(validate({ type: 'x', title: 'x', status: 404, code: 'NOPE' }), false);
    const job = ajv.compile({ $ref: `${DOC_ID}#/components/schemas/Job` });
    assert.equal(job({ id: 1 }), false);
  });

  it('each problem answer shows an example of its own status and a code of that status', () => {
    const seen = new Map<string, Set<string>>();
    for (const [path, item] of Object.entries(document.paths as Json)) {
      for (const [method, operation] of Object.entries(item as Json)) {
        for (const [status, response] of Object.entries(
          ((operation as Json).responses ?? {}) as Json,
        )) {
          const media = ((response as Json).content as Json | undefined)?.[
            'application/problem+json'
          ] as Json | undefined;
          if (media === undefined) continue;
          const where = `${method.toUpperCase()} ${path} ${status}`;
          const entries = Object.values((media.examples ?? {}) as Json);
          assert.equal(entries.length, 1, `${where}: one example`);
          const entry = entries[0] as Json;
          const example = (
            typeof entry.$ref === 'string' ? resolvePointer(entry.$ref) : entry
          ) as Json;
          const value = example.value as { status: number; code: ErrorCode; errors?: unknown[] };
          assert.equal(value.status, Number(status), where);
          // The code's own status, or the code of an HTTP error raised before any handler
          // (Fastify's: a 415 is UNSUPPORTED, whose own status is 501).
          assert.ok(
            describeCode(value.code).status === Number(status) ||
              codeForHttpStatus(Number(status)) === value.code,
            `${where}: ${value.code}`,
          );
          if (status === '400') assert.ok((value.errors ?? []).length > 0, `${where}: errors[]`);
          if (!seen.has(status)) seen.set(status, new Set());
          seen.get(status)!.add(JSON.stringify(value));
        }
      }
    }
    for (const status of ['400', '401', '403', '404', '409', '422', '429', '500', '503']) {
      assert.ok(seen.has(status), `no ${status} answer documented`);
    }
    const codes = [...seen.values()].flatMap((s) =>
      [...s].map((v) => (JSON.parse(v) as { code: string }).code),
    );
    assert.ok(codes.includes('HOST_UNREACHABLE'), '503 shows HOST_UNREACHABLE');
  });

  it('the job examples are consistent: a completed job has no error, a failed one has no result', () => {
    let jobs = 0;
    for (const example of examples) {
      const value = example.value as Json | null;
      if (!isObject(value) || !('state' in value) || !('error' in value)) continue;
      jobs++;
      if (value.state === 'failed') {
        assert.ok(isObject(value.error), `${example.where}: a failed job has its error`);
      } else {
        assert.equal(
          value.error,
          null,
          `${example.where}: a ${String(value.state)} job has no error`,
        );
      }
      if (value.state === 'queued') assert.equal(value.startedAt, null, example.where);
    }
    assert.ok(jobs >= 3, `${jobs} job examples`);
  });
});
