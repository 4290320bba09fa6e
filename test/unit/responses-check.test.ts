/**
 * The responses check run after the whole suite (scripts/check-responses.ts
 * over test/support/response-check.ts) can fail: on a small synthetic
 * document and run directory, a body that breaks its schema, an
 * undocumented status, an undeclared media type, a body where none is
 * declared, a 405 without Allow and an unknown path answered with anything
 * but a 404 problem are each reported (with the operation, status, Ajv's
 * errors and the test file) and make the checker exit non-zero; a
 * conforming run passes, with its counts; a run that recorded nothing fails.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ResponseChecker, type ResponseRecord } from '../support/response-check.js';

const run = promisify(execFile);
const CHECKER = new URL('../../scripts/check-responses.js', import.meta.url).pathname;
const dirs: string[] = [];

const problem = {
  type: 'object',
  properties: { status: { type: 'integer' }, title: { type: 'string' } },
  required: ['status', 'title'],
};
const thing = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    state: { type: 'string', enum: ['on', 'off'] },
    createdAt: { type: 'string', format: 'date-time' },
  },
  required: ['id', 'state', 'createdAt'],
  additionalProperties: false,
};
const problemContent = {
  'application/problem+json': { schema: { $ref: '#/components/schemas/ProblemDetails' } },
};
const DOCUMENT = {
  openapi: '3.1.0',
  info: { title: 'synthetic', version: '1' },
  paths: {
    '/things/{id}': {
      get: {
        responses: {
          '200': {
            description: 'the thing',
            headers: { 'Retry-After': { schema: { type: 'integer', minimum: 0 } } },
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } },
          },
          '4XX': { $ref: '#/components/responses/Problem' },
        },
      },
      delete: { responses: { '204': { description: 'gone' } } },
    },
    '/things/special': {
      get: {
        responses: {
          '200': { description: 'text', content: { 'text/plain': { schema: { type: 'string' } } } },
        },
      },
    },
  },
  components: {
    schemas: { Thing: thing, ProblemDetails: problem },
    responses: { Problem: { description: 'a problem', content: problemContent } },
  },
};

const json = 'application/json; charset=utf-8';
const problemJson = 'application/problem+json; charset=utf-8';
function rec(
  method: string,
  path: string,
  status: number,
  body: unknown,
  contentType?: string,
  extra: Partial<ResponseRecord> = {},
): ResponseRecord {
  return {
    method,
    path,
    status,
    headers: contentType === undefined ? {} : { 'content-type': contentType },
    body: body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body),
    finished: true,
    truncated: false,
    file: 'dist/test/e2e/things.test.js',
    ...extra,
  };
}

const THING = { id: 1, state: 'on', createdAt: '2026-12-03T08:00:00.000Z' };
const GOOD: ResponseRecord[] = [
  rec('GET', '/things/1', 200, THING, json, {
    headers: { 'content-type': json, 'retry-after': 5 },
  }),
  rec('HEAD', '/things/1', 200, undefined, json),
  rec('GET', '/things/2', 404, { status: 404, title: 'Not found' }, problemJson),
  rec('GET', '/things/special', 200, 'hello', 'text/plain; charset=utf-8'),
  rec('DELETE', '/things/%31', 204, undefined),
  rec('PUT', '/things/1', 405, { status: 405, title: 'Unsupported' }, problemJson, {
    headers: { 'content-type': problemJson, allow: 'GET, HEAD, DELETE' },
  }),
  rec('GET', '/nope', 404, { status: 404, title: 'Not found' }, problemJson),
  rec('POST', '/graphql', 200, { data: { anything: true } }, json),
  rec('GET', '/docs/app.js', 200, 'window.x = 1', 'application/javascript'),
  rec('GET', '/things/1', 200, '{"id":1,"sta', json, { truncated: true }),
];

/** Each bad record, and a piece of the message the checker must print for it. */
/** Each bad record, and what the checker must print for it. */
const BAD: Array<[ResponseRecord, RegExp[]]> = [
  [
    rec('GET', '/things/1', 200, { ...THING, id: 1.5, state: 'dim', extra: 1 }, json),
    [
      /GET \/things\/\{id\} -> 200 \(1 time: responses-1\.jsonl:1, dist\/test\/e2e\/things\.test\.js\)/,
      /body\/id must be integer/,
      /body\/state must be equal to one of the allowed values \["on","off"\]/,
      /body must NOT have additional properties 'extra'/,
    ],
  ],
  [
    rec('GET', '/things/1', 200, { ...THING, createdAt: 'yesterday' }, json),
    [/body\/createdAt must match format "date-time"/],
  ],
  [
    rec('GET', '/things/1', 500, { status: 500, title: 'x' }, problemJson),
    [/status 500 is not declared \(declared: 200, 4XX\)/],
  ],
  [rec('GET', '/things/1', 200, THING, 'text/html'), [/media type text\/html is not declared/]],
  [
    rec('DELETE', '/things/1', 204, { id: 1 }, json),
    [/a application\/json body where 204 declares none/],
  ],
  [
    rec('GET', '/things/1', 200, THING, json, {
      headers: { 'content-type': json, 'retry-after': 'soon' },
    }),
    [/header Retry-After must be integer/],
  ],
  [
    rec('GET', '/things/2', 404, { status: 400, title: 'x' }, problemJson),
    [/the problem's status 400 is not the answer's 404/],
  ],
  [
    rec('PUT', '/things/1', 405, { status: 405, title: 'x' }, problemJson),
    [/wrong-method PUT \/things\/\{id\} -> 405/, /a 405 without an Allow header/],
  ],
  [
    rec('PUT', '/things/1', 404, { status: 404, title: 'x' }, problemJson),
    [/answered 404, not 405/],
  ],
  [
    rec('GET', '/nope', 200, { status: 200, title: 'x' }, json),
    [/answered 200, not 404/, /not application\/problem\+json/],
  ],
];

