import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  UUID,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN_TOKEN = 'request-id-test-admin-token-0123';

describe('request id', () => {
  let t: TestApp;

  before(async () => {
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN }));
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
  });

  const linesOf = (requestId: string) => t.logs.lines.filter((l) => l.requestId === requestId);

  it('echoes a sane X-Request-Id and logs every line of the request with it', async () => {
    const id = 'client-id_1.2:3';
    const res = await request(t.server).get('/health/live').set('X-Request-Id', id).expect(200);
    assert.equal(res.headers['x-request-id'], id);
    const messages = linesOf(id).map((l) => l.msg);
    assert.deepEqual(messages, ['incoming request', 'request completed']);
  });

  it('generates a UUID when the client sends none', async () => {
    const a = await request(t.server).get('/health/live').expect(200);
    const b = await request(t.server).get('/health/live').expect(200);
    assert.match(a.headers['x-request-id'] ?? '', UUID);
    assert.match(b.headers['x-request-id'] ?? '', UUID);
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
    assert.equal(linesOf(a.headers['x-request-id']!).length, 2);
  });

  it('replaces an X-Request-Id that is not a sane token', async () => {
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', '<script>', 'ünïcode']) {
      const res = await request(t.server).get('/health/live').set('X-Request-Id', bad).expect(200);
      assert.match(res.headers['x-request-id'] ?? '', UUID, `for ${JSON.stringify(bad)}`);
    }
  });

  it('carries the id into error bodies and into lines logged through Nest', async () => {
    const id = 'nest-logger-line-check';
    const res = await request(t.server)
      .get('/v1/me')
      .set('Authorization', 'Bearer not-a-known-token-42')
      .set('X-Request-Id', id)
      .expect(401);
    assert.equal(res.headers['x-request-id'], id);
    assert.equal(res.body.requestId, id);
    // BearerAuthGuard logs the rejection with Nest's Logger, which writes through pino.
    const guardLines = linesOf(id).filter((l) => l.context === 'BearerAuthGuard');
    assert.equal(guardLines.length, 1, JSON.stringify(linesOf(id)));
    assert.equal(guardLines[0]!.msg, 'rejected a bearer token that matches no token');
    assert.equal(guardLines[0]!.service, 'virtgate');
  });

  it('writes Nest lines outside requests without a request id', () => {
    const boot = t.logs.lines.find((l) => l.msg === 'Nest application successfully started');
    assert.ok(boot);
    assert.equal(boot.requestId, undefined);
    assert.equal(boot.context, 'NestApplication');
  });
});
