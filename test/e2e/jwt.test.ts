/**
 * The optional JWT bearer: tokens signed here with node:crypto (RS256, ES256,
 * EdDSA), keys served as a JWKS by a real HTTP server on 127.0.0.1 or read
 * from a PEM file, checked through GET /v1/me and the one authenticator.
 */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { ConfigError, loadConfig, type Env } from '#src/config/config.js';
import { TokenAuthenticator } from '#modules/auth/request-authenticator.js';
import { waitFor } from '../support/wait.js';
import {
  closeAllApps,
  deleteKeys,
  PROBLEM_JSON,
  startApp,
  testConfig,
  uniquePrefix,
  type TestApp,
} from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const ADMIN_TOKEN = 'jwt-test-admin-token-0123456789';
const ISSUER = 'https://idp.example.test/realms/portal';
const AUDIENCE = 'virtgate';
const ROLE_MAP = 'portal-admin:admin,portal-ops:operator,portal-viewers:viewer';

type Alg = 'RS256' | 'ES256' | 'EdDSA' | 'HS256' | 'none';

interface Pair {
  kid: string;
  alg: Alg;
  publicKey: KeyObject;
  privateKey: KeyObject;
}

function pair(kid: string, alg: 'RS256' | 'ES256' | 'EdDSA'): Pair {
  const keys =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  return { kid, alg, ...keys };
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = (): number => Math.floor(Date.now() / 1000);

/** A compact JWS of `claims`, signed with `key` (or MACed with `secret` for HS256). */
function sign(
  alg: Alg,
  claims: Record<string, unknown>,
  options: { key?: KeyObject; kid?: string; secret?: string | Buffer } = {},
): string {
  const header = { alg, typ: 'JWT', ...(options.kid !== undefined && { kid: options.kid }) };
  const data = `${b64(header)}.${b64(claims)}`;
  let signature: Buffer;
  switch (alg) {
    case 'RS256':
      signature = cryptoSign('sha256', Buffer.from(data), options.key!);
      break;
    case 'ES256':
      signature = cryptoSign('sha256', Buffer.from(data), {
        key: options.key!,
        dsaEncoding: 'ieee-p1363',
      });
      break;
    case 'EdDSA':
      signature = cryptoSign(null, Buffer.from(data), options.key!);
      break;
    case 'HS256':
      signature = createHmac('sha256', options.secret!).update(data).digest();
      break;
    case 'none':
      signature = Buffer.alloc(0);
      break;
  }
  return `${data}.${signature.toString('base64url')}`;
}

/** Claims the gateway accepts, with `extra` on top. */
function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'alice',
    iat: now(),
    exp: now() + 300,
    role: 'portal-admin',
    virtgate_scopes: '*',
    ...extra,
  };
}

function tokenOf(p: Pair, extra: Record<string, unknown> = {}): string {
  return sign(p.alg, claims(extra), { key: p.privateKey, kid: p.kid });
}

function jwkOf(p: Pair): Record<string, unknown> {
  return { ...p.publicKey.export({ format: 'jwk' }), kid: p.kid, use: 'sig', alg: p.alg };
}

