/**
 * Helpers of the GraphQL e2e tests: posting operations, test-driver domains
 * with disks and interfaces, and counting the libvirt calls the app makes.
 */
import { DOMImplementation, XMLSerializer, type Element } from '@xmldom/xmldom';
import request from 'supertest';
import { RpcConnection } from '#src/libvirt/index.js';
import type { TestApp } from './helpers.js';

export interface GraphqlError {
  message: string;
  path?: (string | number)[];
  extensions: {
    code: string;
    requestId: string;
    fields?: { field: string; message: string }[];
    retryAfterSeconds?: number;
    limit?: { name: string; maximum: number; actual: number };
  };
}

export interface GraphqlBody<D = unknown> {
  data?: D | null;
  errors?: GraphqlError[];
}

/** POSTs an operation to /graphql, with `token` as bearer when given. */
export function graphql(
  t: TestApp,
  token: string | null,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): request.Test {
  const req = request(t.server)
    .post('/graphql')
    .set('content-type', 'application/json')
    .send({ query, ...(variables ? { variables } : {}) });
  if (token) void req.set('authorization', `Bearer ${token}`);
  for (const [k, v] of Object.entries(headers)) void req.set(k, v);
  return req;
}

/** The codes of a response's errors, in order. */
export function codes(body: GraphqlBody): string[] {
  return (body.errors ?? []).map((e) => e.extensions.code);
}

/**
 * A test-driver domain with two disks (vda on a 2-image chain, vdb raw) and
 * two interfaces, built with an XML library.
 */
export function richTestDomainXml(name: string, index: number): string {
  const doc = new DOMImplementation().createDocument(null, 'domain', null);
  const el = (parent: Element, tag: string, attrs: Record<string, string> = {}, text?: string) => {
    const e = doc.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.appendChild(doc.createTextNode(text));
    parent.appendChild(e);
    return e;
  };
  const root = doc.documentElement!;
  root.setAttribute('type', 'test');
  el(root, 'name', {}, name);
  el(root, 'memory', { unit: 'MiB' }, '64');
  el(el(root, 'os'), 'type', {}, 'hvm');
  const devices = el(root, 'devices');
  const vda = el(devices, 'disk', { type: 'file', device: 'disk' });
  el(vda, 'driver', { name: 'qemu', type: 'qcow2' });
  el(vda, 'source', { file: `/var/lib/vg-test/${name}-vda.qcow2` });
  const backing = el(vda, 'backingStore', { type: 'file' });
  el(backing, 'format', { type: 'raw' });
  el(backing, 'source', { file: `/var/lib/vg-test/base-${index % 3}.raw` });
  el(backing, 'backingStore');
  el(vda, 'target', { dev: 'vda', bus: 'virtio' });
  const vdb = el(devices, 'disk', { type: 'file', device: 'disk' });
  el(vdb, 'driver', { name: 'qemu', type: 'raw' });
  el(vdb, 'source', { file: `/var/lib/vg-test/${name}-vdb.raw` });
  el(vdb, 'target', { dev: 'vdb', bus: 'virtio' });
  const mac = (n: number) =>
    `52:54:00:${[index >> 8, index & 255, n].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  const nic = el(devices, 'interface', { type: 'network' });
  el(nic, 'mac', { address: mac(1) });
  el(nic, 'source', { network: 'default' });
  el(nic, 'model', { type: 'virtio' });
  const bridge = el(devices, 'interface', { type: 'bridge' });
  el(bridge, 'mac', { address: mac(2) });
  el(bridge, 'source', { bridge: 'br0' });
  return new XMLSerializer().serializeToString(doc);
}

/**
 * Counts the libvirt RPCs made in this process while `fn` runs, by procedure
 * name, by wrapping RpcConnection.prototype.call (every call of every client
 * goes through it). Nothing else changes: the wrapped call is the real one.
 */
export async function countRpcs(fn: () => Promise<void>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const original = RpcConnection.prototype.call;
  RpcConnection.prototype.call = function (
    this: RpcConnection,
    ...args: Parameters<typeof original>
  ) {
    const name = args[5]?.name ?? `procedure ${args[1]}`;
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return original.apply(this, args);
  } as typeof original;
  try {
    await fn();
  } finally {
    RpcConnection.prototype.call = original;
  }
  return counts;
}

export function total(counts: Map<string, number>): number {
  let n = 0;
  for (const v of counts.values()) n += v;
  return n;
}
