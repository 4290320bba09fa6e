/**
 * The edges of the HTTP contract: a known path asked with a method it does
 * not take is 405 with Allow (an unknown path stays 404), and a field of the
 * wrong kind gets one message, not one per constraint it was checked against.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'http-edges-test-admin-token-0123';

describe('HTTP edges', () => {
  let t: TestApp;

  before(async () => {
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
  });

  const send = (method: 'get' | 'put' | 'post' | 'patch' | 'delete' | 'options', url: string) =>
    request(t.server)[method](url).set('Authorization', `Bearer ${ADMIN}`);

  describe('405 Method Not Allowed', () => {
    const cases: Array<[method: 'put' | 'post' | 'patch' | 'delete', url: string, allow: string]> =
      [
        ['put', '/v1/hosts', 'GET, HEAD, POST'],
        ['delete', '/v1/hosts', 'GET, HEAD, POST'],
        ['put', '/v1/hosts/local/domains/vm1', 'DELETE, GET, HEAD'],
        ['post', '/v1/me', 'GET, HEAD'],
        ['patch', '/health/live', 'GET, HEAD'],
        ['delete', '/v1/jobs/0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11/pivot', 'POST'],
      ];
    for (const [method, url, allow] of cases) {
      it(`${method.toUpperCase()} ${url}: 405, Allow: ${allow}`, async () => {
        const res = await send(method, url);
        assert.equal(res.status, 405, res.text);
        assert.equal(res.headers.allow, allow);
        assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
        assert.ok(res.headers['x-request-id']);
        assert.deepEqual(
          {
            type: res.body.type,
            status: res.body.status,
            code: res.body.code,
            instance: res.body.instance,
          },
          {
            type: 'urn:virtgate:problem:unsupported',
            status: 405,
            code: 'UNSUPPORTED',
            instance: url,
          },
        );
        assert.equal(
          res.body.detail,
          `${method.toUpperCase()} is not allowed on ${url}; it takes ${allow}`,
        );
        assert.equal(res.body.requestId, res.headers['x-request-id']);
      });
    }

    it('needs no credentials to say which methods a path takes (as a 404 needs none)', async () => {
      const res = await request(t.server).put('/v1/hosts');
      assert.equal(res.status, 405);
      assert.equal(res.headers.allow, 'GET, HEAD, POST');
    });

    it('leaves unknown paths 404, whatever the method', async () => {
      for (const [method, url] of [
        ['get', '/nope'],
        ['put', '/v1/nope'],
        ['get', '/v1/hosts/local/domains/vm1/unknown'],
        ['delete', '/v1/hosts/local/domains/vm1/actions/start/extra'],
      ] as const) {
        const res = await send(method, url);
        assert.equal(res.status, 404, `${method} ${url}: ${res.text}`);
        assert.equal(res.body.code, 'NOT_FOUND');
        assert.equal(res.headers.allow, undefined);
      }
    });

    it('still answers the methods a path takes', async () => {
      const res = await send('get', '/health/live');
      assert.equal(res.status, 200);
      assert.equal((await request(t.server).head('/health/live')).status, 200);
    });
  });

  describe('one message per field', () => {
    const problemOf = async (url: string) => {
      const res = await send('get', url);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.code, 'INVALID_ARGUMENT');
      return res.body as { detail: string; errors: Array<{ field: string; message: string }> };
    };

    it('limit=abc: only that it is not an integer', async () => {
      const problem = await problemOf('/v1/hosts/local/domains?limit=abc');
      assert.deepEqual(problem.errors, [
        { field: 'limit', message: 'limit must be an integer number' },
      ]);
      assert.equal(problem.detail, 'limit must be an integer number');
    });

    it('limit=1.5, NaN or 1e400 alike', async () => {
      for (const value of ['1.5', 'NaN', '1e400', '12abc']) {
        const problem = await problemOf(`/v1/hosts/local/domains?limit=${value}`);
        assert.deepEqual(
          problem.errors,
          [{ field: 'limit', message: 'limit must be an integer number' }],
          `limit=${value}`,
        );
      }
    });

    it('a number out of range (an empty limit reads as 0): the range it is out of', async () => {
      assert.deepEqual((await problemOf('/v1/hosts/local/domains?limit=')).errors, [
        { field: 'limit', message: 'limit must not be less than 1' },
      ]);
      assert.deepEqual((await problemOf('/v1/hosts/local/domains?limit=501')).errors, [
        { field: 'limit', message: 'limit must not be greater than 500' },
      ]);
      assert.deepEqual((await problemOf('/v1/hosts/local/domains?limit=0')).errors, [
        { field: 'limit', message: 'limit must not be less than 1' },
      ]);
    });

    it('several wrong fields: one message each', async () => {
      const problem = await problemOf('/v1/jobs?limit=abc&state=nope');
      const fields = problem.errors.map((e) => e.field).sort();
      assert.deepEqual(fields, [...new Set(fields)], JSON.stringify(problem.errors));
      assert.ok(fields.includes('limit'), JSON.stringify(problem.errors));
      assert.equal(
        problem.errors.find((e) => e.field === 'limit')?.message,
        'limit must be an integer number',
      );
    });

    it('a body field of the wrong type: one message', async () => {
      const res = await send('post', '/v1/hosts').send({ name: 42, uri: 'test:///default' });
      assert.equal(res.status, 400, res.text);
      const name = (res.body.errors as Array<{ field: string; message: string }>).filter(
        (e) => e.field === 'name',
      );
      assert.deepEqual(name, [{ field: 'name', message: 'name must be a string' }]);
    });
  });
});
