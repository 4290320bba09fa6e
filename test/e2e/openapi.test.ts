import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type {
  OperationObject,
  ParameterObject,
  ResponseObject,
  SchemaObject,
} from '@nestjs/swagger';
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
    // 503: a token the gateway has not verified yet is looked up in Redis, which may be down.
    assert.deepEqual(Object.keys(me?.responses ?? {}).sort(), ['200', '401', '429', '500', '503']);
    assert.deepEqual(Object.keys((me?.responses['401'] as { content: object }).content), [
      'application/problem+json',
    ]);
    assert.ok(doc.components?.schemas?.ProblemDetails);
  });

  it('names its server (relative: the gateway serving it) and describes every tag it uses', async () => {
    const doc = await generateOpenApiDocument();
    assert.equal(doc.servers?.length, 1);
    assert.equal(doc.servers?.[0]?.url, '/');
    const declared = new Map((doc.tags ?? []).map((t) => [t.name, t.description ?? '']));
    const used = new Set(
      Object.values(doc.paths).flatMap((item) =>
        Object.values(item as Record<string, OperationObject>).flatMap((op) => op.tags ?? []),
      ),
    );
    assert.ok(used.size >= 10);
    for (const tag of used) assert.ok((declared.get(tag) ?? '').length > 0, `tag ${tag}`);
    assert.deepEqual([...declared.keys()].sort(), [...used].sort(), 'no tag declared unused');
    const ids = Object.values(doc.paths).flatMap((item) =>
      Object.values(item as Record<string, OperationObject>).map((op) => op.operationId),
    );
    assert.ok(
      ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z0-9]+$/.test(id)),
      'ids',
    );
    assert.equal(new Set(ids).size, ids.length, 'operation ids are unique');
  });

  it('documents the response headers each answer carries', async () => {
    const doc = await generateOpenApiDocument();
    const ref = (name: string) => ({ $ref: `#/components/headers/${name}` });
    let responses = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item) as [string, OperationObject][]) {
        const where = `${method.toUpperCase()} ${path}`;
        for (const [status, response] of Object.entries(operation.responses) as [
          string,
          ResponseObject,
        ][]) {
          responses++;
          const headers = response.headers ?? {};
          assert.deepEqual(headers['X-Request-Id'], ref('X-Request-Id'), `${where} ${status}`);
          if (status === '401') assert.ok(headers['WWW-Authenticate'], `${where} 401`);
          if (status === '429') assert.ok(headers['Retry-After'], `${where} 429`);
          if (status === '503' && path !== '/health/ready') {
            assert.ok(headers['Retry-After'], `${where} 503`);
          }
        }
        const prefer = operation.parameters?.find(
          (p): p is ParameterObject => 'name' in p && p.name === 'Prefer',
        );
        if (prefer) {
          const pattern = new RegExp((prefer.schema as SchemaObject).pattern!, 'u');
          for (const ok of [
            'wait=30',
            'wait=0',
            'wait=60',
            'respond-async',
            'respond-async, wait=5',
          ]) {
            assert.match(ok, pattern, `${where}: Prefer ${ok}`);
          }
          for (const bad of ['wait=61', 'wait=-1', 'wait', 'wait=1.5']) {
            assert.doesNotMatch(bad, pattern, `${where}: Prefer ${bad}`);
          }
        }
      }
    }
    assert.ok(responses > 100);
    // Every route that answers with a job through respondWithJob: Location and Preference-Applied.
    const start = doc.paths['/v1/hosts/{host}/domains/{domain}/actions/start']?.post;
    for (const status of ['200', '202']) {
      const headers = (start?.responses[status] as ResponseObject | undefined)?.headers ?? {};
      assert.deepEqual(headers.Location, ref('Location'));
      assert.deepEqual(headers['Preference-Applied'], ref('Preference-Applied'));
    }
    assert.deepEqual(Object.keys(doc.components?.headers ?? {}).sort(), [
      'Location',
      'Preference-Applied',
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
      'Retry-After',
      'WWW-Authenticate',
      'X-Request-Id',
    ]);
  });
});
