/**
 * GraphQL that cannot be knocked over: the bombs of issue #9 (fragment
 * doubling at 2^30, 10,000 aliases, aliased introspection, deep nesting,
 * huge documents, plus cycles, directives and repeated fields), each sent
 * with and without a token, each answered with a 4xx and its code, nothing
 * run. How much CPU each costs is measured by
 * scripts/bench/graphql-bombs-bench.ts, not here.
 *
 * Three apps in turn: the defaults (introspection off, a document of at most
 * 2,000 tokens: most bombs stop at the size check); one with introspection on
 * and document limits raised far enough that the bombs reach the operation
 * limits; one with a tiny cost budget, for the mutations of one request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  getIntrospectionQuery,
  parse,
  print,
  type DefinitionNode,
  type FieldNode,
  type OperationDefinitionNode,
} from 'graphql';
import request from 'supertest';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';
import { codes, countRpcs, graphql, total, type GraphqlBody } from './graphql-helpers.js';

const ADMIN = 'graphql-limits-admin-token-0123456789';
const TOKENS = [ADMIN, null, 'not-a-token-of-this-gateway-000'] as const;
/** Every bomb is also sent without a token: the failed-authentication limit (tested in limits.test.ts) is lifted. */
const NO_AUTH_FAILURE_LIMIT = { AUTH_FAILURES_PER_ADDRESS: '0' };
/** The calls of opening a libvirt connection, which the app's pool makes in the background. */
const HANDSHAKE = [
  'authList',
  'authPolkit',
  'connectOpen',
  'connectSupportsFeature',
  // The host's event connection registering for its events, once it opens.
  'connectDomainEventCallbackRegisterAny',
];

