import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { generateOpenApiDocument } from '#src/api-contract.js';
import { OPENAPI_PATH, serializeOpenApiDocument } from '#src/openapi/openapi-document.js';

describe('OpenAPI spec', () => {
  it(`${OPENAPI_PATH} matches the controllers`, async () => {
    const generated = JSON.parse(
      serializeOpenApiDocument(await generateOpenApiDocument()),
    ) as unknown;
    // dist/test/e2e/ → repository root
    const committed = JSON.parse(
      readFileSync(new URL(`../../../${OPENAPI_PATH}`, import.meta.url), 'utf8'),
    ) as unknown;
    assert.deepStrictEqual(
      generated,
      committed,
      `${OPENAPI_PATH} is out of date: run \`npm run openapi\` and commit the result`,
    );
  });

  it('documents bearer security, public health checks and problem+json errors', async () => {
    const doc = await generateOpenApiDocument();
    assert.match(doc.openapi, /^3\./);
    assert.deepEqual(doc.components?.securitySchemes?.bearer, {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'opaque',
      description: 'An API token (vg_…)',
    });
    assert.deepEqual(doc.security, [{ bearer: [] }]);
    assert.deepEqual(doc.paths['/health/live']?.get?.security, []);
    assert.deepEqual(doc.paths['/health/ready']?.get?.security, []);
    const me = doc.paths['/v1/me']?.get;
    assert.equal(me?.operationId, 'getMe');
    assert.equal(me?.security, undefined, 'inherits the global bearer requirement');
    assert.deepEqual(Object.keys(me?.responses ?? {}).sort(), ['200', '401', '500']);
    assert.deepEqual(Object.keys((me?.responses['401'] as { content: object }).content), [
      'application/problem+json',
    ]);
    assert.ok(doc.components?.schemas?.ProblemDetails);
  });
});