/** The JWKS server: what it serves, and how (normally, never finishing, or too big). */
class JwksServer {
  keys: Array<Record<string, unknown>> = [];
  mode: 'ok' | 'hang' | 'huge' = 'ok';
  fetches = 0;
  /** The kids of each JWKS served whole, in order. */
  readonly served: Array<Array<unknown>> = [];
  private server!: Server;
  private readonly hanging = new Set<import('node:http').ServerResponse>();

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.fetches += 1;
      if (req.url !== '/jwks.json') return void res.writeHead(404).end();
      if (this.mode === 'hang') {
        // Headers, then a body that never ends.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"keys": [');
        this.hanging.add(res);
        return;
      }
      if (this.mode === 'huge') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`{"keys": [], "padding": "${'x'.repeat(2 * 1024 * 1024)}"}`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
      res.end(JSON.stringify({ keys: this.keys }));
      this.served.push(this.keys.map((k) => k.kid));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/jwks.json`;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Checks a 401 problem answer whose detail matches `detail`, and that it does not echo the token. */
function assertRefused(res: request.Response, detail: RegExp, token: string): void {
  assert.equal(res.status, 401, JSON.stringify(res.body));
  assert.match(res.headers['content-type'] ?? '', PROBLEM_JSON);
  assert.match(res.headers['www-authenticate'] ?? '', /^Bearer realm="virtgate"$/);
  assert.equal(res.body.code, 'UNAUTHENTICATED');
  assert.match(res.body.detail, detail);
  assert.ok(!res.text.includes(token.split('.')[2] || token), 'the answer echoes the token');
}

const me = (t: TestApp, token: string): request.Test =>
  request(t.server).get('/v1/me').set('Authorization', `Bearer ${token}`).timeout(10_000);

describe('JWT bearer with a JWKS URL', () => {
  let t: TestApp;
  const jwks = new JwksServer();
  const rsa = pair('rsa-1', 'RS256');
  const ec = pair('ec-1', 'ES256');
  const ed = pair('ed-1', 'EdDSA');
  const tokens: string[] = [];
  const track = (token: string): string => (tokens.push(token), token);

  before(async () => {
    jwks.keys = [
      jwkOf(rsa),
      jwkOf(ec),
      jwkOf(ed),
      // A symmetric key is never a verification key, whatever a token says.
      { kty: 'oct', kid: 'hs-1', k: Buffer.from('shared-secret').toString('base64url') },
    ];
    const url = await jwks.start();
    t = await startApp(
      testConfig(prefix, {
        // Refused JWTs are the point here: the failed-authentication limit (limits.test.ts) is lifted.
        AUTH_FAILURES_PER_ADDRESS: '0',
        VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN,
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
        JWT_JWKS_URL: url,
        JWT_ROLE_MAP: ROLE_MAP,
        JWT_SCOPES_CLAIM: 'virtgate_scopes',
        JWT_JWKS_TIMEOUT_MS: '500',
        JWT_JWKS_REFRESH_MIN_S: '1',
      }),
    );
  });

  after(async () => {
    await closeAllApps();
    await jwks.stop();
    await deleteKeys(prefix);
  });

  it('fetches the JWKS once at first use, even for an unknown kid', async () => {
    assert.equal(jwks.fetches, 0);
    const unknown = track(tokenOf(pair('not-there', 'EdDSA')));
    assertRefused(await me(t, unknown), /kid names no key/, unknown);
    assert.equal(jwks.fetches, 1);
  });

  it('accepts RS256, ES256 and EdDSA tokens, mapping role and scopes from claims', async () => {
    const cases = [
      { p: rsa, extra: { role: 'portal-admin', virtgate_scopes: '*' }, role: 'admin' },
      {
        p: ec,
        extra: {
          sub: 'bob',
          role: 'portal-ops',
          virtgate_scopes: [{ host: 'local', domains: ['web-*'] }],
        },
        role: 'operator',
      },
      {
        p: ed,
        extra: {
          sub: 'carol',
          role: ['unrelated-group', 'portal-viewers', 'portal-ops'],
          virtgate_scopes: [{ host: 'local', pools: ['default'] }, { host: 'other' }],
        },
        role: 'operator',
      },
    ];
    const authenticator = t.app.get(TokenAuthenticator);
    for (const { p, extra, role } of cases) {
      const token = track(tokenOf(p, extra));
      const sub = extra.sub ?? 'alice';
      const res = await me(t, token).expect(200);
      assert.deepEqual(res.body, { id: `jwt:${ISSUER}#${sub}`, role }, p.alg);
      const caller = await authenticator.callerFor(token, 'req-1');
      const scopes = extra.virtgate_scopes === '*' ? null : extra.virtgate_scopes;
      assert.deepEqual(caller, { id: `jwt:${ISSUER}#${sub}`, role, scopes, requestId: 'req-1' });
    }
    assert.equal(jwks.fetches, 1, 'known kids are served from the cache');
  });

  it('authenticates GraphQL the same way', async () => {
    const query = { query: '{ hosts { edges { node { name } } } }' };
    const post = (token: string): request.Test =>
      request(t.server)
        .post('/graphql')
        .set('content-type', 'application/json')
        .set('authorization', `Bearer ${token}`)
        .send(query)
        .timeout(10_000);
    const ok = await post(track(tokenOf(ec, { role: 'portal-viewers' })));
    assert.equal(ok.status, 200);
    assert.equal(ok.body.errors, undefined, JSON.stringify(ok.body.errors));
    assert.ok(Array.isArray(ok.body.data.hosts.edges));
    const expired = track(tokenOf(ec, { exp: now() - 120 }));
    const refused = await post(expired);
    const code = refused.body.code ?? refused.body.errors?.[0]?.extensions?.code;
    assert.equal(code, 'UNAUTHENTICATED');
    assert.equal(refused.body.data ?? null, null);
    assert.ok(!refused.text.includes(expired.split('.')[2]!));
  });

  it('still accepts API tokens beside JWTs', async () => {
    const res = await me(t, ADMIN_TOKEN).expect(200);
    assert.deepEqual(res.body, { id: 'admin', role: 'admin' });
  });

  it('accepts an aud list holding the audience, and an exp within the clock tolerance', async () => {
    await me(t, track(tokenOf(rsa, { aud: ['other', AUDIENCE] }))).expect(200);
    await me(t, track(tokenOf(rsa, { exp: now() - 5 }))).expect(200);
  });

  it('refuses alg none, with or without a signature part', async () => {
    for (const kid of [undefined, rsa.kid]) {
      const token = track(sign('none', claims(), kid === undefined ? {} : { kid }));
      assertRefused(await me(t, token), /algorithm is not accepted/, token);
    }
    for (const alg of ['None', 'NONE', 'nOnE']) {
      const token = track(`${b64({ alg })}.${b64(claims())}.`);
      assertRefused(await me(t, token), /algorithm is not accepted/, token);
    }
  });

  it('refuses HS256 MACed with the public key (key confusion) or a JWKS oct key', async () => {
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    for (const secret of [pem, Buffer.from(pem), JSON.stringify(jwkOf(rsa))]) {
      const token = track(sign('HS256', claims(), { kid: rsa.kid, secret }));
      assertRefused(await me(t, token), /algorithm is not accepted/, token);
    }
    const oct = track(sign('HS256', claims(), { kid: 'hs-1', secret: 'shared-secret' }));
    assertRefused(await me(t, oct), /algorithm is not accepted/, oct);
  });

  it('refuses a token whose header alg differs from its key (an RS256 kid with ES256)', async () => {
    const token = track(sign('ES256', claims(), { key: ec.privateKey, kid: rsa.kid }));
    assertRefused(await me(t, token), /kid names no key/, token);
  });

  it('refuses a wrong issuer or audience', async () => {
    const iss = track(tokenOf(rsa, { iss: 'https://evil.example.test' }));
    assertRefused(await me(t, iss), /another issuer/, iss);
    const aud = track(tokenOf(rsa, { aud: 'someone-else' }));
    assertRefused(await me(t, aud), /another audience/, aud);
    const noAud = track(tokenOf(rsa, { aud: undefined }));
    assertRefused(await me(t, noAud), /another audience/, noAud);
  });

  it('refuses expired, not-yet-valid, future-issued and never-expiring tokens', async () => {
    const expired = track(tokenOf(ec, { exp: now() - 120 }));
    assertRefused(await me(t, expired), /expired/, expired);
    const early = track(tokenOf(ec, { nbf: now() + 120 }));
    assertRefused(await me(t, early), /not valid yet/, early);
    const future = track(tokenOf(ec, { iat: now() + 120 }));
    assertRefused(await me(t, future), /issued in the future/, future);
    const forever = track(tokenOf(ec, { exp: undefined }));
    assertRefused(await me(t, forever), /no expiry/, forever);
    const noSub = track(tokenOf(ec, { sub: undefined }));
    assertRefused(await me(t, noSub), /no subject/, noSub);
  });

  it('refuses a tampered payload, and a signature by another key', async () => {
    const viewer = tokenOf(ed, { role: 'portal-viewers' });
    const [h, , s] = viewer.split('.');
    const tampered = track(`${h}.${b64(claims({ role: 'portal-admin' }))}.${s}`);
    assertRefused(await me(t, tampered), /signature does not verify/, tampered);
    const other = pair(rsa.kid, 'RS256');
    const forged = track(tokenOf(other));
    assertRefused(await me(t, forged), /signature does not verify/, forged);
    const truncated = track(viewer.slice(0, -4));
    assertRefused(await me(t, truncated), /signature does not verify/, truncated);
  });

  it('refuses a role claim that maps to no role, and malformed scopes', async () => {
    for (const role of ['portal-unknown', 'admin', undefined, ['x', 'y'], { admin: true }]) {
      const token = track(tokenOf(rsa, { role, virtgate_scopes: '*' }));
      assertRefused(await me(t, token), /role claim maps to no role/, token);
    }
    for (const scopes of [
      undefined,
      'local',
      [{ host: 'local', domain: ['web-*'] }], // misspelt: must not widen to every domain
      [{ host: 'local', domains: 'web-*' }],
      [{ domains: ['web-*'] }],
    ]) {
      const token = track(tokenOf(rsa, { virtgate_scopes: scopes }));
      assertRefused(await me(t, token), /virtgate_scopes claim is not/, token);
    }
  });

  it('takes a key added to the JWKS (rotation) once its kid is seen', async () => {
    // The keys before the rotation are in the cache (whichever test ran before this one).
    await me(t, track(tokenOf(rsa))).expect(200);
    const rotated = pair('rsa-2', 'RS256');
    jwks.keys = [...jwks.keys, jwkOf(rotated)];
    const token = track(tokenOf(rotated, { sub: 'dave' }));
    // The JWKS is fetched again for an unknown kid once JWT_JWKS_REFRESH_MIN_S (1 s here)
    // has passed since the last fetch: until then the token is refused, then taken.
    const res = await waitFor(async () => {
      const answer = await me(t, token);
      if (answer.status !== 200) assertRefused(answer, /kid names no key/, token);
      return answer.status === 200 ? answer : null;
    }, 'the rotated key to be taken, once the refresh interval lets its kid fetch the JWKS');
    assert.equal(res.body.id, `jwt:${ISSUER}#dave`);
    assert.deepEqual(
      jwks.served.at(-1),
      jwks.keys.map((k) => k.kid),
      'it came from a fetch of the rotated JWKS',
    );
  });

  it('is not hung by a JWKS that never finishes or is too big: cached keys keep working', async () => {
    await me(t, track(tokenOf(ec))).expect(200); // the keys are in the cache
    for (const mode of ['hang', 'huge'] as const) {
      jwks.mode = mode;
      const before = jwks.fetches;
      const unknown = track(tokenOf(pair(`new-${mode}`, 'ES256')));
      // Refused until the refresh interval lets its kid fetch the JWKS, and refused after:
      // the one request that fetched waited for that fetch to fail.
      const refusals: request.Response[] = [];
      await waitFor(async () => {
        refusals.push(await me(t, unknown));
        return jwks.fetches > before;
      }, `a token with an unknown kid to fetch the JWKS that is ${mode}`);
      for (const res of refusals) assertRefused(res, /kid names no key/, unknown);
      await me(t, track(tokenOf(ec))).expect(200);
    }
    jwks.mode = 'ok';
    const warnings = t.logs.raw.filter((line) => line.includes('cannot fetch the JWKS'));
    assert.ok(
      warnings.some((line) => /no complete answer within 500 ms/.test(line)),
      'timeout',
    );
    assert.ok(
      warnings.some((line) => /over 262144 bytes/.test(line)),
      'size',
    );
  });

  it('sends a JWT to the token store when it is not shaped like one', async () => {
    const token = tokenOf(rsa);
    const padded = track(`${token}=`);
    assertRefused(await me(t, padded), /^the bearer token is not valid$/, padded);
  });

  it('never logs a key or a token', () => {
    const logs = t.logs.raw.join('\n');
    for (const p of [rsa, ec, ed]) {
      const jwk = p.publicKey.export({ format: 'jwk' });
      for (const member of [jwk.n, jwk.x, jwk.y]) {
        if (member) assert.ok(!logs.includes(member), `a ${p.alg} key member was logged`);
      }
    }
    assert.ok(tokens.length > 40);
    for (const token of tokens) {
      for (const part of token.split('.')) {
        if (part.length > 20) assert.ok(!logs.includes(part), 'a token part was logged');
      }
    }
  });
});

