/**
 * Many calls in flight on one connection: libvirtd answers them out of order
 * (several worker threads), and every caller must get its own answer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { LibvirtClient, LibvirtError, type RemoteDomain } from '#src/libvirt/index.js';
import { testDriverDomainXml } from '../support/domain-xml.js';

const DOMAINS = 20;
const CALLS = 1000;

for (const maxInFlight of [CALLS, undefined]) {
  describe(`1,000 calls at once on one connection, ${maxInFlight ? `all ${maxInFlight} on the wire` : 'through the default window'}`, () => {
    let client: LibvirtClient;
    const prefix = `vg-conc-${randomUUID().slice(0, 8)}`;
    const defined: RemoteDomain[] = [];

    before(async () => {
      client = await LibvirtClient.connect('test+unix:///default', { maxInFlight });
      for (let i = 0; i < DOMAINS; i++) {
        // distinct memory sizes, so each answer can be checked against its question
        const { dom } = await client.rpc.domainDefineXmlFlags({
          xml: testDriverDomainXml(`${prefix}-${i}`, 64 + i),
          flags: 0,
        });
        defined.push(dom);
      }
    });

    after(async () => {
      for (const dom of defined) await client.rpc.domainUndefineFlags({ dom, flags: 0 });
      await client.close();
    });

    it('gives every caller its own answer, errors included', async () => {
      let maxInFlight = 0;
      const calls = Array.from({ length: CALLS }, (_, n) => {
        const i = n % DOMAINS;
        let p: Promise<string>;
        switch (n % 4) {
          case 0:
            p = client.rpc
              .domainLookupByName({ name: `${prefix}-${i}` })
              .then(({ dom }) => `name:${dom.name}`);
            break;
          case 1:
            p = client.rpc.domainGetInfo({ dom: defined[i]! }).then((info) => `mem:${info.maxMem}`);
            break;
          case 2:
            p = client.rpc.domainLookupByName({ name: `${prefix}-missing-${n}` }).then(
              () => 'found?!',
              (e: unknown) =>
                e instanceof LibvirtError ? `err:${e.codeName}` : `other:${String(e)}`,
            );
            break;
          default:
            p = client.rpc
              .domainLookupByUuid({ uuid: defined[i]!.uuid })
              .then(({ dom }) => `uuid:${dom.name}`);
        }
        maxInFlight = Math.max(maxInFlight, client.inFlight);
        return p;
      });
      const answers = await Promise.all(calls);
      assert.equal(maxInFlight, CALLS, 'all calls were in flight before the first answer');
      answers.forEach((answer, n) => {
        const i = n % DOMAINS;
        const expected = [
          `name:${prefix}-${i}`,
          `mem:${(64 + i) * 1024}`,
          'err:VIR_ERR_NO_DOMAIN',
          `uuid:${prefix}-${i}`,
        ][n % 4];
        assert.equal(answer, expected, `call ${n}`);
      });
      assert.equal(client.inFlight, 0);
    });
  });
}
