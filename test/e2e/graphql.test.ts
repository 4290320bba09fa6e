/**
 * GraphQL at /graphql against real Redis and libvirtd (the test driver over
 * TCP, registered through the API, and `local` = qemu:///system): hosts,
 * domains as a Relay connection walked page by page, disks, interfaces,
 * snapshots, pools and volumes, each equal to what REST answers; the error
 * codes in `extensions`; authentication; masking of unexpected errors; the
 * depth and cost limits (the others: graphql-limits.test.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DOMImplementation, XMLSerializer } from '@xmldom/xmldom';
import { GraphQLSchemaHost } from '@nestjs/graphql';
import { getIntrospectionQuery, lexicographicSortSchema, printSchema } from 'graphql';
import request from 'supertest';
import { generateGraphqlSchema } from '#src/api-contract.js';
import type { Redis } from 'ioredis';
import { LibvirtClient, type RemoteDomain, type RemoteStorageVol } from '#src/libvirt/index.js';
import { REDIS } from '#src/redis/redis.module.js';
import { redisKeys } from '#src/redis/keys.js';
import { testDriverDomainXml, volumeXml } from '../support/domain-xml.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  storeToken,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';
import {
  codes,
  countRpcs,
  graphql,
  richTestDomainXml,
  type GraphqlBody,
} from './graphql-helpers.js';

const ADMIN = 'graphql-test-admin-token-0123456789';
const USER = 'graphql-test-user-token-0123456789';
const DEFINED = 23;

function snapshotXml(name: string): string {
  const doc = new DOMImplementation().createDocument(null, 'domainsnapshot', null);
  const n = doc.createElement('name');
  n.appendChild(doc.createTextNode(name));
  doc.documentElement!.appendChild(n);
  return new XMLSerializer().serializeToString(doc);
}

describe('GraphQL', () => {
  const prefix = uniquePrefix(import.meta.url);
  const namePrefix = `vg-gql-${randomUUID().slice(0, 6)}-`;
  let t: TestApp;
  let client: LibvirtClient;
  const defined: RemoteDomain[] = [];
  let transient: RemoteDomain;
  let volume: RemoteStorageVol | undefined;
  const gql = (query: string, variables?: Record<string, unknown>) =>
    graphql(t, ADMIN, query, variables);
  const rest = (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`);

  before(async () => {
    await storeToken(prefix, USER, { id: 'user-1', role: 'operator' });
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    for (let i = 0; i < DEFINED; i++) {
      const name = `${namePrefix}${String(i).padStart(2, '0')}`;
      const xml = i < 3 ? richTestDomainXml(name, i) : testDriverDomainXml(name, 64 + i);
      defined.push((await client.rpc.domainDefineXmlFlags({ xml, flags: 0 })).dom);
    }
    await client.rpc.domainCreateWithFlags({ dom: defined[0]!, flags: 0 });
    await client.rpc.domainCreateWithFlags({ dom: defined[1]!, flags: 0 });
    await client.rpc.domainSuspend({ dom: defined[1]! });
    transient = (
      await client.rpc.domainCreateXml({
        xmlDesc: testDriverDomainXml(`${namePrefix}transient`, 64),
        flags: 0,
      })
    ).dom;
    await client.rpc.domainSnapshotCreateXml({
      dom: defined[2]!,
      xmlDesc: snapshotXml('first'),
      flags: 0,
    });
    const { pool } = await client.rpc.storagePoolLookupByName({ name: 'default-pool' });
    volume = (
      await client.rpc.storageVolCreateXml({
        pool,
        xml: volumeXml(`${namePrefix}vol`, 8),
        flags: 0,
      })
    ).vol;
  });

  after(async () => {
    if (volume) await client.rpc.storageVolDelete({ vol: volume, flags: 0 }).catch(() => undefined);
    await client?.rpc.domainDestroyFlags({ dom: transient, flags: 0 }).catch(() => undefined);
    for (const dom of defined) {
      await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      // 1: VIR_DOMAIN_UNDEFINE_MANAGED_SAVE is not needed; 4 removes snapshot metadata.
      await client.rpc.domainUndefineFlags({ dom, flags: 4 }).catch(() => undefined);
    }
    await client?.close();
    await closeAllApps();
    await deleteKeys(prefix);
  });

  it('registers hosts with createHost (admin), including the test driver over TCP', async () => {
    const res = await gql(
      `mutation($test: CreateHostInput!, $closed: CreateHostInput!) {
        test: createHost(input: $test) { name uri connection { state } hypervisor { type } node { cpus } }
        closed: createHost(input: $closed) { name connection { state lastError } hostname }
      }`,
      {
        test: { name: 'test', uri: 'test+tcp://127.0.0.1/default' },
        closed: { name: 'closed', uri: 'qemu+tcp://127.0.0.1:1/system' },
      },
    );
    assert.equal(res.status, 200);
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    assert.deepEqual(res.body.data.test, {
      name: 'test',
      uri: 'test+tcp://127.0.0.1/default',
      connection: { state: 'connected' },
      hypervisor: { type: 'TEST' },
      node: { cpus: 16 },
    });
    assert.equal(res.body.data.closed.connection.state, 'unreachable');
    assert.match(res.body.data.closed.connection.lastError, /ECONNREFUSED/);
    assert.equal(res.body.data.closed.hostname, null);
  });

  it('serves hosts and host(name) with the views REST serves', async () => {
    const fields = `name uri createdAt updatedAt credentials { kind stored tls { verifyServer } ssh { user } warnings error }
      connection { state lastError retryAt } hostname libvirtVersion
      hypervisor { type version } node { cpuModel cpus mhz numaNodes sockets coresPerSocket threadsPerCore memoryBytes }
      capabilities { hostArch guests { osType arch wordSize emulator domainTypes machines } }`;
    const res = await gql(`{ host(name: "local") { ${fields} } }`);
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    const viaRest = (await rest('/v1/hosts/local')).body;
    delete viaRest.connection.since;
    assert.deepEqual(res.body.data.host, viaRest);
    assert.equal(res.body.data.host.hypervisor.type, 'QEMU');

    const names: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const page: request.Response = await gql(
        'query($after: String) { hosts(first: 1, after: $after) { edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }',
        { after },
      );
      const { edges, pageInfo } = page.body.data.hosts;
      assert.equal(edges.length, 1);
      assert.equal(pageInfo.endCursor, edges[0].cursor);
      names.push(edges[0].node.name);
      after = pageInfo.endCursor;
      if (!pageInfo.hasNextPage) break;
    }
    assert.deepEqual(names, ['closed', 'local', 'test']);
    const all = (await rest('/v1/hosts')).body.items.map((h: { name: string }) => h.name);
    assert.deepEqual(names, all);
  });

  it('walks every domain exactly once across pages, with totalCount', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const res: request.Response = await gql(
        `query($p: String!, $after: String) { host(name: "test") {
          domains(first: 7, after: $after, filter: { namePrefix: $p }) {
            totalCount edges { cursor node { name } } pageInfo { hasNextPage endCursor } } } }`,
        { p: namePrefix, after },
      );
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      const { totalCount, edges, pageInfo } = res.body.data.host.domains;
      assert.equal(totalCount, DEFINED + 1);
      assert.ok(edges.length <= 7);
      seen.push(...edges.map((e: { node: { name: string } }) => e.node.name));
      pages++;
      assert.equal(pageInfo.endCursor, edges.at(-1)?.cursor ?? null);
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor;
      assert.ok(pages < 10, 'too many pages');
    }
    assert.equal(pages, 4);
    const expected = [
      ...Array.from({ length: DEFINED }, (_, i) => `${namePrefix}${String(i).padStart(2, '0')}`),
      `${namePrefix}transient`,
    ].sort();
    assert.deepEqual(seen, expected, 'each domain once, sorted by name');

    // The cursors are REST's: a REST nextCursor continues a GraphQL walk and back.
    const restPage = await rest(`/v1/hosts/test/domains?limit=5&namePrefix=${namePrefix}`);
    const res = await gql(
      `query($p: String!, $after: String) { host(name: "test") {
        domains(first: 5, after: $after, filter: { namePrefix: $p }) { edges { node { name } } } } }`,
      { p: namePrefix, after: restPage.body.nextCursor },
    );
    assert.deepEqual(
      res.body.data.host.domains.edges.map((e: { node: { name: string } }) => e.node.name),
      expected.slice(5, 10),
    );
  });

  it('filters by state and persistence', async () => {
    const list = async (filter: string): Promise<string[]> => {
      const res = await gql(
        `query($p: String!) { host(name: "test") { domains(filter: { namePrefix: $p, ${filter} }) {
          totalCount edges { node { name state persistent } } } } }`,
        { p: namePrefix },
      );
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      const { edges, totalCount } = res.body.data.host.domains;
      assert.equal(totalCount, edges.length);
      return edges.map(
        (e: { node: { name: string; state: string } }) =>
          `${e.node.name.slice(namePrefix.length)}:${e.node.state}`,
      );
    };
    assert.deepEqual(await list('state: running'), ['00:running', 'transient:running']);
    assert.deepEqual(await list('state: paused'), ['01:paused']);
    assert.deepEqual(await list('persistent: false'), ['transient:running']);
    assert.equal((await list('persistent: true')).length, DEFINED);
  });

  it('gives a domain, its disks with chains, interfaces and snapshots as REST does', async () => {
    const name = `${namePrefix}02`;
    const domainFields = `uuid name id state stateReason vcpus memoryBytes maxMemoryBytes autostart persistent
      disks { target bus device readOnly chainComplete persistentChainDiffers
        chain { depth index ref type path network { protocol name hosts } format capacityBytes allocationBytes physicalBytes }
        persistentChain { depth index ref type path format capacityBytes allocationBytes physicalBytes network { protocol name hosts } }
        mirror { path format job ready }
        blockJob { type progress { cur end percent } ready jobId } }
      interfaces { type mac model source target }`;
    const res = await gql(
      `query($n: String!, $p: String!) { host(name: "test") {
        domain(name: $n) { ${domainFields} snapshots { name description state createdAt parent memory disks { target snapshot path format } } }
        domains(first: 3, filter: { namePrefix: $p }) { edges { node { ${domainFields} } } } } }`,
      { n: name, p: namePrefix },
    );
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    const viaRest = (await rest(`/v1/hosts/test/domains/${name}`)).body;
    const { snapshots, ...domain } = res.body.data.host.domain;
    assert.deepEqual(domain, viaRest);
    assert.deepEqual(
      domain.disks.map((d: { target: string; chain: { path: string }[] }) => [
        d.target,
        d.chain.map((c) => c.path),
      ]),
      [
        ['vda', [`/var/lib/vg-test/${name}-vda.qcow2`, '/var/lib/vg-test/base-2.raw']],
        ['vdb', [`/var/lib/vg-test/${name}-vdb.raw`]],
      ],
    );
    assert.deepEqual(
      domain.interfaces.map((i: { mac: string }) => i.mac),
      ['52:54:00:00:02:01', '52:54:00:00:02:02'],
    );
    // Through the listing (the loaders' path), the same views.
    const listed = res.body.data.host.domains.edges.map((e: { node: unknown }) => e.node);
    assert.equal(listed.length, 3);
    for (const node of listed) {
      const one = (await rest(`/v1/hosts/test/domains/${node.uuid}`)).body;
      assert.deepEqual(node, one);
    }
    assert.deepEqual(snapshots, (await rest(`/v1/hosts/test/domains/${name}/snapshots`)).body);
    assert.deepEqual(
      snapshots.map((s: { name: string }) => s.name),
      ['first'],
    );
  });

  it('gives pools and their volumes as REST does', async () => {
    const poolFields = `name uuid type state persistent autostart path capacityBytes allocationBytes availableBytes
      source { hosts { name port } devices dir name format }`;
    const volumeFields =
      'name key path type format capacityBytes allocationBytes physicalBytes backingStore { path format }';
    const res = await gql(`{ host(name: "test") {
      pools { edges { node { ${poolFields} volumes { edges { node { ${volumeFields} } } } } } }
      pool(name: "default-pool") { name volume(name: "nope") { name } } } }`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const pools = res.body.data.host.pools.edges.map(
      (e: { node: Record<string, unknown> }) => e.node,
    );
    // Other tests may add pools and volumes to the shared test driver meanwhile:
    // compare the default pool and this test's own volume.
    const defaultPool = pools.find((p: { name: string }) => p.name === 'default-pool');
    assert.ok(defaultPool, 'the test driver has default-pool');
    const { volumes: poolVolumes, ...poolView } = defaultPool;
    assert.deepEqual(poolView, (await rest('/v1/hosts/test/pools/default-pool')).body);
    type Volume = { name: string; path: string; capacityBytes: number };
    const ours = (items: Volume[]) => items.filter((v) => v.name.startsWith(namePrefix));
    const volumes = ours(poolVolumes.edges.map((e: { node: Volume }) => e.node));
    assert.deepEqual(
      volumes,
      ours((await rest('/v1/hosts/test/pools/default-pool/volumes?limit=500')).body.items),
    );
    assert.deepEqual(
      volumes.map((v) => [v.name, v.path, v.capacityBytes]),
      [[`${namePrefix}vol`, `/default-pool/${namePrefix}vol`, 8 * 1024 ** 2]],
    );
    assert.equal(res.body.data.host.pool.name, 'default-pool');
    assert.equal(res.body.data.host.pool.volume, null);
    assert.deepEqual(codes(res.body), ['NOT_FOUND']);
    assert.deepEqual(res.body.errors[0].path, ['host', 'pool', 'volume']);
  });

  it('answers errors with the REST codes and the request id in extensions', async () => {
    const cases: Array<[string, string, string[]]> = [
      ['{ host(name: "nope") { name } }', 'NOT_FOUND', ['host']],
      [
        '{ host(name: "test") { domain(name: "no-such-domain") { name } } }',
        'NOT_FOUND',
        ['host', 'domain'],
      ],
      [
        '{ host(name: "test") { domain(name: "1234567x-1234-1234-1234-123456789012") { name } } }',
        'INVALID_ARGUMENT',
        ['host', 'domain'],
      ],
      [
        '{ host(name: "test") { pool(name: "no-such-pool") { name } } }',
        'NOT_FOUND',
        ['host', 'pool'],
      ],
    ];
    for (const [query, code, path] of cases) {
      const res = await graphql(t, ADMIN, query, undefined, { 'x-request-id': `gql-${code}-1` });
      assert.equal(res.status, 200, query);
      assert.deepEqual(codes(res.body), [code], `${query}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(res.body.errors[0].path, path);
      assert.equal(res.body.errors[0].extensions.requestId, `gql-${code}-1`);
      assert.equal(res.headers['x-request-id'], `gql-${code}-1`);
    }
    // Invalid arguments name the argument, like REST's `errors`.
    for (const [args, field] of [
      ['first: 0', 'first'],
      ['first: 501', 'first'],
      ['after: "not-a-cursor!"', 'after'],
      ['after: "eyJ4IjoxfQ"', 'after'],
    ]) {
      const res = await gql(`{ host(name: "test") { domains(${args}) { totalCount } } }`);
      assert.deepEqual(codes(res.body), ['INVALID_ARGUMENT'], args);
      assert.deepEqual(
        res.body.errors[0].extensions.fields.map((f: { field: string }) => f.field),
        [field],
        args,
      );
      assert.equal(res.body.data.host.domains, null);
    }
    // A malformed operation is refused as a whole: 400, nothing runs (an unknown
    // enum value is one: the schema knows the domain states).
    for (const query of [
      '{ hosts { edges ',
      '{ hosts { nope } }',
      '{ host { name } }',
      '{ host(name: "test") { domains(filter: { state: sleepy }) { totalCount } } }',
    ]) {
      const res = await gql(query);
      assert.equal(res.status, 400, query);
      assert.deepEqual(codes(res.body), ['INVALID_ARGUMENT'], query);
      assert.ok(!res.body.data, query);
      assert.match(res.body.errors[0].extensions.requestId, /^[0-9a-f-]{36}$/);
    }
  });

  it('refuses malformed requests with 400 or 405 and the REST code', async () => {
    const badJson = await request(t.server)
      .post('/graphql')
      .set('authorization', `Bearer ${ADMIN}`)
      .set('content-type', 'application/json')
      .send('{"query": ');
    assert.equal(badJson.status, 400);
    // In GraphQL's shape, or as a problem document when Fastify's body parser
    // refuses it before GraphQL, as for any route.
    const badJsonCode = badJson.body.code ?? badJson.body.errors?.[0]?.extensions.code;
    assert.equal(badJsonCode, 'INVALID_ARGUMENT', JSON.stringify(badJson.body));

    const twoOperations = await gql(
      'query A { hosts { edges { cursor } } } query B { hosts { edges { cursor } } }',
    );
    assert.equal(twoOperations.status, 400);
    assert.deepEqual(codes(twoOperations.body), ['INVALID_ARGUMENT']);

    const badVariable = await gql('query($n: Int) { hosts(first: $n) { edges { cursor } } }', {
      n: 'ten',
    });
    assert.equal(badVariable.status, 400);
    assert.deepEqual(codes(badVariable.body), ['INVALID_ARGUMENT']);

    const mutationOverGet = await request(t.server)
      .get(`/graphql?query=${encodeURIComponent('mutation { deleteHost(name: "test") }')}`)
      .set('authorization', `Bearer ${ADMIN}`);
    assert.equal(mutationOverGet.status, 405);
    assert.deepEqual(codes(mutationOverGet.body), ['UNSUPPORTED']);
    assert.equal((await rest('/v1/hosts/test')).status, 200, 'nothing ran');
  });

  it('answers HOST_UNREACHABLE from the open breaker for an unreachable host, and the rest of the query', async () => {
    const opened = (await rest('/v1/hosts/closed')).body.connection;
    assert.equal(opened.state, 'unreachable');
    const res = await gql(`{
      closed: host(name: "closed") { name connection { state since } domains { totalCount } pools { edges { cursor } } }
      test: host(name: "test") { name }
    }`);
    assert.equal(res.status, 200);
    // Neither field tried the host: an attempt would have passed through 'connecting',
    // renewing `since` (a probe's failure leaves it as it was).
    assert.equal(res.body.data?.closed?.connection.since, opened.since);
    delete res.body.data.closed.connection.since;
    assert.deepEqual(res.body.data, {
      closed: {
        name: 'closed',
        connection: { state: 'unreachable' },
        domains: null,
        pools: null,
      },
      test: { name: 'test' },
    });
    assert.deepEqual(codes(res.body), ['HOST_UNREACHABLE', 'HOST_UNREACHABLE']);
    assert.deepEqual(res.body.errors.map((e: { path: string[] }) => e.path.join('.')).sort(), [
      'closed.domains',
      'closed.pools',
    ]);
    for (const e of res.body.errors) {
      assert.ok(e.extensions.retryAfterSeconds >= 1, JSON.stringify(e));
      assert.match(e.message, /host 'closed' is unreachable/);
    }
  });

  it('needs a bearer token, and admin rights for mutations', async () => {
    // Refused before the document is parsed: HTTP 401 with the challenge, as REST.
    for (const token of [null, 'not-a-token-of-this-gateway-000']) {
      const res = await graphql(t, token, '{ hosts { edges { node { name } } } }');
      assert.equal(res.status, 401);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="virtgate"');
      assert.equal(res.body.data, null);
      assert.deepEqual(codes(res.body), ['UNAUTHENTICATED']);
      assert.match(res.body.errors[0].message, token ? /not valid/ : /needs a bearer token/);
    }
    const mutation = await graphql(t, null, 'mutation { deleteHost(name: "test") }');
    assert.equal(mutation.status, 401);
    assert.deepEqual(codes(mutation.body), ['UNAUTHENTICATED']);

    const read = await graphql(t, USER, '{ host(name: "test") { name } }');
    assert.deepEqual(read.body, { data: { host: { name: 'test' } } });
    const create = await graphql(
      t,
      USER,
      'mutation { createHost(input: { name: "by-user", uri: "test+tcp://127.0.0.1/default" }) { name } }',
    );
    assert.deepEqual(codes(create.body), ['FORBIDDEN']);
    const del = await graphql(t, USER, 'mutation { deleteHost(name: "test") }');
    assert.deepEqual(codes(del.body), ['FORBIDDEN']);
    assert.equal((await rest('/v1/hosts/test')).status, 200, 'still there');

    const bad = await gql(
      'mutation { createHost(input: { name: "x", uri: "qemu+gopher://h/system" }) { name } }',
    );
    assert.deepEqual(codes(bad.body), ['INVALID_ARGUMENT']);
    assert.equal(bad.body.errors[0].extensions.fields[0].field, 'uri');
    const dup = await gql(
      'mutation { createHost(input: { name: "test", uri: "test+tcp://127.0.0.1/default" }) { name } }',
    );
    assert.deepEqual(codes(dup.body), ['ALREADY_EXISTS']);
    const gone = await gql('mutation { deleteHost(name: "never-registered") }');
    assert.deepEqual(codes(gone.body), ['NOT_FOUND']);
  });

  it('removes a host with deleteHost', async () => {
    const res = await gql('mutation { deleteHost(name: "closed") }');
    assert.deepEqual(res.body, { data: { deleteHost: true } });
    assert.equal((await rest('/v1/hosts/closed')).status, 404);
  });

  it('masks an unexpected error as INTERNAL and logs it once, with the request id', async () => {
    // A host record in Redis the registry cannot read (not JSON): the real service fails
    // with an error no code describes, whose message quotes the record's head.
    const redis = t.app.get<Redis>(REDIS);
    const hosts = redisKeys(prefix).hosts;
    const corrupt = 'secret-internal-detail, not a host record';
    const detail = ((): string => {
      try {
        JSON.parse(corrupt);
      } catch (err) {
        return (err as Error).message;
      }
      return assert.fail('the record must not parse');
    })();
    assert.match(detail, /secret/, 'the parser quotes the record: a detail to mask');
    await redis.hset(hosts, 'unreadable', corrupt);
    let res: request.Response;
    try {
      res = await graphql(t, ADMIN, '{ host(name: "unreadable") { name } }', undefined, {
        'x-request-id': `gql-internal`,
      });
    } finally {
      await redis.hdel(hosts, 'unreadable');
    }
    assert.equal(res.status, 200);
    assert.deepEqual(codes(res.body), ['INTERNAL']);
    assert.doesNotMatch(JSON.stringify(res.body), /secret|JSON/);
    assert.match(res.body.errors[0].message, /report the requestId/);
    assert.equal(res.body.errors[0].extensions.requestId, `gql-internal`);
    const logged = t.logs.lines.filter(
      (l) => l.level === 'error' && JSON.stringify(l).includes(JSON.stringify(detail).slice(1, -1)),
    );
    assert.equal(logged.length, 1, JSON.stringify(logged));
    assert.equal(logged[0]!.requestId, `gql-internal`);
  });

  it('serves the schema that openapi/schema.graphql is generated from', async () => {
    const served = t.app.get(GraphQLSchemaHost).schema;
    assert.equal(
      printSchema(lexicographicSortSchema(served)),
      printSchema(await generateGraphqlSchema()),
    );
  });

  describe('limits (GRAPHQL_MAX_DEPTH=4, GRAPHQL_MAX_COST=300)', () => {
    before(async () => {
      await t.close();
      t = await startApp(
        testConfig(prefix, {
          VIRTGATE_ADMIN_TOKEN: ADMIN,
          GRAPHQL_MAX_DEPTH: '4',
          GRAPHQL_MAX_COST: '300',
        }),
      );
    });

    const refused = (body: GraphqlBody, name: string, maximum: number, actual: number) => {
      assert.ok(!body.data, JSON.stringify(body));
      assert.deepEqual(codes(body), ['INVALID_ARGUMENT']);
      assert.deepEqual(body.errors![0]!.extensions.limit, { name, maximum, actual });
      assert.match(
        body.errors![0]!.message,
        name === 'depth' ? /GRAPHQL_MAX_DEPTH/ : /GRAPHQL_MAX_COST/,
      );
    };

    it('refuses an operation nested deeper than the limit, fragments included', async () => {
      const ok = await gql('{ host(name: "local") { connection { state } } }');
      assert.deepEqual(ok.body, { data: { host: { connection: { state: 'connected' } } } });
      const deep = await gql('{ hosts { edges { node { connection { state } } } } }');
      assert.equal(deep.status, 400);
      refused(deep.body, 'depth', 4, 5);
      const viaFragments = await gql(`
        query { hosts { ...E } }
        fragment E on HostsConnection { edges { ... on HostsEdge { node { ...N } } } }
        fragment N on Host { hypervisor { type } }`);
      refused(viaFragments.body, 'depth', 4, 4 + 1);
      // Introspection is off by default (graphql-limits.test.ts has it on).
      const introspection = await gql(getIntrospectionQuery());
      assert.equal(introspection.status, 400);
      assert.deepEqual(codes(introspection.body), ['INVALID_ARGUMENT']);
      assert.match(introspection.body.errors[0].message, /GRAPHQL_INTROSPECTION/);
    });

    it('refuses an operation whose estimated cost is over the limit, before anything runs', async () => {
      // 1 + first × (edges + node + name) = 1 + 10 × 3
      const ok = await gql('{ hosts(first: 10) { edges { node { name } } } }');
      assert.equal(ok.body.errors, undefined, JSON.stringify(ok.body));
      const big = await gql('{ hosts(first: 100) { edges { node { name } } } }');
      assert.equal(big.status, 400);
      refused(big.body, 'cost', 300, 301);
      // A page size given as a variable counts at its value.
      const viaVariable = await gql(
        'query($n: Int) { hosts(first: $n) { edges { node { name } } } }',
        { n: 250 },
      );
      refused(viaVariable.body, 'cost', 300, 751);
      // Refused before any resolver: no libvirt call. Without a token, refused
      // before the limits are even measured.
      const calls = await countRpcs(async () => {
        const query = '{ hosts(first: 500) { edges { node { name } } } }';
        refused((await gql(query)).body, 'cost', 300, 1501);
        const anonymous = await graphql(t, null, query);
        assert.equal(anonymous.status, 401);
        assert.deepEqual(codes(anonymous.body), ['UNAUTHENTICATED']);
      });
      assert.equal(calls.size, 0, JSON.stringify(Object.fromEntries(calls)));
    });
  });
});