describe('JWT bearer with a JWKS URL: unknown kids make no flood of fetches', () => {
  let t: TestApp;
  const jwks = new JwksServer();
  const rsa = pair('rsa-1', 'RS256');

  before(async () => {
    jwks.keys = [jwkOf(rsa)];
    const url = await jwks.start();
    t = await startApp(
      testConfig(prefix, {
        AUTH_FAILURES_PER_ADDRESS: '0',
        VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN,
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
        JWT_JWKS_URL: url,
        JWT_ROLE_MAP: ROLE_MAP,
        JWT_SCOPES_CLAIM: 'virtgate_scopes',
        // An hour: every request below falls inside one refresh interval, however slow the
        // machine (that a fetch comes again after the interval is the rotation test's).
        JWT_JWKS_REFRESH_MIN_S: '3600',
      }),
    );
  });

  after(async () => {
    await closeAllApps();
    await jwks.stop();
    await deleteKeys(prefix);
  });

  it('refuses unknown kids, fetching the JWKS at most once per refresh interval', async () => {
    const unknown = pair('rsa-unknown', 'RS256');
    const burst = (from: number) =>
      Array.from({ length: 20 }, (_, i) => tokenOf(unknown, { sub: `u${from + i}` }));
    // 20 at once at first use: they share the one fetch.
    const first = burst(0);
    const answers = await Promise.all(first.map((token) => me(t, token)));
    answers.forEach((res, i) => assertRefused(res, /kid names no key/, first[i]!));
    assert.equal(jwks.fetches, 1, 'one fetch for 20 tokens with an unknown kid');
    // 20 more, at once and then one by one, within the interval: none fetches again.
    const second = burst(20);
    const again = await Promise.all(second.map((token) => me(t, token)));
    again.forEach((res, i) => assertRefused(res, /kid names no key/, second[i]!));
    for (const token of burst(40).slice(0, 5)) {
      assertRefused(await me(t, token), /kid names no key/, token);
    }
    assert.equal(jwks.fetches, 1, 'no fetch again within the refresh interval');
    // The keys it fetched serve meanwhile.
    await me(t, tokenOf(rsa)).expect(200);
    assert.equal(jwks.fetches, 1);
  });
});

