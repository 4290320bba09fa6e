import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { Redis } from 'ioredis';
import { REDIS } from '#src/redis/redis.module.js';
import { hashToken } from '#modules/auth/tokens.service.js';
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
const ADMIN_TOKEN = 'auth-test-admin-token-0123456789';

describe('bearer authentication', () => {
  let t: TestApp;

  before(async () => {
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN }));
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
  });

  /** Checks a 401 answer: problem+json, UNAUTHENTICATED, the Bearer challenge. */
  function assertUnauthenticated(res: request.Response, path: string, detail: RegExp): void {
    assert.equal(res.status, 401);
    assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.match(res.headers['www-authenticate'] ?? '', /^Bearer realm="virtgate"$/);
    assert.deepEqual(Object.keys(res.body).sort(), [
      'code',
      'detail',
      'instance',
      'requestId',
      'status',
      'title',
      'type',
    ]);
    assert.equal(res.body.type, 'urn:virtgate:problem:unauthenticated');
    assert.equal(res.body.title, 'Unauthenticated');
    assert.equal(res.body.status, 401);
    assert.equal(res.body.code, 'UNAUTHENTICATED');
    assert.equal(res.body.instance, path);
    assert.equal(res.body.requestId, res.headers['x-request-id']);
    assert.match(res.body.detail, detail);
  }

  it('answers 401 problem+json without a token', async () => {
    const res = await request(t.server).get('/v1/me');
    assertUnauthenticated(res, '/v1/me', /needs a bearer token/);
  });

  it('answers 401 with a wrong token', async () => {
    const res = await request(t.server)
      .get('/v1/me')
      .set('Authorization', 'Bearer wrong-token-123');
    assertUnauthenticated(res, '/v1/me', /not valid/);
  });

  it('answers 401 to another scheme, and to a token in the query string', async () => {
    const basic = await request(t.server)
      .get('/v1/me')
      .set('Authorization', `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`);
    assertUnauthenticated(basic, '/v1/me', /needs a bearer token/);
    const query = await request(t.server).get(`/v1/me?access_token=${ADMIN_TOKEN}`);
    assertUnauthenticated(query, '/v1/me', /needs a bearer token/);
  });

  it('GET /v1/me answers the caller with the admin token, and never the token', async () => {
    const res = await request(t.server)
      .get('/v1/me')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .expect(200);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.deepEqual(res.body, { id: 'admin', role: 'admin' });
    assert.ok(!res.text.includes(ADMIN_TOKEN));
  });

  it('accepts the scheme name in any case (RFC 7235)', async () => {
    await request(t.server).get('/v1/me').set('Authorization', `bearer ${ADMIN_TOKEN}`).expect(200);
  });

  it('serves the health checks without a token', async () => {
    await request(t.server).get('/health/live').expect(200);
  });

  it('answers an unknown route with 404 problem+json', async () => {
    const res = await request(t.server)
      .get('/v1/nothing-here?x=1')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .expect(404);
    assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.equal(res.body.code, 'NOT_FOUND');
    assert.equal(res.body.type, 'urn:virtgate:problem:not-found');
    assert.equal(res.body.instance, '/v1/nothing-here');
    assert.equal(res.body.requestId, res.headers['x-request-id']);
  });

  it('answers malformed JSON with 400 problem+json INVALID_ARGUMENT', async () => {
    const res = await request(t.server)
      .post('/v1/tokens')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .set('Content-Type', 'application/json')
      .send('{"not json')
      .expect(400);
    assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
    assert.equal(res.body.code, 'INVALID_ARGUMENT');
    assert.equal(res.body.status, 400);
    assert.match(res.body.detail, /JSON/);
  });

  it('never writes the token or the Authorization header to the logs', () => {
    assert.ok(t.logs.raw.length > 0);
    for (const line of t.logs.raw) {
      assert.ok(!line.includes(ADMIN_TOKEN), `token in log line: ${line}`);
      assert.ok(!/authorization/i.test(line), `Authorization header in log line: ${line}`);
    }
    const queryLine = t.logs.lines.find((l) =>
      String((l.req as { url?: string } | undefined)?.url).startsWith('/v1/me?access_token='),
    );
    assert.equal((queryLine?.req as { url: string }).url, '/v1/me?access_token=[redacted]');
  });

  it('answers an unexpected failure with 500 and no internals, logged once with the request id', async () => {
    // A real failure no caller can cause: the admin token's record has the wrong Redis type.
    const redis = t.app.get<Redis>(REDIS);
    const key = `${prefix}auth:token:${hashToken(ADMIN_TOKEN)}`;
    const record = await redis.hgetall(key);
    await redis.del(key);
    await redis.set(key, 'not a hash');
    try {
      const res = await request(t.server)
        .get('/v1/me')
        .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
        .set('X-Request-Id', 'req-500-check')
        .expect(500);
      assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
      assert.equal(res.body.code, 'INTERNAL');
      assert.equal(res.body.requestId, 'req-500-check');
      assert.doesNotMatch(res.text, /WRONGTYPE|redis|stack|at /i);
      const errors = t.logs.lines.filter(
        (l) => l.requestId === 'req-500-check' && l.level === 'error',
      );
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.equal(errors[0]!.msg, 'internal error, answered 500');
      assert.match(String((errors[0]!.err as { message: string }).message), /WRONGTYPE/);
    } finally {
      await redis.del(key);
      await redis.hset(key, record);
    }
  });

  it('answers 503 UNAVAILABLE, not 500, when its Redis connection is gone', async () => {
    t.app.get<Redis>(REDIS).disconnect();
    // The admin token was verified before: it still authenticates (redis-outage.test.ts);
    // the token listing needs Redis.
    const res = await request(t.server)
      .get('/v1/tokens')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
    assert.equal(res.status, 503);
    assert.equal(res.body.code, 'UNAVAILABLE');
    assert.equal(res.headers['retry-after'], '5');
  });
});
