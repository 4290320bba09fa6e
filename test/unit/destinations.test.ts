/**
 * The destination checks of outgoing requests (src/net/): CIDR parsing and
 * matching, the ranges denied by default, the precedence of the configured
 * lists, URL rules, and that every address a name resolves to is checked
 * (with a resolver standing for DNS, so no lookup leaves the machine).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cidrContains, parseCidr, parseIp } from '#src/net/cidr.js';
import {
  DestinationPolicy,
  DestinationRefused,
  pinnedLookup,
  type ResolvedAddress,
} from '#src/net/destination-policy.js';

const none = { allowed: [], denied: [] };

describe('CIDR ranges', () => {
  it('parses addresses and ranges, IPv4-mapped IPv6 as the IPv4 address it maps', () => {
    assert.deepEqual(parseIp('127.0.0.1'), { family: 4, value: 0x7f000001n });
    assert.deepEqual(parseIp('::ffff:127.0.0.1'), { family: 4, value: 0x7f000001n });
    assert.deepEqual(parseIp('[::ffff:7f00:1]'), { family: 4, value: 0x7f000001n });
    assert.deepEqual(parseIp('::1'), { family: 6, value: 1n });
    assert.deepEqual(parseIp('fe80::1%eth0'), { family: 6, value: (0xfe80n << 112n) | 1n });
    assert.equal(parseIp('localhost'), null);
    assert.equal(parseIp('300.1.1.1'), null);
    assert.equal(parseCidr('10.0.0.0/33'), null);
    assert.equal(parseCidr('fe80::/129'), null);
    assert.equal(parseCidr('10.0.0.0/8x'), null);
    assert.equal(parseCidr('10.1.2.3')?.text, '10.1.2.3/32');
    assert.equal(parseCidr('::1')?.text, '::1/128');
  });

  it('matches by prefix; IPv6 ranges match IPv4 only within ::ffff:0:0/96', () => {
    const ten = parseCidr('10.0.0.0/8')!;
    assert.ok(cidrContains(ten, parseIp('10.255.0.1')!));
    assert.ok(!cidrContains(ten, parseIp('11.0.0.1')!));
    assert.ok(cidrContains(parseCidr('::ffff:0:0/96')!, parseIp('8.8.8.8')!));
    assert.ok(!cidrContains(parseCidr('::/0')!, parseIp('8.8.8.8')!));
    assert.ok(cidrContains(parseCidr('::/0')!, parseIp('2001:db8::1')!));
    assert.ok(!cidrContains(ten, parseIp('::a00:1')!));
  });
});

describe('DestinationPolicy', () => {
  it('denies loopback, link-local, metadata, private, unspecified and multicast by default', () => {
    const policy = new DestinationPolicy(none);
    for (const [address, what] of [
      ['127.0.0.1', /loopback/],
      ['::1', /loopback/],
      ['169.254.169.254', /cloud metadata/],
      ['fd00:ec2::254', /cloud metadata/],
      ['169.254.1.1', /link-local/],
      ['fe80::1', /link-local/],
      ['10.0.0.1', /private/],
      ['172.31.255.255', /private/],
      ['192.168.1.1', /private/],
      ['fd12::1', /private/],
      ['0.0.0.0', /unspecified/],
      ['::', /unspecified/],
      ['224.0.0.251', /multicast/],
      ['ff02::1', /multicast/],
      ['::ffff:192.168.0.1', /private/],
      ['64:ff9b::7f00:1', /NAT64/],
    ] as const) {
      assert.match(policy.refusalOf(address) ?? 'allowed', what, address);
    }
    for (const address of ['8.8.8.8', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(policy.refusalOf(address), null, address);
    }
  });

  it('lets the most specific configured range decide, a deny on a tie, the defaults otherwise', () => {
    const policy = new DestinationPolicy({
      allowed: ['127.0.0.1/32', '203.0.113.0/24', '10.0.0.0/8'],
      denied: ['0.0.0.0/0', '10.1.0.0/16', '203.0.113.0/24'],
    });
    assert.equal(policy.refusalOf('127.0.0.1'), null);
    assert.match(policy.refusalOf('127.0.0.2')!, /WEBHOOK_DENIED_CIDRS \(0\.0\.0\.0\/0\)/);
    assert.match(policy.refusalOf('8.8.8.8')!, /WEBHOOK_DENIED_CIDRS/);
    assert.equal(policy.refusalOf('10.2.0.1'), null);
    assert.match(policy.refusalOf('10.1.0.1')!, /10\.1\.0\.0\/16/);
    assert.match(policy.refusalOf('203.0.113.9')!, /203\.0\.113\.0\/24/);
    // No IPv6 range configured: the defaults decide.
    assert.match(policy.refusalOf('::1')!, /loopback/);
    assert.equal(policy.refusalOf('2001:4860::8888'), null);
  });

  it('checks a URL: http(s), a host, no credentials, not too long', () => {
    const policy = new DestinationPolicy(none);
    for (const [url, message] of [
      ['ftp://example.com/', /http:\/\/ or https:\/\//],
      ['file:///etc/passwd', /http:\/\/ or https:\/\//],
      ['http://user:pw@example.com/', /user name or password/],
      ['http://user@example.com/', /user name or password/],
      ['/relative', /absolute/],
      [`https://example.com/${'a'.repeat(2048)}`, /at most 2048/],
    ] as const) {
      assert.throws(() => policy.checkUrl(url), message, url);
    }
    assert.equal(policy.checkUrl('HTTPS://Example.COM/a?b=c').href, 'https://example.com/a?b=c');
  });

  it('checks every address a name resolves to, and refuses a name that resolves to none', async () => {
    const answers: Record<string, ResolvedAddress[]> = {
      'mixed.example': [
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ],
      'public.example': [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:2800:220:1::', family: 6 },
      ],
      'empty.example': [],
    };
    const asked: string[] = [];
    const policy = new DestinationPolicy(none, async (name) => {
      asked.push(name);
      const found = answers[name];
      if (!found) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return found;
    });
    await assert.rejects(
      policy.resolve('https://mixed.example/hook'),
      (err: unknown) =>
        err instanceof DestinationRefused &&
        err.address === '10.0.0.7' &&
        /10\.0\.0\.7 \('mixed\.example' resolves to it\) is a private address/.test(err.message),
    );
    const ok = await policy.resolve('https://public.example/hook');
    assert.equal(ok.hostname, 'public.example');
    assert.equal(ok.addresses.length, 2);
    await assert.rejects(policy.resolve('http://empty.example/'), /resolves to no address/);
    await assert.rejects(
      policy.resolve('http://nowhere.example/'),
      /does not resolve \(ENOTFOUND\)/,
    );
    // An address literal is not looked up.
    await assert.rejects(policy.resolve('http://[::1]:8080/'), /::1 is the loopback address/);
    await assert.rejects(policy.resolve('http://2130706433/'), /127\.0\.0\.1 is a loopback/);
    assert.deepEqual(asked, [
      'mixed.example',
      'public.example',
      'empty.example',
      'nowhere.example',
    ]);
  });

  it('pins the connection to the checked addresses', () => {
    const lookup = pinnedLookup([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::', family: 6 },
    ]);
    const one: unknown[] = [];
    lookup('rebound.example', {}, (...args: unknown[]) => one.push(args));
    assert.deepEqual(one, [[null, '93.184.216.34', 4]]);
    const all: unknown[] = [];
    lookup('rebound.example', { all: true, family: 6 }, (...args: unknown[]) => all.push(args));
    assert.deepEqual(all, [[null, [{ address: '2606:2800:220:1::', family: 6 }]]]);
  });
});
