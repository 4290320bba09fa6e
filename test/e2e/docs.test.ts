/**
 * The interactive docs: served by the gateway from local assets (no CDN),
 * behind the same authenticator as every route, on the route the router
 * matched (no encoding of the path gets around it), usable by a person
 * through a sign-in form and a session cookie, and describing the same
 * OpenAPI 3.1 document that is committed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { redisKeys } from '#src/redis/keys.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  REDIS_URL,
  scanKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const keys = redisKeys(prefix);
const ADMIN = 'docs-test-admin-token-0123456789';
const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Every kind of route under /docs: the page, Swagger's files, the documents. */
const GUARDED = [
  '/docs',
  '/docs/',
  '/docs/index.html',
  '/docs/openapi.json',
  '/docs/openapi.yaml',
  '/docs/schema.graphql',
  '/docs/asyncapi.yaml',
  '/docs/swagger-ui-init.js',
  '/docs/swagger-ui-bundle.js',
  '/docs/swagger-ui.css',
];

/** Spellings of /docs/openapi.json that a string comparison of the raw URL would miss. */
const ENCODED = [
  '/%64ocs/openapi.json',
  '/%64%6f%63%73/openapi.json',
  '/docs/%6fpenapi.json',
  '/%2Fdocs/openapi.json',
  '/%2fdocs/openapi.json',
  '//docs/openapi.json',
  '///docs/openapi.json',
  '/docs//openapi.json',
  '/docs/./openapi.json',
  '/docs/%2e/openapi.json',
  '/x/../docs/openapi.json',
  '/DOCS/openapi.json',
  '/Docs/openapi.json',
  '/docs%2Fopenapi.json',
  '/docs%2fopenapi.json',
  '/docs/openapi.json/',
  '/docs/openapi.json?x=1',
  '/docs/openapi.json;x=1',
  '/docs;x=1/openapi.json',
  '/docs/openapi.json%00',
  '/docs/openapi.json#x',
  '/docs/login/../openapi.json',
  '/docs/login%2F..%2Fopenapi.json',
  '/%64ocs/asyncapi.yaml',
  '/docs/%61syncapi.yaml',
  '/DOCS/asyncapi.yaml',
  '/docs/asyncapi.yaml;x=1',
  '/docs/login/../asyncapi.yaml',
];

function sessionCookie(setCookie: string[] | string | undefined): string {
  const header = [setCookie ?? []].flat().find((c) => c.startsWith('vg_docs='));
  assert.ok(header, 'a vg_docs cookie is set');
  return header.split(';')[0]!;
}

