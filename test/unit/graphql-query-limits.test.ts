/**
 * The memoised limit walk of query-limits.ts on the gateway's own schema
 * (built from the code, nothing running): its cost is the one
 * graphql-query-complexity gave with the same estimators wherever that
 * library answers at all, and it measures fragment doubling exactly without
 * expanding it, refuses cycles, honours @skip/@include and variables.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { parse, type GraphQLSchema } from 'graphql';
import { fieldExtensionsEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import { generateGraphqlSchema } from '#src/api-contract.js';
import {
  checkDocumentLimits,
  checkQueryLimits,
  type QueryLimits,
} from '#src/graphql/query-limits.js';

const OPEN: QueryLimits = {
  maxDepth: 100,
  maxCost: 10,
  maxAliases: Number.MAX_SAFE_INTEGER,
  maxDirectives: Number.MAX_SAFE_INTEGER,
  introspection: true,
};

describe('GraphQL query limits', () => {
  let schema: GraphQLSchema;
  before(async () => {
    schema = await generateGraphqlSchema();
  });

  /** The cost the walk finds (maxCost 10 makes it report any cost over 10). */
  function cost(query: string, variables: Record<string, unknown> = {}): number {
    const error = checkQueryLimits({ schema, document: parse(query), variables }, OPEN);
    const limit = error?.extensions.limit as { name: string; actual: number } | undefined;
    assert.equal(limit?.name, 'cost', error?.message);
    return limit.actual;
  }

  it('costs what graphql-query-complexity estimated, connections × first included', () => {
    for (const [query, variables] of [
      ['{ hosts(first: 10) { edges { node { name } } } }', {}],
      ['query($n: Int) { hosts(first: $n) { edges { cursor node { name } } } }', { n: 250 }],
      [
        '{ host(name: "a") { domains(first: 50) { totalCount edges { node { name disks { target chain { path } } snapshots { name } } } } } }',
        {},
      ],
      [
        '{ host(name: "a") { pools { edges { node { name volumes(first: 20) { edges { node { name } } } } } } } }',
        {},
      ],
      [
        'query { a: hosts { ...H } b: hosts(first: 3) { ...H } } fragment H on HostsConnection { edges { node { name ... on Host { uri } } } }',
        {},
      ],
    ] as const) {
      const expected = getComplexity({
        schema,
        query: parse(query),
        variables,
        estimators: [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })],
      });
      assert.ok(expected > 10, query);
      assert.equal(cost(query, variables), expected, query);
    }
  });

  it('measures 2^40 fields of fragment doubling exactly, without expanding them', () => {
    const lines = ['query { ...F0 }'];
    for (let i = 0; i < 40; i++)
      lines.push(`fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
    lines.push('fragment F40 on Query { a: __typename }');
    assert.equal(cost(lines.join('\n')), 2 ** 40);
    const aliases = checkQueryLimits(
      { schema, document: parse(lines.join('\n')) },
      { ...OPEN, maxAliases: 100 },
    );
    assert.deepEqual(aliases?.extensions.limit, { name: 'aliases', maximum: 100, actual: 2 ** 40 });
  });

  it('refuses a fragment cycle, before validation as well', () => {
    const document = parse(
      'query { ...A } fragment A on Query { __typename ...B } fragment B on Query { ...C } fragment C on Query { ...A }',
    );
    for (const error of [
      checkQueryLimits({ schema, document }, OPEN),
      checkDocumentLimits(schema, document, undefined, OPEN),
    ]) {
      assert.match(error?.message ?? '', /A → B → C → A/);
    }
  });

  it('counts nothing under @skip(if: true) or @include(if: false), with variables', () => {
    const q =
      'query($s: Boolean!) { hosts(first: 100) @skip(if: $s) { edges { cursor } } x: hosts(first: 5) { edges { cursor } } }';
    assert.equal(cost(q, { s: false }), 1 + 100 * 2 + 1 + 5 * 2);
    assert.equal(cost(q, { s: true }), 1 + 5 * 2);
  });

  it('refuses variables that do not coerce instead of guessing their cost', () => {
    const error = checkQueryLimits(
      {
        schema,
        document: parse('query($n: Int) { hosts(first: $n) { edges { cursor } } }'),
        variables: { n: 'all of them' },
      },
      OPEN,
    );
    assert.match(error?.message ?? '', /\$n/);
  });

  it('counts introspection by the schema’s sizes, and refuses it when off', () => {
    const types = Object.keys(schema.getTypeMap()).length;
    assert.equal(cost('{ __schema { types { name } } }'), 1 + (1 + types * 1));
    const off = checkQueryLimits(
      { schema, document: parse('{ __schema { queryType { name } } }') },
      { ...OPEN, introspection: false },
    );
    assert.match(off?.message ?? '', /GRAPHQL_INTROSPECTION/);
  });
});