describe('JWT bearer with a PEM public key file', () => {
  let t: TestApp;
  let dir: string;
  const ed = pair('ignored', 'EdDSA');
  const rsa = pair('rsa-1', 'RS256');
  let pem: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'virtgate-jwt-'));
    pem = ed.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    writeFileSync(join(dir, 'issuer.pem'), pem);
    t = await startApp(
      testConfig(prefix, {
        // Refused JWTs are the point here: the failed-authentication limit (limits.test.ts) is lifted.
        AUTH_FAILURES_PER_ADDRESS: '0',
        VIRTGATE_ADMIN_TOKEN: ADMIN_TOKEN,
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
        JWT_PUBLIC_KEY_FILE: join(dir, 'issuer.pem'),
        JWT_ALGORITHMS: 'EdDSA',
        JWT_ROLE_CLAIM: 'realm_access.roles',
      }),
    );
  });

  after(async () => {
    await closeAllApps();
    rmSync(dir, { recursive: true, force: true });
    await deleteKeys(prefix);
  });

  it('accepts a token signed by the file key, with or without a kid; roles from a nested claim', async () => {
    const extra = { role: undefined, realm_access: { roles: ['operator'] } };
    for (const kid of [undefined, 'any-kid']) {
      const token = sign('EdDSA', claims(extra), { key: ed.privateKey, kid });
      const res = await me(t, token).expect(200);
      assert.deepEqual(res.body, { id: `jwt:${ISSUER}#alice`, role: 'operator' });
    }
    await me(t, ADMIN_TOKEN).expect(200);
  });

  it('refuses algorithms outside JWT_ALGORITHMS, and HS256 MACed with the PEM', async () => {
    const rs = tokenOf(rsa, { role: undefined, realm_access: { roles: ['admin'] } });
    assertRefused(await me(t, rs), /algorithm is not accepted \(only EdDSA\)/, rs);
    const hs = sign('HS256', claims({ realm_access: { roles: ['admin'] } }), { secret: pem });
    assertRefused(await me(t, hs), /algorithm is not accepted/, hs);
  });

  it('never logs the key', () => {
    const body = pem.split('\n').slice(1, -2).join('');
    assert.ok(body.length > 20);
    assert.ok(!t.logs.raw.join('\n').includes(body));
  });
});

