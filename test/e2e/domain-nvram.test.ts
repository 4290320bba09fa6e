/**
 * Undefining a domain with UEFI variables (NVRAM) through the API, against the real
 * QEMU driver: the README promises the NVRAM file is kept unless `nvram=true`. libvirt
 * needs one of its two flags for such a domain (KEEP_NVRAM or NVRAM), so the gateway
 * choosing the wrong one deletes a file that holds the guest's boot entries.
 * The firmware files are plain files in the test's own directory: libvirt does not
 * open them until the domain starts, which these tests never do.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { buildXml } from '#src/xml/xml.js';
import { makeImageDir } from '../support/qemu-images.js';
import {
  closeAllApps,
  deleteKeys,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN = 'nvram-test-admin-token-0123456789';
const tag = `vgnv-${randomUUID().slice(0, 6)}`;

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

describe('undefining a domain with NVRAM', () => {
  let t: TestApp;
  let images: { dir: string; remove(): Promise<void> };
  let loader: string;
  const made: string[] = [];

  const http = {
    post: (url: string, body: object, headers: Record<string, string> = {}) =>
      request(t.server).post(url).set('authorization', `Bearer ${ADMIN}`).set(headers).send(body),
    del: (url: string, headers: Record<string, string> = {}) =>
      request(t.server).delete(url).set('authorization', `Bearer ${ADMIN}`).set(headers),
    get: (url: string) => request(t.server).get(url).set('authorization', `Bearer ${ADMIN}`),
  };

  /** Defines (through the API, as an admin's raw XML) a UEFI domain whose variables live in `vars`. */
  async function defineUefi(name: string, vars: string): Promise<void> {
    await writeFile(vars, 'the guest variables\n');
    const xml = buildXml({
      name: 'domain',
      attrs: { type: 'qemu' },
      children: [
        { name: 'name', text: name },
        { name: 'memory', attrs: { unit: 'MiB' }, text: '64' },
        { name: 'vcpu', text: '1' },
        {
          name: 'os',
          children: [
            { name: 'type', attrs: { arch: 'x86_64', machine: 'q35' }, text: 'hvm' },
            { name: 'loader', attrs: { readonly: 'yes', type: 'pflash' }, text: loader },
            { name: 'nvram', text: vars },
          ],
        },
        { name: 'features', children: [{ name: 'acpi' }] },
      ],
    });
    const res = await http.post('/v1/hosts/local/domains', { xml }, { prefer: 'wait=30' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.state, 'completed', JSON.stringify(res.body.error));
    made.push(name);
  }

  before(async () => {
    images = await makeImageDir(tag);
    loader = path.join(images.dir, 'OVMF_CODE.fd');
    await writeFile(loader, 'not firmware: libvirt does not read it before a start\n');
    t = await startApp(testConfig(prefix, { VIRTGATE_ADMIN_TOKEN: ADMIN }));
  });

  after(async () => {
    // Whatever a failed test left defined goes, NVRAM kept (KEEP_NVRAM = 8).
    for (const name of made) {
      await http
        .del(`/v1/hosts/local/domains/${name}`, { prefer: 'wait=30' })
        .catch(() => undefined);
    }
    await closeAllApps();
    await images.remove();
    await deleteKeys(prefix);
  });

  it('keeps the NVRAM file by default', async () => {
    const name = `${tag}-keep`;
    const vars = path.join(images.dir, `${name}_VARS.fd`);
    await defineUefi(name, vars);
    const res = await http.del(`/v1/hosts/local/domains/${name}`, { prefer: 'wait=30' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.state, 'completed', JSON.stringify(res.body.error));
    assert.equal(res.body.resolved.nvram, false);
    assert.equal((await http.get(`/v1/hosts/local/domains/${name}`)).status, 404, 'undefined');
    assert.equal(await exists(vars), true, 'the NVRAM file is still there');
  });

  it('deletes the NVRAM file with nvram=true', async () => {
    const name = `${tag}-drop`;
    const vars = path.join(images.dir, `${name}_VARS.fd`);
    await defineUefi(name, vars);
    const res = await http.del(`/v1/hosts/local/domains/${name}?nvram=true`, {
      prefer: 'wait=30',
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.state, 'completed', JSON.stringify(res.body.error));
    assert.equal(res.body.resolved.nvram, true);
    assert.equal((await http.get(`/v1/hosts/local/domains/${name}`)).status, 404, 'undefined');
    assert.equal(await exists(vars), false, 'libvirt deleted the NVRAM file');
  });
});
