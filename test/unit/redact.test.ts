/**
 * The redaction rules (src/common/redact.ts): what counts as a secret in a
 * URI, in XML, in free text and in an object, and what is kept as written.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REDACTED, redactSecrets, redactText, redactUri, redactXml } from '#src/common/redact.js';

describe('redactUri', () => {
  it('removes the password of the userinfo and keeps the user', () => {
    assert.equal(
      redactUri('qemu+tcp://root:s3cr%40t@10.0.0.5/system'),
      'qemu+tcp://root:***@10.0.0.5/system',
    );
    assert.equal(redactUri('qemu+tcp://root@10.0.0.5/system'), 'qemu+tcp://root@10.0.0.5/system');
    assert.equal(redactUri('redis://:pw@127.0.0.1:6379/0'), 'redis://:***@127.0.0.1:6379/0');
  });

  it('removes credential query parameters and keeps the others as written', () => {
    for (const name of [
      'password',
      'passwd',
      'pass',
      'pwd',
      'key',
      'secret',
      'token',
      'PASSWORD',
      'access_token',
      'api_key',
      'db_pass',
    ]) {
      assert.equal(
        redactUri(`qemu+tcp://h/system?socket=/run/x&${name}=hunter2&no_verify=1`),
        `qemu+tcp://h/system?socket=/run/x&${name}=***&no_verify=1`,
        name,
      );
    }
    assert.equal(
      redactUri('qemu:///system?keyfile=/etc/k&mode=direct'),
      'qemu:///system?keyfile=/etc/k&mode=direct',
    );
    assert.equal(redactUri('/v1/hosts?token=abc#frag'), '/v1/hosts?token=***#frag');
  });

  it('redacts a URI given as a parameter, and URIs that do not parse', () => {
    const out = redactUri('qemu:///system?name=qemu%2Btcp%3A%2F%2Fu%3Ahunter2%40h%2Fsystem');
    assert.doesNotMatch(decodeURIComponent(out), /hunter2/);
    assert.equal(redactUri('qemu+tcp://u:hunter2@[bad/system'), 'qemu+tcp://u:***@[bad/system');
    assert.equal(redactUri('not a uri ?password=hunter2'), 'not a uri ?password=***');
  });
});

describe('redactXml and redactText', () => {
  it('removes passwd and password attributes, in either quote', () => {
    const xml = `<graphics type='vnc' passwd='hunter2' autoport='yes'/><graphics type="spice" password="x y"/>`;
    assert.equal(
      redactXml(xml),
      `<graphics type='vnc' passwd='${REDACTED}' autoport='yes'/><graphics type="spice" password="${REDACTED}"/>`,
    );
  });

  it('removes URI credentials, bearer values and password= pairs inside a message', () => {
    const text = redactText(
      "cannot connect to 'qemu+tcp://u:hunter2@h/system?password=hunter3': Bearer vg_abcdefghijkl; password=hunter4",
    );
    for (const s of ['hunter2', 'hunter3', 'vg_abcdefghijkl', 'hunter4'])
      assert.ok(!text.includes(s), text);
    assert.match(text, /^cannot connect to 'qemu\+tcp:\/\/u:\*\*\*@h\/system\?password=\*\*\*'/);
  });

  it('keeps the punctuation that ends a URI in a sentence', () => {
    assert.equal(
      redactText("host 'a' (qemu+tcp://u:pw@h/system?pass=hunter2) unreachable."),
      "host 'a' (qemu+tcp://u:***@h/system?pass=***) unreachable.",
    );
    assert.equal(redactText('see qemu+tcp://u:p(w)@h/system.'), 'see qemu+tcp://u:***@h/system.');
  });

  it('leaves text without secrets as it is', () => {
    const text =
      "domain 'web-1' is running; Basic authentication is not offered; <disk type='file'>";
    assert.equal(redactText(text), text);
  });
});

describe('redactSecrets', () => {
  it('replaces the values of secret-naming keys and redacts every string, without changing its input', () => {
    const input = {
      name: 'web',
      xml: "<domain><devices><graphics type='vnc' passwd='hunter2'/></devices></domain>",
      nested: [
        { password: 'p1', webhookSecret: 'p2', clientSecret: 'p3', apiKey: 'p4', privateKey: 'p5' },
      ],
      uri: 'qemu+tcp://h/system?pass=p6',
      token: 'p7',
      count: 3,
      none: null,
      key: 'a volume key stays',
    };
    const copy = structuredClone(input);
    const out = redactSecrets(input);
    assert.deepEqual(input, copy);
    const json = JSON.stringify(out);
    for (const s of ['hunter2', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'])
      assert.ok(
        !json.includes(`'${s}'`) && !json.includes(`"${s}"`) && !json.includes(`=${s}`),
        `${s}: ${json}`,
      );
    assert.equal(out.name, 'web');
    assert.equal(out.count, 3);
    assert.equal(out.none, null);
    assert.equal(out.key, 'a volume key stays');
    assert.equal(out.token, REDACTED);
  });

  it('is deterministic, so two redacted copies of one request compare equal', () => {
    const a = { xml: "<graphics passwd='one'/>" };
    const b = { xml: "<graphics passwd='one'/>" };
    assert.equal(JSON.stringify(redactSecrets(a)), JSON.stringify(redactSecrets(b)));
  });

  it('cuts objects deeper than its limit instead of walking them', () => {
    let deep: Record<string, unknown> = { password: 'bottom' };
    for (let i = 0; i < 10_000; i++) deep = { d: deep };
    const json = JSON.stringify(redactSecrets(deep));
    assert.ok(!json.includes('bottom'));
  });
});
