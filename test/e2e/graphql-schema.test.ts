import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { generateGraphqlSchema } from '#src/api-contract.js';
import { GRAPHQL_SCHEMA_PATH, serializeGraphqlSchema } from '#src/graphql/graphql-schema-file.js';

describe('GraphQL schema', () => {
  it(`${GRAPHQL_SCHEMA_PATH} matches the resolvers and models`, async () => {
    const generated = serializeGraphqlSchema(await generateGraphqlSchema());
    // dist/test/e2e/ → repository root
    const committed = readFileSync(
      new URL(`../../../${GRAPHQL_SCHEMA_PATH}`, import.meta.url),
      'utf8',
    );
    assert.equal(
      generated,
      committed,
      `${GRAPHQL_SCHEMA_PATH} is out of date: run \`npm run openapi\` and commit the result`,
    );
  });

  it('has the queries and mutations of the API, and Relay connections for pages', async () => {
    const schema = await generateGraphqlSchema();
    const fields = (type: string) =>
      Object.keys(
        (schema.getType(type) as { getFields(): Record<string, unknown> }).getFields(),
      ).sort();
    assert.deepEqual(fields('Query'), ['auditEvents', 'host', 'hosts', 'job', 'jobs']);
    assert.deepEqual(fields('Mutation'), [
      'cancelJob',
      'createHost',
      'createSnapshot',
      'createVolume',
      'defineDomain',
      'definePool',
      'deleteHost',
      'deleteVolume',
      'domainAction',
      'pivotBlockJob',
      'poolAction',
      'startBlockJob',
      'undefineDomain',
      'undefinePool',
      'updateHost',
    ]);
    for (const connection of [
      'HostsConnection',
      'DomainsConnection',
      'StoragePoolsConnection',
      'StorageVolumesConnection',
      'JobsConnection',
    ]) {
      assert.ok(fields(connection).includes('edges'), connection);
      assert.ok(fields(connection).includes('pageInfo'), connection);
    }
    assert.deepEqual(fields('PageInfo'), ['endCursor', 'hasNextPage']);
    assert.ok(fields('DomainsConnection').includes('totalCount'));
    for (const f of ['domain', 'domains', 'pool', 'pools']) {
      assert.ok(fields('Host').includes(f), `Host.${f}`);
    }
    for (const f of ['disks', 'interfaces', 'snapshots']) {
      assert.ok(fields('Domain').includes(f), `Domain.${f}`);
    }
    assert.ok(fields('StoragePool').includes('volumes'));
  });
});
