/**
 * What fails before a request reaches Nest (the body parser) is answered as a
 * problem document like everything else, and an empty JSON body is no body.
 * Malformed bodies (nested 200,000 deep, prototype keys, not JSON, too large)
 * are clear 4xx, never a 500.
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

  it('refuses a body nested 200,000 deep before parsing it: 413, not a stack overflow', async () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    for (const body of [deep, `{"name": "x", "uri": ${deep}}`]) {
      const res = await post(body);
      assert.equal(res.status, 413);
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, 'PAYLOAD_TOO_LARGE');
      assert.match(res.body.detail, /deeper than 64 levels/);
    }
    // Through GraphQL too (its variables are JSON), and the app still answers after.
    const gql = await request(t.server)
      .post('/graphql')
      .set('authorization', `Bearer ${ADMIN}`)
      .set('content-type', 'application/json')
      .send(`{"query": "{ __typename }", "variables": {"v": ${deep}}}`);
    assert.equal(gql.status, 413);
    assert.equal(gql.body.errors[0].extensions.code, 'PAYLOAD_TOO_LARGE');
    // Brackets inside strings are text, not nesting.
    const inString = await post(JSON.stringify({ name: '['.repeat(1000), uri: 'x' }));
    assert.equal(inString.status, 400);
    assert.equal(inString.body.code, 'INVALID_ARGUMENT');
    assert.ok(inString.body.errors.some((e: { field: string }) => e.field === 'name'));
  });

  it('refuses constructor.prototype keys as clearly as __proto__', async () => {
    for (const body of [
      '{"constructor": {"prototype": {"admin": true}}, "name": "x", "uri": "qemu:///system"}',
      '{"name": "x", "uri": "qemu:///system", "__proto__": {}}',
    ]) {
      const res = await post(body);
      assert.equal(res.status, 400, body);
      assert.equal(res.body.code, 'INVALID_ARGUMENT');
      assert.match(res.body.detail, /"__proto__" or "constructor"/);
    }
  });

  it('answers a body that is not JSON 415', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await request(t.server)
        .post('/v1/hosts')
        .set('authorization', `Bearer ${ADMIN}`)
        .set('content-type', type)
        .send('name=x&uri=qemu:///system');
      assert.equal(res.status, 415, type);
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, 'UNSUPPORTED');
    }
  });

  it('answers a body over the size limit 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await post(JSON.stringify({ name: 'x', uri: 'x'.repeat(3 * 1024 * 1024) }));
    assert.equal(res.status, 413);
    assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.equal(res.body.code, 'PAYLOAD_TOO_LARGE');
  });

  it('refuses raw domain XML that is too long or nested too deep with a 400', async () => {
    const define = (xml: string) =>
      request(t.server)
        .post('/v1/hosts/local/domains')
        .set('authorization', `Bearer ${ADMIN}`)
        .send({ xml });
    const long = await define(
      `<domain type='qemu'><name>x</name><description>${'x'.repeat(1_000_000)}</description></domain>`,
    );
    assert.equal(long.status, 400);
    assert.deepEqual(
      long.body.errors.map((e: { field: string }) => e.field),
      ['xml'],
    );
    const deep = await define(
      `<domain type='qemu'><name>deep</name>${'<a>'.repeat(130_000)}${'</a>'.repeat(130_000)}</domain>`,
    );
    assert.equal(deep.status, 400);
    assert.equal(deep.body.code, 'INVALID_ARGUMENT');
    assert.match(deep.body.detail, /nested deeper than 100 elements/);
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