describe('API docs at /docs', () => {
  let t: TestApp;
  let redis: Redis;

  before(async () => {
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        // Every spelling of every path is tried without a token; limits.test.ts tests the limit.
        AUTH_FAILURES_PER_ADDRESS: '0',
      }),
    );
    redis = new Redis(REDIS_URL);
  });

  after(async () => {
    await closeAllApps();
    await redis.quit();
    await deleteKeys(prefix);
  });

  it('refuses every docs route without credentials as the guard does: 401 problem, no Basic prompt', async () => {
    for (const path of GUARDED) {
      for (const method of ['get', 'head'] as const) {
        const res = await request(t.server)[method](path);
        assert.equal(res.status, 401, `${method} ${path}`);
        assert.equal(res.headers['www-authenticate'], 'Bearer realm="virtgate"', path);
        if (method === 'get') {
          assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON, path);
          assert.equal(res.body.code, 'UNAUTHENTICATED', path);
        }
      }
    }
    const wrong = await request(t.server).get('/docs').set('authorization', 'Bearer not-a-token');
    assert.equal(wrong.status, 401);
    // An API token as a Basic password is no longer a way in.
    const asBasic = await request(t.server).get('/docs').set('authorization', basic('me', ADMIN));
    assert.equal(asBasic.status, 401);
    assert.doesNotMatch(asBasic.headers['www-authenticate'] ?? '', /basic/i);
  });

  it('gives nothing of the documents to any spelling of their path without credentials', async () => {
    for (const path of ENCODED) {
      for (const method of ['get', 'head'] as const) {
        const res = await request(t.server)[method](path);
        assert.ok([400, 401, 404].includes(res.status), `${method} ${path}: ${res.status}`);
        // Not the document (a problem document may name the path it refuses in `instance`).
        assert.doesNotMatch(res.text ?? '', /"openapi"\s*:|"paths"\s*:/, `${method} ${path}`);
        assert.doesNotMatch(res.text ?? '', /^asyncapi:/m, `${method} ${path}`);
      }
    }
    // With a token, the spellings the router takes for the document serve it: the check
    // is on the route, so it is the same check either way.
    const decoded = await request(t.server)
      .get('/%64ocs/openapi.json')
      .set('authorization', `Bearer ${ADMIN}`);
    assert.equal(decoded.status, 200);
    assert.equal(decoded.body.openapi, '3.1.0');
  });

  it('sends a browser without a session to the sign-in page, served from our own files', async () => {
    for (const path of ['/docs', '/docs/', '/docs/index.html']) {
      const res = await request(t.server).get(path).set('accept', 'text/html,*/*');
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.location, '/docs/login');
    }
    // Not the documents: they are never a redirect.
    const doc = await request(t.server).get('/docs/openapi.json').set('accept', 'text/html');
    assert.equal(doc.status, 401);

    const page = await request(t.server).get('/docs/login');
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'] ?? '', /text\/html/);
    assert.match(page.text, /<form id="docs-login-form"/);
    assert.match(page.text, /type="password"/);
    // No inline script (a CSP may forbid it) and nothing from elsewhere.
    assert.doesNotMatch(page.text, /<script(?![^>]*\bsrc=)[^>]*>/);
    assert.doesNotMatch(page.text, /\son[a-z]+=/i);
    const srcs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(srcs.sort(), ['/docs/login.css', '/docs/login.js']);
    for (const src of srcs) {
      const asset = await request(t.server).get(src);
      assert.equal(asset.status, 200, src);
    }
    const script = await request(t.server).get('/docs/login.js');
    assert.match(script.headers['content-type'] ?? '', /javascript/);
    assert.doesNotMatch(script.text, /localStorage|sessionStorage|document\.cookie/);
  });

  it('exchanges a token for an HttpOnly SameSite=Strict /docs cookie that holds no token', async () => {
    const refused = await request(t.server).post('/docs/session').send({ token: 'not-a-token' });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers['set-cookie'], undefined);
    const empty = await request(t.server).post('/docs/session').send({});
    assert.equal(empty.status, 400);
    assert.equal(empty.body.code, 'INVALID_ARGUMENT');
    const form = await request(t.server).post('/docs/session').type('form').send({ token: ADMIN });
    assert.ok(form.status >= 400 && form.status < 500, `a form post is refused: ${form.status}`);
    assert.equal(form.headers['set-cookie'], undefined);

    const res = await request(t.server).post('/docs/session').send({ token: ADMIN });
    assert.equal(res.status, 204);
    const header = [res.headers['set-cookie'] ?? []].flat()[0]!;
    assert.match(header, /; HttpOnly/);
    assert.match(header, /; SameSite=Strict/);
    assert.match(header, /; Path=\/docs(;|$)/);
    assert.match(header, /; Max-Age=28800/);
    const cookie = sessionCookie(res.headers['set-cookie']);
    const id = cookie.slice('vg_docs='.length);
    assert.match(id, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!cookie.includes(ADMIN));

    // Redis: the session under the hash of its id, with a TTL and the token's id, and
    // nowhere the token or the session id in clear.
    const sessionKey = keys.docsSession(sha256(id));
    const stored = await redis.hgetall(sessionKey);
    assert.equal(stored.tokenId, 'admin');
    const ttl = await redis.ttl(sessionKey);
    assert.ok(ttl > 0 && ttl <= 28800, `ttl ${ttl}`);
    for (const key of await scanKeys(redis, prefix)) {
      const type = await redis.type(key);
      const dump =
        type === 'hash'
          ? JSON.stringify(await redis.hgetall(key))
          : type === 'string'
            ? ((await redis.get(key)) ?? '')
            : '';
      assert.ok(!dump.includes(ADMIN), `${key} holds the token`);
      assert.ok(!dump.includes(id) && !key.includes(id), `${key} holds the session id`);
    }

    // The cookie opens every docs route, Swagger's page with its local assets included.
    const page = await request(t.server).get('/docs').set('cookie', cookie);
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'] ?? '', /text\/html/);
    const srcs = [...page.text.matchAll(/(?:src|href)=["']([^"']+)["']/g)].map((m) => m[1]!);
    assert.ok(srcs.includes('/docs/login.js'), 'the page has the sign-out script');
    for (const src of srcs) {
      assert.doesNotMatch(src, /^(https?:)?\/\//, `${src} must be served by the gateway itself`);
      const asset = await request(t.server)
        .get(new URL(src, 'http://x/docs').pathname)
        .set('cookie', cookie);
      assert.equal(asset.status, 200, src);
    }
    for (const path of GUARDED) {
      const res2 = await request(t.server).get(path).set('cookie', cookie);
      assert.equal(res2.status, 200, path);
    }
    // It is the docs' cookie only: the API takes bearer tokens, not it.
    const api = await request(t.server).get('/v1/me').set('cookie', cookie);
    assert.equal(api.status, 401);
    // A made-up session id is nothing.
    const forged = await request(t.server)
      .get('/docs/openapi.json')
      .set('cookie', `vg_docs=${'A'.repeat(43)}`);
    assert.equal(forged.status, 401);
  });

  it('signs out: the session is gone and its cookie cleared', async () => {
    const cookie = sessionCookie(
      (await request(t.server).post('/docs/session').send({ token: ADMIN })).headers['set-cookie'],
    );
    const id = cookie.slice('vg_docs='.length);
    assert.equal(
      (await request(t.server).get('/docs/openapi.json').set('cookie', cookie)).status,
      200,
    );
    const out = await request(t.server).post('/docs/logout').set('cookie', cookie);
    assert.equal(out.status, 204);
    assert.match(
      [out.headers['set-cookie'] ?? []].flat()[0] ?? '',
      /^vg_docs=; Max-Age=0; Path=\/docs/,
    );
    assert.equal(await redis.exists(keys.docsSession(sha256(id))), 0);
    assert.equal(
      (await request(t.server).get('/docs/openapi.json').set('cookie', cookie)).status,
      401,
    );
    const browser = await request(t.server)
      .get('/docs')
      .set('cookie', cookie)
      .set('accept', 'text/html');
    assert.equal(browser.status, 303);
  });

  it('ends the session when its token is revoked', async () => {
    const cookie = sessionCookie(
      (await request(t.server).post('/docs/session').send({ token: ADMIN })).headers['set-cookie'],
    );
    const id = cookie.slice('vg_docs='.length);
    assert.equal(
      (await request(t.server).get('/docs/openapi.json').set('cookie', cookie)).status,
      200,
    );
    // Revocation removes the token's record (what DELETE /v1/tokens/{id} does).
    const record = await redis.hgetall(keys.token(sha256(ADMIN)));
    await redis.del(keys.token(sha256(ADMIN)));
    try {
      const res = await request(t.server).get('/docs/openapi.json').set('cookie', cookie);
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'UNAUTHENTICATED');
      assert.equal(await redis.exists(keys.docsSession(sha256(id))), 0, 'the session is deleted');
    } finally {
      await redis.hset(keys.token(sha256(ADMIN)), record);
    }
    // The token back does not bring the ended session back.
    assert.equal(
      (await request(t.server).get('/docs/openapi.json').set('cookie', cookie)).status,
      401,
    );
  });

  it('serves the committed OpenAPI 3.1 document, GraphQL schema and AsyncAPI document', async () => {
    const doc = await request(t.server)
      .get('/docs/openapi.json')
      .set('authorization', `Bearer ${ADMIN}`);
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, '3.1.0');
    assert.ok(doc.body.paths['/v1/hosts/{host}/domains/{domain}/disks/{target}']);
    assert.deepEqual(doc.body, JSON.parse(readFileSync('openapi/openapi.json', 'utf8')));
    const schema = await request(t.server)
      .get('/docs/schema.graphql')
      .set('authorization', `Bearer ${ADMIN}`);
    assert.equal(schema.status, 200);
    assert.equal(schema.text, readFileSync('openapi/schema.graphql', 'utf8'));
    const asyncapi = await request(t.server)
      .get('/docs/asyncapi.yaml')
      .set('authorization', `Bearer ${ADMIN}`);
    assert.equal(asyncapi.status, 200);
    assert.match(asyncapi.headers['content-type'] ?? '', /^text\/yaml/);
    assert.equal(asyncapi.text, readFileSync('openapi/asyncapi.yaml', 'utf8'));
    assert.match(asyncapi.text, /^asyncapi: "3\.0\.0"$/m);
  });
});