function runDir(files: Record<string, ResponseRecord[]>): string {
  const dir = mkdtempSync(join(tmpdir(), 'vg-responses-check-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'openapi.json'), JSON.stringify(DOCUMENT));
  for (const [name, records] of Object.entries(files)) {
    writeFileSync(join(dir, name), records.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
  return dir;
}

async function checker(dir: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [
      CHECKER,
      dir,
      join(dir, 'openapi.json'),
    ]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('the responses check', () => {
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('matches paths to their templates, the most literal first, segments decoded', () => {
    const checker = new ResponseChecker(DOCUMENT);
    assert.equal(checker.matchPath('/things/special'), '/things/special');
    assert.equal(checker.matchPath('/things/42'), '/things/{id}');
    assert.equal(checker.matchPath('/things/%73pecial'), '/things/special');
    assert.equal(checker.matchPath('/things/'), undefined);
    assert.equal(checker.matchPath('/things/1/more'), undefined);
  });

  it('passes a conforming run and counts what it validated, checked and skipped by which rule', () => {
    const result = new ResponseChecker(DOCUMENT).check(
      GOOD.map((record, i) => ({ record, where: `responses-1.jsonl:${i + 1}` })),
    );
    assert.deepEqual(result.mismatches, []);
    assert.equal(result.read, GOOD.length);
    assert.equal(result.validated, 4); // the thing, the 404, the 405 and the unknown path's problems
    assert.equal(result.checked, 3); // HEAD, text/plain, 204
    assert.deepEqual(result.skipped, { graphql: 1, docs: 1, partial: 1 });
    assert.deepEqual(result.byRule, { operation: 5, 'wrong-method': 1, 'unknown-path': 1 });
    assert.deepEqual(result.unexercised, []);
  });

  it('reports each kind of mismatch, and the checker exits non-zero listing them', async () => {
    for (const [record, messages] of BAD) {
      const { code, out } = await checker(runDir({ 'responses-1.jsonl': [record] }));
      assert.equal(code, 1, `${JSON.stringify(record)}: ${out}`);
      assert.match(out, /responses check: FAILED, 1 responses break/);
      for (const message of messages) assert.match(out, message);
    }
    // The same mismatch twice is listed once, with its count.
    const twice = rec('GET', '/things/1', 200, { ...THING, id: 'x' }, json);
    const { code, out } = await checker(runDir({ 'responses-1.jsonl': [twice, twice] }));
    assert.equal(code, 1, out);
    assert.match(out, /FAILED, 2 responses break[\s\S]*-> 200 \(2 times: responses-1\.jsonl:1/);
  });

  it('a clean run directory passes with its counts; one that recorded nothing fails', async () => {
    const clean = await checker(
      runDir({ 'responses-1.jsonl': GOOD.slice(0, 5), 'responses-2.jsonl': GOOD.slice(5) }),
    );
    assert.equal(clean.code, 0, clean.out);
    assert.match(clean.out, /10 responses read; 4 JSON bodies validated/);
    assert.match(clean.out, /skipped \(docs 1, graphql 1, partial 1\); 0 mismatches/);
    const empty = await checker(runDir({}));
    assert.equal(empty.code, 1);
    assert.match(empty.out, /recorded no responses/);
  });
});
