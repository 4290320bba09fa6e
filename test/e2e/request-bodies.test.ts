/**
 * What fails before a request reaches Nest (the body parser) is answered as a
 * problem document like everything else, and an empty JSON body is no body.
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
const ADMIN = 'bodies-test-admin-token-0123456789';

describe('request bodies', () => {
  let t: TestApp;
  const post = (body: string) =>
    request(t.server)
      .post('/v1/hosts')
      .set('authorization', `Bearer ${ADMIN}`)
      .set('content-type', 'application/json')
      .send(body);

  before(async () => {
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
  });

  it('answers a body that is not JSON with a 400 problem document', async () => {
    for (const body of ['{bad', '{"name": "x",}', '[1, 2']) {
      const res = await post(body);
      assert.equal(res.status, 400, body);
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, 'INVALID_ARGUMENT');
      assert.match(res.body.detail, /not valid JSON/);
      assert.equal(res.body.requestId, res.headers['x-request-id']);
    }
  });

  it('refuses prototype poisoning', async () => {
    const res = await post('{"__proto__": {"admin": true}, "name": "x", "uri": "qemu:///system"}');
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'INVALID_ARGUMENT');
  });

  it('takes an empty JSON body as no body', async () => {
    const empty = await post('');
    assert.equal(empty.status, 400);
    assert.deepEqual(
      [...new Set(empty.body.errors.map((e: { field: string }) => e.field))].sort(),
      ['name', 'uri'],
      'validated as a request without fields',
    );
    await request(t.server)
      .post('/v1/hosts')
      .set('authorization', `Bearer ${ADMIN}`)
      .send({ name: 'bodies', uri: 'test+tcp://127.0.0.1/default' })
      .expect(201);
    const del = await request(t.server)
      .delete('/v1/hosts/bodies')
      .set('authorization', `Bearer ${ADMIN}`)
      .set('content-type', 'application/json');
    assert.equal(del.status, 204);
  });
});
