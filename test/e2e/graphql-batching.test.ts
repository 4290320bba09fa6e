/**
 * No N+1 against libvirt: a GraphQL query over N domains of the test driver,
 * asking for their disks (with backing chains) and interfaces, makes a number
 * of libvirt calls that does not depend on how many fields it asks for per
 * domain, reads each domain's XML once, and reads block statistics once per
 * page. Calls are counted at the RPC connection, below every client.
 * The listing filters by state, which the domains service reads anew every
 * time (no inventory cache), so the counts are exact.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';
import {
  countRpcs,
  graphql,
  richTestDomainXml,
  total,
  type GraphqlBody,
} from './graphql-helpers.js';

const ADMIN = 'graphql-batching-admin-token-0123456789';

interface DiskJson {
  target: string;
  chain: { depth: number; path: string }[];
}
interface DomainJson {
  name: string;
  disks: DiskJson[];
  again: DiskJson[];
  interfaces: { source: string; mac: string }[];
  nics: { mac: string }[];
}
type ListingJson = {
  host: { domains: { totalCount: number; edges: { node: DomainJson }[] } };
};
const N = 60;

const NAMES_ONLY = `query($p: String!) { host(name: "test") { domains(first: 500, filter: { namePrefix: $p, state: shutoff }) {
  totalCount edges { node { name } } } } }`;

const DISK_TARGETS = `query($p: String!) { host(name: "test") { domains(first: 500, filter: { namePrefix: $p, state: shutoff }) {
  totalCount edges { node { name disks { target } } } } } }`;

const EVERYTHING = `query($p: String!) { host(name: "test") { domains(first: 500, filter: { namePrefix: $p, state: shutoff }) {
  totalCount edges { cursor node {
    name uuid state
    disks { target bus device readOnly chainComplete persistentChainDiffers
      chain { depth index ref type path format capacityBytes allocationBytes physicalBytes }
      persistentChain { depth path } }
    interfaces { type mac model source target }
    again: disks { target chain { path } }
    nics: interfaces { mac }
  } } } } }`;

describe('GraphQL batching', () => {
  const prefix = uniquePrefix(import.meta.url);
  const namePrefix = `vg-gqb-${randomUUID().slice(0, 6)}-`;
  let t: TestApp;
  let client: LibvirtClient;
  const defined: RemoteDomain[] = [];

  before(async () => {
    // No worker: its event publisher lists the host's domains in the background, counted here.
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN, ROLE: 'api' }));
    const created = await graphql(
      t,
      ADMIN,
      'mutation { createHost(input: { name: "test", uri: "test+tcp://127.0.0.1/default" }) { name } }',
    );
    assert.equal(created.body.data?.createHost?.name, 'test', JSON.stringify(created.body));
    client = await LibvirtClient.connect('test+tcp://127.0.0.1/default');
    for (let i = 0; i < N; i++) {
      const name = `${namePrefix}${String(i).padStart(3, '0')}`;
      const { dom } = await client.rpc.domainDefineXmlFlags({
        xml: richTestDomainXml(name, i),
        flags: 0,
      });
      defined.push(dom);
    }
  });

  after(async () => {
    for (const dom of defined) {
      await client.rpc.domainDestroyFlags({ dom, flags: 0 }).catch(() => undefined);
      await client.rpc.domainUndefineFlags({ dom, flags: 0 }).catch(() => undefined);
    }
    await client?.close();
    await closeAllApps();
    await deleteKeys(prefix);
  });

  async function run(
    query: string,
  ): Promise<{ body: GraphqlBody<ListingJson>; calls: Map<string, number> }> {
    let body: GraphqlBody<ListingJson> = {};
    // Warm the host's connections and facts first, so only the query's own calls are counted.
    await graphql(t, ADMIN, '{ host(name: "test") { name hostname } }').expect(200);
    const calls = await countRpcs(async () => {
      const res = await graphql(t, ADMIN, query, { p: namePrefix });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      body = res.body as GraphqlBody<ListingJson>;
    });
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    return { body, calls };
  }

  it(`answers disks and interfaces of ${N} domains with calls that do not grow with the fields asked`, async () => {
    const names = await run(NAMES_ONLY);
    const targets = await run(DISK_TARGETS);
    const everything = await run(EVERYTHING);

    const domains = everything.body.data!.host.domains;
    assert.equal(domains.totalCount, N);
    assert.equal(domains.edges.length, N);
    for (const { node } of domains.edges) {
      assert.deepEqual(
        node.disks.map((d) => d.target),
        ['vda', 'vdb'],
      );
      assert.deepEqual(
        node.disks[0]!.chain.map((c) => [c.depth, c.path]),
        [
          [0, `/var/lib/vg-test/${node.name}-vda.qcow2`],
          [1, `/var/lib/vg-test/base-${Number(node.name.slice(-3)) % 3}.raw`],
        ],
      );
      assert.deepEqual(
        node.again,
        node.disks.map((d) => ({
          target: d.target,
          chain: d.chain.map((c) => ({ path: c.path })),
        })),
      );
      assert.deepEqual(
        node.interfaces.map((i) => i.source),
        ['default', 'br0'],
      );
      assert.deepEqual(
        node.nics,
        node.interfaces.map((i) => ({ mac: i.mac })),
      );
    }

    const report = (c: Map<string, number>) => JSON.stringify(Object.fromEntries(c));
    // Asking for every field of every disk and interface, twice over, costs exactly
    // what asking for the disk targets costs.
    assert.deepEqual(
      Object.fromEntries(everything.calls),
      Object.fromEntries(targets.calls),
      `targets: ${report(targets.calls)}\neverything: ${report(everything.calls)}`,
    );
    // The listing alone reads no XML. The details read each domain's XML once (these
    // domains are not running, so their XML is their persistent definition), ask once
    // per domain whether it is persistent, and read block statistics once for the
    // whole page: 2N + 1, whatever the fields.
    assert.equal(names.calls.get('domainGetXmlDesc') ?? 0, 0, report(names.calls));
    assert.equal(everything.calls.get('domainGetXmlDesc'), N, report(everything.calls));
    assert.equal(everything.calls.get('domainIsPersistent'), N, report(everything.calls));
    assert.equal(
      (everything.calls.get('connectGetAllDomainStats') ?? 0) -
        (names.calls.get('connectGetAllDomainStats') ?? 0),
      1,
      `${report(names.calls)}\n${report(everything.calls)}`,
    );
    assert.equal(
      total(everything.calls) - total(names.calls),
      2 * N + 1,
      `${report(names.calls)}\n${report(everything.calls)}`,
    );
  });

  it('reads a domain asked for through two paths once per request', async () => {
    const query = `query($p: String!) {
      a: host(name: "test") { domains(first: 5, filter: { namePrefix: $p, state: shutoff }) { edges { node { disks { target } } } } }
      b: host(name: "test") { domains(first: 5, filter: { namePrefix: $p, state: shutoff }) { edges { node { interfaces { mac } } } } }
    }`;
    const { calls } = await run(query);
    assert.equal(calls.get('domainGetXmlDesc'), 5, JSON.stringify(Object.fromEntries(calls)));
  });
});
