/**
 * Access control from the live route table and schema, not from a hand
 * list: every REST route and every root GraphQL field is tried without a
 * token, with a bad, an expired and a revoked token, with the role just
 * below the one it declares, and with a token scoped to another host.
 * Against real Redis and libvirtd's test driver.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import request from 'supertest';
import {
  AccessDeclarations,
  type DeclaredHandler,
} from '#src/common/guards/access-declarations.js';
import { CALLER_ROLES, type CallerRole } from '#src/common/auth/caller.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';
import { waitFor } from '../support/wait.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'access-test-admin-token-0123456789';

/** Values for path parameters: names the test driver has, so a 404 is not from the target. */
const PARAMS: Record<string, string> = {
  host: 'local',
  domain: 'test',
  target: 'vda',
  pool: 'default-pool',
  volume: 'none',
  id: randomUUID(),
  action: 'start',
};

function pathOf(route: { path: string }): string {
  return route.path.replace(/:(\w+)/g, (_m, name: string) => PARAMS[name] ?? 'x');
}

/** The role just below `role`, or null for the lowest. */
function below(role: CallerRole): CallerRole | null {
  const i = CALLER_ROLES.indexOf(role);
  return i > 0 ? CALLER_ROLES[i - 1]! : null;
}

describe('access control over the live route table', () => {
  let t: TestApp;
  let handlers: DeclaredHandler[];
  const tokens: Partial<Record<CallerRole | 'expired' | 'revoked' | 'elsewhere', string>> = {};

  const send = (method: string, path: string, token: string | null) => {
    let req = request(t.server)[method.toLowerCase() as 'get' | 'post' | 'delete'](path);
    if (token !== null) req = req.set('authorization', `Bearer ${token}`);
    return method === 'GET' || method === 'DELETE' ? req : req.send({});
  };
  const makeToken = async (body: object): Promise<{ id: string; token: string }> => {
    const res = await send('POST', '/v1/tokens', ADMIN).send(body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { id: string; token: string };
  };

  before(async () => {
    t = await startApp(
      testConfig(prefix, {
        VIRTGATE_ADMIN_TOKEN: ADMIN,
        ROLE: 'api',
        LIBVIRT_DEFAULT_URI: 'test+tcp://127.0.0.1/default',
        // This test sends hundreds of refused tokens on purpose; limits.test.ts tests the limit.
        AUTH_FAILURES_PER_ADDRESS: '0',
      }),
    );
    handlers = t.app.get(AccessDeclarations).handlers();
    tokens.admin = ADMIN;
    for (const role of ['viewer', 'operator'] as const) {
      tokens[role] = (await makeToken({ name: role, role })).token;
    }
    tokens.elsewhere = (
      await makeToken({ name: 'elsewhere', role: 'admin', scopes: [{ host: 'elsewhere' }] })
    ).token;
    const revoked = await makeToken({ name: 'revoked', role: 'admin' });
    assert.equal((await send('DELETE', `/v1/tokens/${revoked.id}`, ADMIN)).status, 204);
    tokens.revoked = revoked.token;
    const expiring = await makeToken({
      name: 'expired',
      role: 'admin',
      expiresAt: new Date(Date.now() + 3000).toISOString(),
    });
    assert.equal((await send('GET', '/v1/me', expiring.token)).status, 200);
    // A token can only be made to expire later: it is the expired one once refused for it.
    await waitFor(
      async () => (await send('GET', '/v1/me', expiring.token)).status === 401,
      'the expiring token to be refused',
    );
    tokens.expired = expiring.token;
  });

  after(async () => {
    await closeAllApps();
    await deleteKeys(prefix);
  });

  it('finds the routes and fields, and each declares its access', () => {
    const rest = handlers.filter((h) => h.kind === 'rest');
    const graphql = handlers.filter((h) => h.kind === 'graphql');
    assert.ok(rest.length >= 30, `only ${rest.length} REST routes found`);
    assert.ok(graphql.length >= 15, `only ${graphql.length} GraphQL fields found`);
    assert.deepEqual(
      handlers.filter((h) => h.access === null),
      [],
    );
    assert.deepEqual(
      handlers.filter((h) => h.access === 'public').map((h) => h.route?.path),
      ['/health/live', '/health/ready'],
    );
  });

  it('refuses every REST route without a token, or with a bad, expired or revoked one: 401', async () => {
    for (const h of handlers.filter((x) => x.kind === 'rest' && x.access !== 'public')) {
      const { method } = h.route!;
      const path = pathOf(h.route!);
      for (const token of [null, 'vg_not-a-token', tokens.expired!, tokens.revoked!]) {
        const res = await send(method, path, token);
        assert.equal(
          res.status,
          401,
          `${method} ${path} with ${token ?? 'no token'}: ${res.status}`,
        );
        assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
        assert.match(res.headers['www-authenticate'] ?? '', /^Bearer /);
      }
    }
  });

  it('refuses every REST route to the role below the one it declares: 403', async () => {
    let tried = 0;
    for (const h of handlers.filter((x) => x.kind === 'rest' && x.access !== 'public')) {
      const lower = below(h.access as CallerRole);
      if (lower === null) continue;
      const { method } = h.route!;
      const path = pathOf(h.route!);
      const res = await send(method, path, tokens[lower]!);
      assert.equal(res.status, 403, `${method} ${path} as ${lower}: ${res.status} ${res.text}`);
      assert.equal(res.body.code, 'FORBIDDEN');
      tried++;
    }
    assert.ok(tried >= 15, `only ${tried} routes need more than viewer`);
  });

  it('answers every route under a host outside the scope as for an unknown host: 404', async () => {
    let tried = 0;
    for (const h of handlers.filter((x) => x.kind === 'rest' && x.route!.path.includes(':host'))) {
      const { method } = h.route!;
      const path = pathOf(h.route!);
      const res = await send(method, path, tokens.elsewhere!);
      assert.equal(
        res.status,
        404,
        `${method} ${path} scoped elsewhere: ${res.status} ${res.text}`,
      );
      assert.equal(res.body.detail, "no host named 'local' is registered");
      tried++;
    }
    assert.ok(tried >= 20, `only ${tried} routes under a host`);
    const list = await send('GET', '/v1/hosts', tokens.elsewhere!);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.items, []);
    assert.equal(list.body.scopeFiltered, true);
    const all = await send('GET', '/v1/hosts', ADMIN);
    assert.equal(all.body.scopeFiltered, false);
    assert.ok(all.body.items.some((x: { name: string }) => x.name === 'local'));
  });

  it('records each token made and revoked in the audit trail, never the token', async () => {
    const res = await send('GET', '/v1/audit?action=token.create&limit=50', ADMIN);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.items.length, 5);
    for (const e of res.body.items) {
      assert.equal(e.result, 'accepted');
      assert.match(e.target, /^token:tok_/);
      assert.equal(e.actor.id, 'admin');
    }
    const revoked = await send('GET', '/v1/audit?action=token.revoke', ADMIN);
    assert.equal(revoked.body.items.length, 1);
    for (const token of Object.values(tokens)) assert.ok(!res.text.includes(token!));
  });

  describe('GraphQL', () => {
    let schema: GraphQLSchema;
    const roots: Array<{ op: 'query' | 'mutation'; field: GraphQLField<unknown, unknown> }> = [];
    /** Subscription fields: tried over the socket in graphql-subscriptions.test.ts. */
    let subscriptions: GraphQLField<unknown, unknown>[] = [];
    const gql = (token: string | null, query: string) => {
      let req = request(t.server).post('/graphql').set('content-type', 'application/json');
      if (token !== null) req = req.set('authorization', `Bearer ${token}`);
      return req.send({ query });
    };

    before(() => {
      schema = (
        t.app.getHttpAdapter().getInstance() as unknown as { graphql: { schema: GraphQLSchema } }
      ).graphql.schema;
      for (const f of Object.values(schema.getQueryType()!.getFields()))
        roots.push({ op: 'query', field: f });
      for (const f of Object.values(schema.getMutationType()!.getFields())) {
        roots.push({ op: 'mutation', field: f });
      }
      subscriptions = Object.values(schema.getSubscriptionType()?.getFields() ?? {});
    });

    /** The declared access of a root field, found by its resolver's field name. */
    const accessOf = (name: string): CallerRole | 'public' => {
      const h = handlers.find((x) => x.kind === 'graphql' && x.field === name);
      assert.ok(h, `no declaration found for GraphQL field ${name}`);
      return h.access as CallerRole | 'public';
    };

    it('has a declaration for every root field of the live schema', () => {
      assert.ok(roots.length >= 15);
      for (const r of roots) accessOf(r.field.name);
      assert.ok(subscriptions.length >= 2);
      for (const f of subscriptions) {
        const declared = handlers.some(
          (h) => h.kind === 'graphql' && h.field === f.name && h.access !== null,
        );
        assert.ok(declared, `no declaration found for subscription ${f.name}`);
      }
    });

    it('refuses every root field without a token or with a bad one: 401', async () => {
      for (const r of roots) {
        for (const token of [null, 'vg_not-a-token', tokens.revoked!]) {
          const res = await gql(token, operationOf(r.op, r.field, {}));
          assert.equal(res.status, 401, `${r.field.name} with ${token ?? 'no token'}: ${res.text}`);
          assert.equal(res.body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
        }
      }
    });

    it('refuses every root field to the role below the one it declares: FORBIDDEN', async () => {
      let tried = 0;
      for (const r of roots) {
        const lower = below(accessOf(r.field.name) as CallerRole);
        if (lower === null) continue;
        const res = await gql(tokens[lower]!, operationOf(r.op, r.field, {}));
        assert.equal(
          res.body.errors?.[0]?.extensions?.code,
          'FORBIDDEN',
          `${r.field.name} as ${lower}: ${res.text}`,
        );
        tried++;
      }
      assert.ok(tried >= 10, `only ${tried} fields need more than viewer`);
    });

    it('answers every field on a host outside the scope as for an unknown host: NOT_FOUND', async () => {
      let tried = 0;
      for (const r of roots) {
        if (!r.field.args.some((a) => a.name === 'host')) continue;
        const res = await gql(tokens.elsewhere!, operationOf(r.op, r.field, { host: 'local' }));
        assert.equal(
          res.body.errors?.[0]?.extensions?.code,
          'NOT_FOUND',
          `${r.field.name} scoped elsewhere: ${res.text}`,
        );
        tried++;
      }
      const host = await gql(tokens.elsewhere!, '{ host(name: "local") { name } }');
      assert.equal(host.body.errors?.[0]?.extensions?.code, 'NOT_FOUND');
      const hosts = await gql(
        tokens.elsewhere!,
        '{ hosts { edges { node { name } } scopeFiltered } }',
      );
      assert.deepEqual(hosts.body.data.hosts, { edges: [], scopeFiltered: true });
      assert.ok(tried >= 8, `only ${tried} fields take a host`);
    });
  });
});