describe('JWT configuration', () => {
  const base = { JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE };
  const problemsOf = (env: Env): string => {
    try {
      loadConfig(env);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.join('\n');
    }
    assert.fail(`loadConfig accepted ${JSON.stringify(env)}`);
  };

  it('is off when no JWT_ variable is set', () => {
    assert.equal(loadConfig({}).jwt, null);
    assert.equal(loadConfig({ JWT_SECRET: 'another program', JWT_ISSUER: '' }).jwt, null);
  });

  it('reads a JWKS configuration with its defaults', () => {
    const jwt = loadConfig({ ...base, JWT_JWKS_URL: 'https://idp.example.test/certs' }).jwt;
    assert.deepEqual(jwt, {
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUrl: 'https://idp.example.test/certs',
      publicKeyFile: null,
      publicKey: null,
      algorithms: ['RS256', 'ES256', 'EdDSA'],
      roleClaim: 'role',
      roleMap: { viewer: 'viewer', operator: 'operator', admin: 'admin' },
      scopesClaim: null,
      clockToleranceS: 30,
      jwksTimeoutMs: 3000,
      jwksCacheS: 600,
      jwksRefreshMinS: 30,
    });
  });

  it('names what a partial configuration lacks', () => {
    assert.match(
      problemsOf({ JWT_ISSUER: ISSUER }),
      /JWT_ISSUER set, but the JWT bearer also needs JWT_AUDIENCE, JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE/,
    );
    assert.match(problemsOf({ ...base }), /needs JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE/);
    assert.match(
      problemsOf({ JWT_ROLE_MAP: ROLE_MAP }),
      /JWT_ROLE_MAP set, but .* needs JWT_ISSUER, JWT_AUDIENCE/,
    );
    assert.match(
      problemsOf({ ...base, JWT_JWKS_URL: 'https://a.test/k', JWT_PUBLIC_KEY_FILE: '/k.pem' }),
      /both set/,
    );
  });

  it('refuses bad values, naming each variable', () => {
    const url = { ...base, JWT_JWKS_URL: 'https://idp.example.test/certs' };
    assert.match(
      problemsOf({ ...base, JWT_JWKS_URL: 'http://idp.example.test/k' }),
      /^JWT_JWKS_URL/,
    );
    assert.match(problemsOf({ ...base, JWT_JWKS_URL: 'https://u:p@idp.test/k' }), /^JWT_JWKS_URL/);
    loadConfig({ ...base, JWT_JWKS_URL: 'http://127.0.0.1:8000/k' });
    loadConfig({ ...base, JWT_JWKS_URL: 'http://[::1]:8000/k' });
    assert.match(problemsOf({ ...url, JWT_ALGORITHMS: 'RS256,HS256' }), /^JWT_ALGORITHMS/);
    assert.match(problemsOf({ ...url, JWT_ALGORITHMS: 'none' }), /^JWT_ALGORITHMS/);
    assert.match(problemsOf({ ...url, JWT_ROLE_MAP: 'a:root' }), /^JWT_ROLE_MAP/);
    assert.match(problemsOf({ ...url, JWT_CLOCK_TOLERANCE_S: '9999' }), /^JWT_CLOCK_TOLERANCE_S/);
    assert.match(
      problemsOf({ ...url, VIRTGATE_ADMIN_TOKEN: 'aaaaaaaa.bbbbbbbb.cccccccc' }),
      /VIRTGATE_ADMIN_TOKEN looks like a JWT/,
    );
    const map = loadConfig({ ...url, JWT_ROLE_MAP: 'urn:grp:ops:operator' }).jwt?.roleMap;
    assert.deepEqual(map, { 'urn:grp:ops': 'operator' });
  });

  it('refuses a key file that is missing, not a public key, too weak or for another algorithm', () => {
    const dir = mkdtempSync(join(tmpdir(), 'virtgate-jwt-config-'));
    try {
      const file = (name: string, content: string): string => {
        writeFileSync(join(dir, name), content);
        return join(dir, name);
      };
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
      const spki = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }).toString();
      const cases: Array<[string, RegExp]> = [
        [join(dir, 'missing.pem'), /cannot be read \(ENOENT\)/],
        ['relative.pem', /absolute path/],
        [file('junk.pem', 'not a key'), /must hold a PEM public key \(content not shown\)/],
        [file('weak.pem', spki(weak)), /RSA key of 2048 bits or more/],
        [file('p384.pem', spki(p384)), /RSA key of 2048 bits or more/],
      ];
      for (const [path, problem] of cases) {
        assert.match(problemsOf({ ...base, JWT_PUBLIC_KEY_FILE: path }), problem, path);
      }
      const ed = file('ed.pem', spki(generateKeyPairSync('ed25519').publicKey));
      assert.match(
        problemsOf({ ...base, JWT_PUBLIC_KEY_FILE: ed, JWT_ALGORITHMS: 'RS256' }),
        /holds a key for EdDSA, which JWT_ALGORITHMS \(RS256\) does not accept/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
