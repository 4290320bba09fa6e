/**
 * The interactive docs: served by the gateway from local assets (no CDN),
 * behind credentials like every endpoint but health, and describing the same
 * OpenAPI 3.1 document that is committed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'docs-test-admin-token-0123456789';
const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('API docs at /docs', () => {
  let t: TestApp;

  before(async () => {
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
  });

  it('asks a browser for credentials, and refuses a wrong token', async () => {
    for (const path of [
      '/docs',
      '/docs/openapi.json',
      '/docs/swagger-ui-bundle.js',
      '/docs/schema.graphql',
    ]) {
      const res = await request(t.server).get(path);
      assert.equal(res.status, 401, path);
      assert.match(res.headers['www-authenticate'] ?? '', /^Basic realm="virtgate docs"/);
    }
    const wrong = await request(t.server)
      .get('/docs')
      .set('authorization', basic('me', 'not-a-token'));
    assert.equal(wrong.status, 401);
  });

  it('serves Swagger UI from local assets with a token as Basic password or bearer', async () => {
    const page = await request(t.server).get('/docs').set('authorization', basic('anyone', ADMIN));
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'] ?? '', /text\/html/);
    const srcs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(srcs.length >= 3, page.text);
    for (const src of srcs) {
      assert.doesNotMatch(src, /^(https?:)?\/\//, `${src} must be served by the gateway itself`);
      const asset = await request(t.server)
        .get(new URL(src, 'http://x/docs').pathname)
        .set('authorization', `Bearer ${ADMIN}`);
      assert.equal(asset.status, 200, src);
    }
  });

  it('serves the committed OpenAPI 3.1 document and GraphQL schema', async () => {
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
  });
});
