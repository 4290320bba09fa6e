/**
 * npm run bench:graphql — the CPU time one request of each GraphQL bomb of
 * issue #9 costs the gateway (fragment doubling at 2^30, 10,000 aliases,
 * aliased introspection, deep nesting, huge documents…), with and without a
 * token, against an app in this process (Fastify's inject: no sockets, so
 * the process's CPU time is the gateway's work on the request). Twice: with
 * the defaults, and with introspection on and the document limits raised so
 * that the bombs reach the operation limits. The target is under 100 ms of
 * CPU for each with the defaults; with documents allowed up to a megabyte,
 * parsing a 30,000-token document alone costs tens of ms, which is the price
 * of raising GRAPHQL_MAX_TOKENS that the second run shows. Prints medians and maxima of BENCH_ROUNDS (10) rounds after
 * two warm-up requests; asserts nothing.
 */
import { Writable } from 'node:stream';
import { getIntrospectionQuery, parse, print, type FieldNode } from 'graphql';
import type { OperationDefinitionNode } from 'graphql';
import { Redis } from 'ioredis';
import { createLogger } from '#src/common/logging/logger.js';
import { loadConfig } from '#src/config/config.js';
import { BENCH_LIMITS } from './bench-util.js';
import { createApp } from '#src/create-app.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const TARGET_MS = 100;
const TOKEN = `bench-graphql-${process.pid}-0123456789abcdef`;
const PREFIX = `vgbenchgql:${process.pid}:`;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

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

function aliasedIntrospection(times: number): string {
  const [operation, ...fragments] = parse(getIntrospectionQuery()).definitions;
  const schema = (operation as OperationDefinitionNode).selectionSet.selections[0] as FieldNode;
  return [
    `query { ${Array.from({ length: times }, (_, i) => `s${i}: __schema { ...Schema }`).join(' ')} }`,
    `fragment Schema on __Schema ${print(schema.selectionSet!)}`,
    ...fragments.map((f) => print(f)),
  ].join('\n');
}

/** Distinct fragments each selecting the same field: compared pairwise by graphql-js's validation. */
function sameFieldFragments(n: number): string {
  const spreads = Array.from({ length: n }, (_, i) => `...F${i}`).join(' ');
  const defs = Array.from(
    { length: n },
    (_, i) => `fragment F${i} on Query { hosts { edges { cursor } } }`,
  );
  return [`{ ${spreads} }`, ...defs].join('\n');
}

const BOMBS: Array<[string, string]> = [
  ['fragment doubling 2^30', fragmentDoubling(30)],
  ['fragment doubling 2^30, aliased leaf', fragmentDoubling(30, 'a: __typename')],
  ['fragment cycle', 'query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }'],
  ['10,000 aliases', aliases(10_000)],
  ['1,500 aliased __schema', aliases(1_500, '__schema { types { name fields { name } } }')],
  ['15 aliased full introspections', aliasedIntrospection(15)],
  ['100,000 nested braces', `${'{ hosts '.repeat(100_000)}${'}'.repeat(100_000)}`],
  ['900 KB comment', `# ${'x'.repeat(900_000)}\n{ __typename }`],
  ['5,000 repeated fields', `{ ${'hosts { edges { cursor } } '.repeat(5000)} }`],
  ['280 fragments, same field', sameFieldFragments(280)],
  ['(a plain query, for scale)', '{ __typename }'],
];

interface Row {
  config: string;
  bomb: string;
  token: string;
  status: number;
  code: string;
  medianMs: number;
  maxMs: number;
}

async function measure(config: string, env: Record<string, string>): Promise<Row[]> {
  const appConfig = loadConfig({
    REDIS_URL,
    VIRTGATE_REDIS_PREFIX: PREFIX,
    VIRTGATE_ADMIN_TOKEN: TOKEN,
    LOG_LEVEL: 'warn',
    // The bombs are measured, not the limits: half of them come without a token, on purpose.
    ...BENCH_LIMITS,
    AUTH_FAILURES_PER_ADDRESS: '0',
    ...env,
  });
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const app = await createApp(appConfig, {
    logger: createLogger(appConfig, sink),
    adminTokenOutput: { write: () => undefined },
  });
  const fastify = app.getHttpAdapter().getInstance();
  const rows: Row[] = [];
  try {
    for (const [bomb, query] of BOMBS) {
      for (const token of [TOKEN, null]) {
        const send = () =>
          fastify.inject({
            method: 'POST',
            url: '/graphql',
            headers: {
              'content-type': 'application/json',
              ...(token ? { authorization: `Bearer ${token}` } : {}),
            },
            payload: JSON.stringify({ query }),
          });
        for (let i = 0; i < 2; i++) await send();
        const cpu: number[] = [];
        let last = await send();
        for (let i = 0; i < ROUNDS; i++) {
          const before = process.cpuUsage();
          last = await send();
          const used = process.cpuUsage(before);
          cpu.push((used.user + used.system) / 1000);
        }
        cpu.sort((a, b) => a - b);
        const body = last.json<{ errors?: Array<{ extensions?: { code?: string } }> }>();
        rows.push({
          config,
          bomb,
          token: token ? 'admin' : 'none',
          status: last.statusCode,
          code: body.errors?.[0]?.extensions?.code ?? '-',
          medianMs: cpu[Math.floor(cpu.length / 2)]!,
          maxMs: cpu.at(-1)!,
        });
      }
    }
  } finally {
    await app.close();
  }
  return rows;
}

const rows = [
  ...(await measure('defaults', {})),
  ...(await measure('introspection on, documents up to 1 MB', {
    GRAPHQL_INTROSPECTION: 'true',
    GRAPHQL_MAX_TOKENS: '1000000',
    GRAPHQL_MAX_DOCUMENT_BYTES: '1000000',
  })),
];
const redis = new Redis(REDIS_URL);
try {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
} finally {
  await redis.quit();
}

const width = Math.max(...BOMBS.map(([name]) => name.length));
let config = '';
for (const r of rows) {
  if (r.config !== config) {
    config = r.config;
    console.log(
      `\nGraphQL bombs, ${config}: CPU per request (median / max of ${ROUNDS}), target < ${TARGET_MS} ms`,
    );
  }
  const flag = r.maxMs < TARGET_MS ? '' : '  OVER TARGET';
  console.log(
    `  ${r.bomb.padEnd(width)}  token ${r.token.padEnd(5)}  ${r.status} ${r.code.padEnd(17)}  ${r.medianMs.toFixed(1).padStart(6)} / ${r.maxMs.toFixed(1).padStart(6)} ms${flag}`,
  );
}
