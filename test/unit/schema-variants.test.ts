/**
 * Schema variants (src/openapi/schema-variants.ts): a schema split into the
 * oneOf of its variants by a discriminator, and the committed spec's Job split
 * by job type, each with its type's result.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { OpenAPIObject, SchemaObject } from '@nestjs/swagger';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { JOB_TYPES } from '#jobs/job-types.js';
import { SchemaVariants } from '#src/openapi/schema-variants.js';

function documentWith(schemas: Record<string, SchemaObject>): OpenAPIObject {
  return {
    openapi: '3.1.0',
    info: { title: 't', version: '1' },
    paths: {},
    components: { schemas },
  };
}

const shape = (kinds: string[]): SchemaObject => ({
  type: 'object',
  properties: {
    kind: { type: 'string', enum: kinds },
    id: { type: 'string' },
    body: { type: 'object', additionalProperties: true },
  },
  required: ['kind', 'id', 'body'],
});

describe('schema variants', () => {
  it('replaces a schema by the oneOf of its variants, each with its own property schemas', () => {
    const variants = new SchemaVariants();
    for (const kind of ['circle', 'square']) {
      variants.declare('Shape', 'kind', {
        value: kind,
        name: `${kind}Shape`,
        description: kind,
        properties: {
          body: {
            schema: {
              type: 'object',
              properties: { [kind === 'circle' ? 'radius' : 'side']: { type: 'number' } },
              required: [kind === 'circle' ? 'radius' : 'side'],
            },
          },
        },
      });
    }
    const document = documentWith({ Shape: shape(['circle', 'square']) });
    variants.apply(document);
    const schemas = document.components!.schemas!;
    assert.deepEqual(schemas.Shape, {
      oneOf: [
        { $ref: '#/components/schemas/circleShape' },
        { $ref: '#/components/schemas/squareShape' },
      ],
      discriminator: {
        propertyName: 'kind',
        mapping: {
          circle: '#/components/schemas/circleShape',
          square: '#/components/schemas/squareShape',
        },
      },
    });
    const ajv = new Ajv2020({ strict: false });
    ajv.addSchema({ $id: 'doc', components: document.components });
    const valid = ajv.compile({ $ref: 'doc#/components/schemas/Shape' });
    assert.equal(valid({ kind: 'circle', id: 'a', body: { radius: 1 } }), true);
    assert.equal(valid({ kind: 'circle', id: 'a', body: { side: 1 } }), false, "a square's body");
    assert.equal(valid({ kind: 'square', id: 'a', body: { side: 1 } }), true);
    assert.equal(valid({ kind: 'oval', id: 'a', body: {} }), false);
  });

  it("refuses a split whose variants do not cover the discriminator's values exactly", () => {
    const variants = new SchemaVariants();
    variants.declare('Partial', 'kind', {
      value: 'circle',
      name: 'PartialCircle',
      description: 'circle',
      properties: {},
    });
    assert.throws(
      () => variants.apply(documentWith({ Partial: shape(['circle', 'square']) })),
      /without a variant: square/,
    );
  });

  it('refuses a second variant for one value', () => {
    const variants = new SchemaVariants();
    variants.declare('Twice', 'kind', {
      value: 'a',
      name: 'A',
      description: 'a',
      properties: {},
    });
    assert.throws(
      () =>
        variants.declare('Twice', 'kind', {
          value: 'a',
          name: 'A2',
          description: 'a',
          properties: {},
        }),
      /a second variant/,
    );
  });

  it('splits the committed Job by type, each variant with its own result schema', () => {
    const spec = JSON.parse(
      readFileSync(new URL('../../../openapi/openapi.json', import.meta.url), 'utf8'),
    ) as OpenAPIObject;
    const schemas = spec.components!.schemas! as Record<string, SchemaObject>;
    const job = schemas.Job!;
    assert.equal(job.discriminator?.propertyName, 'type');
    const mapping = job.discriminator!.mapping!;
    assert.deepEqual(Object.keys(mapping).sort(), Object.keys(JOB_TYPES).sort());
    const results = new Set<string>();
    for (const [type, ref] of Object.entries(mapping)) {
      const variant = schemas[ref.replace('#/components/schemas/', '')]!;
      assert.deepEqual((variant.properties!.type as SchemaObject).enum, [type]);
      const result = variant.properties!.result as SchemaObject;
      const target = (result.anyOf?.[0] as { $ref: string } | undefined)?.$ref;
      assert.ok(target, `${type}: its result is a schema of its own, or null`);
      const name = target.replace('#/components/schemas/', '');
      assert.ok(schemas[name]?.properties, `${type}: ${name} is declared with its properties`);
      assert.ok(!results.has(name), `${type}: ${name} is the result of one job type only`);
      results.add(name);
    }
  });
});