/** `query { ...F0 }` where each of `levels` fragments spreads the next twice: 2^levels leaves. */
function fragmentDoubling(levels: number, leaf = '__typename'): string {
  const lines = ['query Bomb { ...F0 }'];
  for (let i = 0; i < levels; i++)
    lines.push(`fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
  lines.push(`fragment F${levels} on Query { ${leaf} }`);
  return lines.join('\n');
}

function aliases(n: number, field = '__typename'): string {
  return `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;
}

/** `{ a: hosts { a: hosts … } }` `levels` deep: brackets, not a valid operation. */
function nested(levels: number): string {
  return `${'{ hosts '.repeat(levels)}${'}'.repeat(levels)}`;
}

/** A valid operation 9 fields deep. */
const DEEP = `{ hosts { edges { node { domains { edges { node { disks { chain { path } } } } } } } } }`;

/** The whole schema `times` times, aliased: getIntrospectionQuery's selection as a fragment. */
function aliasedIntrospection(times: number): string {
  const doc = parse(getIntrospectionQuery());
  const [operation, ...fragments] = doc.definitions as [
    OperationDefinitionNode,
    ...DefinitionNode[],
  ];
  const schemaField = operation.selectionSet.selections[0] as FieldNode;
  const aliased = Array.from({ length: times }, (_, i) => `s${i}: __schema { ...Schema }`);
  return [
    `query { ${aliased.join(' ')} }`,
    `fragment Schema on __Schema ${print(schemaField.selectionSet!)}`,
    ...fragments.map((f) => print(f)),
  ].join('\n');
}

/** The answer's status and first error code, for both shapes (GraphQL's or a problem document). */
function outcome(res: request.Response): { status: number; code: string | undefined } {
  const body = res.body as GraphqlBody & { code?: string };
  return { status: res.status, code: body.code ?? codes(body)[0] };
}

describe('GraphQL limits', () => {
  const prefix = uniquePrefix(import.meta.url);
  let t: TestApp;

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
  });

  /**
   * Sends `query` with each token; the admin's gets `status` and `code`,
   * the others 401 UNAUTHENTICATED with the challenge. No libvirt call.
   */
  async function refusedForAll(
    query: string,
    status: number,
    code: string,
    check: (body: GraphqlBody) => void = () => undefined,
    variables?: Record<string, unknown>,
  ): Promise<void> {
    const calls = await countRpcs(async () => {
      for (const token of TOKENS) {
        const res = await graphql(t, token, query, variables);
        if (token === ADMIN) {
          assert.deepEqual(outcome(res), { status, code }, JSON.stringify(res.body).slice(0, 500));
          assert.equal(res.body.data ?? null, null);
          check(res.body as GraphqlBody);
        } else {
          assert.deepEqual(outcome(res), { status: 401, code: 'UNAUTHENTICATED' });
          assert.equal(res.headers['www-authenticate'], 'Bearer realm="virtgate"');
          assert.equal(res.body.data, null);
          assert.match(res.body.errors[0].extensions.requestId, /./);
        }
      }
    });
    // Connections the app opens in the background (its pool, its event connection) say hello; nothing else.
    for (const name of HANDSHAKE) calls.delete(name);
    assert.equal(total(calls), 0, JSON.stringify(Object.fromEntries(calls)));
  }

  const limit = (name: string, maximum: number, actual?: number) => (body: GraphqlBody) => {
    const got = body.errors![0]!.extensions.limit!;
    assert.equal(got.name, name, JSON.stringify(body));
    assert.equal(got.maximum, maximum);
    if (actual !== undefined) assert.equal(got.actual, actual);
    else assert.ok(got.actual > maximum, JSON.stringify(got));
  };

  describe('with the defaults (introspection off, 2,000 tokens, 32 KiB)', () => {
    before(async () => {
      t = await startApp(
        testConfig(prefix, {
          VIRTGATE_ADMIN_TOKEN: ADMIN,
          // No worker: its event publisher lists the host's domains in the background.
          ROLE: 'api',
          ...NO_AUTH_FAILURE_LIMIT,
        }),
      );
    });
    after(async () => t.close());

    it('answers a plain query, so that the refusals below are the limits', async () => {
      const res = await graphql(t, ADMIN, '{ __typename }');
      assert.deepEqual(res.body, { data: { __typename: 'Query' } });
    });

    it('refuses fragment doubling at 2^30 by its cost, counted without expanding it', async () => {
      await refusedForAll(
        fragmentDoubling(30),
        400,
        'INVALID_ARGUMENT',
        limit('cost', 250000, 2 ** 30),
      );
      await refusedForAll(
        fragmentDoubling(30, 'a: __typename'),
        400,
        'INVALID_ARGUMENT',
        limit('aliases', 100, 2 ** 30),
      );
    });

    it('refuses a fragment cycle as an error, not by skipping it', async () => {
      await refusedForAll(
        'query { ...A } fragment A on Query { ...B } fragment B on Query { __typename ...A }',
        400,
        'INVALID_ARGUMENT',
        (body) => assert.match(body.errors![0]!.message, /A → B → A/),
      );
    });

    it('refuses 10,000 aliases by the document size before parsing, and 101 by the alias limit', async () => {
      await refusedForAll(aliases(10_000), 413, 'PAYLOAD_TOO_LARGE', limit('documentBytes', 32768));
      await refusedForAll(aliases(1_000), 413, 'PAYLOAD_TOO_LARGE', limit('tokens', 2000, 2001));
      await refusedForAll(aliases(101), 400, 'INVALID_ARGUMENT', limit('aliases', 100, 101));
      const ok = await graphql(t, ADMIN, aliases(100));
      assert.equal(ok.status, 200);
      assert.equal(Object.keys(ok.body.data).length, 100);
    });

    it('refuses introspection, aliased or not', async () => {
      const off = (body: GraphqlBody) =>
        assert.match(body.errors![0]!.message, /introspection .*GRAPHQL_INTROSPECTION/);
      await refusedForAll(getIntrospectionQuery(), 400, 'INVALID_ARGUMENT', off);
      await refusedForAll(aliases(50, '__schema { types { name } }'), 400, 'INVALID_ARGUMENT', off);
      await refusedForAll('{ __type(name: "Query") { name } }', 400, 'INVALID_ARGUMENT', off);
      await refusedForAll(
        aliases(1_500, '__schema { types { name fields { name } } }'),
        413,
        'PAYLOAD_TOO_LARGE',
      );
    });

    it('refuses deep nesting by the brackets, before parsing', async () => {
      await refusedForAll(nested(50), 413, 'PAYLOAD_TOO_LARGE', limit('nesting', 44, 45));
      await refusedForAll(nested(100_000), 413, 'PAYLOAD_TOO_LARGE', limit('documentBytes', 32768));
      await refusedForAll(
        `{ host(name: ${'['.repeat(900)}"x"${']'.repeat(900)}) { name } }`,
        413,
        'PAYLOAD_TOO_LARGE',
        limit('nesting', 44, 45),
      );
    });

    it('refuses huge documents by their size, comments included', async () => {
      await refusedForAll(
        `# ${'x'.repeat(40_000)}\n{ __typename }`,
        413,
        'PAYLOAD_TOO_LARGE',
        limit('documentBytes', 32768),
      );
      // Over the body limit of the server (1 MiB): refused while it is read.
      for (const token of TOKENS) {
        const res = await graphql(t, token, `{ __typename } # ${'x'.repeat(1_100_000)}`);
        assert.deepEqual(
          outcome(res),
          token === ADMIN
            ? { status: 413, code: 'PAYLOAD_TOO_LARGE' }
            : { status: 401, code: 'UNAUTHENTICATED' },
        );
      }
    });

    it('refuses too many directives and a field repeated in one selection set', async () => {
      await refusedForAll(
        `{ ${Array.from({ length: 51 }, (_, i) => `a${i % 50}: __typename @include(if: true)`).join(' ')} }`,
        400,
        'INVALID_ARGUMENT',
        limit('directives', 50, 51),
      );
      await refusedForAll(
        `{ ${'hosts { edges { cursor } } '.repeat(21)} }`,
        400,
        'INVALID_ARGUMENT',
        limit('repeats', 20, 21),
      );
      await refusedForAll(
        `{ ${'... { hosts { edges { cursor } } } '.repeat(21)} }`,
        400,
        'INVALID_ARGUMENT',
        limit('repeats', 20, 21),
      );
    });

    it('accepts only JSON POSTs (CSRF), a GET with the token, and no batches', async () => {
      for (const [type, body] of [
        ['text/plain', JSON.stringify({ query: '{ __typename }' })],
        ['application/x-www-form-urlencoded', 'query=%7B__typename%7D'],
        ['multipart/form-data; boundary=x', '--x\r\n\r\n{ __typename }\r\n--x--\r\n'],
      ] as const) {
        const res = await request(t.server)
          .post('/graphql')
          .set('authorization', `Bearer ${ADMIN}`)
          .set('content-type', type)
          .send(body);
        assert.deepEqual(outcome(res), { status: 415, code: 'UNSUPPORTED' }, type);
        assert.match(res.body.errors[0].message, /application\/json/);
        const anonymous = await request(t.server)
          .post('/graphql')
          .set('content-type', type)
          .send(body);
        assert.deepEqual(outcome(anonymous), { status: 401, code: 'UNAUTHENTICATED' }, type);
      }
      const graphqlType = await request(t.server)
        .post('/graphql')
        .set('authorization', `Bearer ${ADMIN}`)
        .set('content-type', 'application/graphql')
        .send('{ __typename }');
      assert.deepEqual(graphqlType.body, { data: { __typename: 'Query' } });

      const get = await request(t.server)
        .get('/graphql?query=%7B__typename%7D')
        .set('authorization', `Bearer ${ADMIN}`);
      assert.deepEqual(get.body, { data: { __typename: 'Query' } });
      const getAnonymous = await request(t.server)
        .get('/graphql?query=%7B__typename%7D')
        .set('x-requested-with', 'XMLHttpRequest');
      assert.deepEqual(outcome(getAnonymous), { status: 401, code: 'UNAUTHENTICATED' });
      const getBomb = await request(t.server)
        .get(`/graphql?query=${encodeURIComponent(fragmentDoubling(30))}`)
        .set('authorization', `Bearer ${ADMIN}`);
      assert.deepEqual(outcome(getBomb), { status: 400, code: 'INVALID_ARGUMENT' });

      const batch = await request(t.server)
        .post('/graphql')
        .set('authorization', `Bearer ${ADMIN}`)
        .set('content-type', 'application/json')
        .send([{ query: '{ __typename }' }, { query: '{ __typename }' }]);
      assert.equal(batch.status, 400, JSON.stringify(batch.body));
    });
  });

  describe('with introspection on and document limits raised', () => {
    before(async () => {
      t = await startApp(
        testConfig(prefix, {
          ...NO_AUTH_FAILURE_LIMIT,
          VIRTGATE_ADMIN_TOKEN: ADMIN,
          ROLE: 'api',
          GRAPHQL_INTROSPECTION: 'true',
          GRAPHQL_MAX_TOKENS: '1000000',
          GRAPHQL_MAX_DOCUMENT_BYTES: '1000000',
        }),
      );
    });
    after(async () => t.close());

    it('answers introspection, and counts it in the cost', async () => {
      const res = await graphql(t, ADMIN, getIntrospectionQuery());
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
      assert.ok(res.body.data.__schema.types.length > 10);
      const anonymous = await graphql(t, null, getIntrospectionQuery());
      assert.deepEqual(outcome(anonymous), { status: 401, code: 'UNAUTHENTICATED' });
      // The whole schema, aliased: once is within the budget, 15 times not.
      const once = await graphql(t, ADMIN, aliasedIntrospection(1));
      assert.equal(once.status, 200, JSON.stringify(once.body).slice(0, 500));
      await refusedForAll(aliasedIntrospection(15), 400, 'INVALID_ARGUMENT', limit('cost', 250000));
    });

    it('refuses 1,500 aliased introspections and 10,000 aliases by the alias limit', async () => {
      await refusedForAll(
        aliases(1_500, '__schema { types { name fields { name } } }'),
        400,
        'INVALID_ARGUMENT',
        limit('aliases', 100, 1500),
      );
      await refusedForAll(aliases(10_000), 400, 'INVALID_ARGUMENT', limit('aliases', 100, 10000));
    });

    it('refuses the bombs that get past the document limits by the operation limits', async () => {
      await refusedForAll(
        fragmentDoubling(30),
        400,
        'INVALID_ARGUMENT',
        limit('cost', 250000, 2 ** 30),
      );
      await refusedForAll(nested(100_000), 413, 'PAYLOAD_TOO_LARGE', limit('nesting', 44, 45));
      await refusedForAll(
        `{ ${'hosts { edges { cursor } } '.repeat(5000)} }`,
        400,
        'INVALID_ARGUMENT',
        limit('repeats', 20, 21),
      );
      // A page size given as a variable counts at its value.
      await refusedForAll(
        'query($n: Int) { hosts(first: $n) { edges { node { name domains(first: $n) { edges { cursor } } } } } }',
        400,
        'INVALID_ARGUMENT',
        limit('cost', 250000, 1 + 500 * (1 + 1 + 1 + (1 + 500 * 2))),
        { n: 500 },
      );
    });
  });

  describe('GRAPHQL_MAX_DEPTH=8, GRAPHQL_MAX_COST=10', () => {
    before(async () => {
      t = await startApp(
        testConfig(prefix, {
          ...NO_AUTH_FAILURE_LIMIT,
          VIRTGATE_ADMIN_TOKEN: ADMIN,
          ROLE: 'api',
          GRAPHQL_MAX_DEPTH: '8',
          GRAPHQL_MAX_COST: '10',
        }),
      );
    });
    after(async () => t.close());

    it('refuses an operation nested deeper than the limit', async () => {
      await refusedForAll(DEEP, 400, 'INVALID_ARGUMENT', limit('depth', 8, 9));
      await refusedForAll(nested(41), 413, 'PAYLOAD_TOO_LARGE', limit('nesting', 40, 41));
    });

    it('runs one mutation, refuses eleven in one request (one budget) before any runs', async () => {
      const one = await graphql(t, ADMIN, 'mutation { deleteHost(name: "never-registered") }');
      assert.deepEqual(codes(one.body), ['NOT_FOUND'], 'it ran');
      const eleven = `mutation { ${Array.from({ length: 11 }, (_, i) => `d${i}: deleteHost(name: "never-registered")`).join(' ')} }`;
      const res = await graphql(t, ADMIN, eleven);
      assert.deepEqual(outcome(res), { status: 400, code: 'INVALID_ARGUMENT' });
      assert.deepEqual(res.body.errors[0].extensions.limit, {
        name: 'cost',
        maximum: 10,
        actual: 11,
      });
      assert.equal(res.body.errors.length, 1, 'none ran');
    });
  });
});