/** A call of `field` with every required argument filled in (`given` first) and a minimal selection. */
function operationOf(
  op: 'query' | 'mutation',
  field: GraphQLField<unknown, unknown>,
  given: Record<string, string>,
): string {
  const args = field.args
    .filter((a) => isNonNullType(a.type) || a.name in given)
    .map(
      (a: GraphQLArgument) =>
        `${a.name}: ${a.name in given ? JSON.stringify(given[a.name]) : valueOf(a.type, a.name)}`,
    );
  const type = getNamedType(field.type);
  const selection = isObjectType(type) ? ' { __typename }' : '';
  return `${op} { ${field.name}${args.length ? `(${args.join(', ')})` : ''}${selection} }`;
}

/** A literal of GraphQL input type `type` that coerces: required fields filled, the rest left out. */
function valueOf(type: GraphQLInputType, name: string): string {
  if (isNonNullType(type)) return valueOf(type.ofType, name);
  if (isListType(type)) return `[${valueOf(type.ofType, name)}]`;
  if (isEnumType(type)) return type.getValues()[0]!.name;
  if (isInputObjectType(type)) {
    const fields = Object.values(type.getFields()).filter((f) => isNonNullType(f.type));
    return `{ ${fields.map((f) => `${f.name}: ${valueOf(f.type, f.name)}`).join(', ')} }`;
  }
  if (isScalarType(type)) {
    if (type.name === 'Int' || type.name === 'Float') return '1';
    if (type.name === 'Boolean') return 'false';
    if (type.name === 'ID' || name === 'id') return JSON.stringify(randomUUID());
    return JSON.stringify(PARAMS[name] ?? 'x');
  }
  return 'null';
}
