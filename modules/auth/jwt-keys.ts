import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { jwtAlgorithmOf, type JwtAlgorithm, type JwtConfig } from '#src/config/config.js';

/** A public key a token may be verified with, and the one algorithm it verifies. */
export interface JwtKey {
  readonly kid: string | null;
  readonly alg: JwtAlgorithm;
  readonly key: KeyObject;
}

/** Where the issuer's public keys come from: a JWKS URL or a PEM file. */
export interface JwtKeySource {
  /**
   * The keys that may have signed a token with header `kid` and `alg`: with a
   * kid, the key of that kid; without, the only key for `alg` (none when there
   * are several). May fetch the JWKS again; never waits longer than its timeout.
   */
  keysFor(kid: string | null, alg: JwtAlgorithm): Promise<readonly JwtKey[]>;
}

/** Largest JWKS body read; a bigger one is refused unread. */
export const JWKS_MAX_BYTES = 256 * 1024;
/** Most keys taken from one JWKS. */
export const JWKS_MAX_KEYS = 100;

/** The key source `config` names. */
export function jwtKeySource(config: JwtConfig): JwtKeySource {
  if (config.publicKey) return new StaticKeySource(config.publicKey);
  if (config.jwksUrl) return new JwksKeySource(config);
  throw new Error('JwtConfig has no key source');
}

/** The one key of JWT_PUBLIC_KEY_FILE, whatever the token's kid. */
export class StaticKeySource implements JwtKeySource {
  private readonly keys: readonly JwtKey[];

  constructor(key: KeyObject) {
    const alg = jwtAlgorithmOf(key);
    this.keys = alg ? [{ kid: null, alg, key }] : [];
  }

  keysFor(_kid: string | null, alg: JwtAlgorithm): Promise<readonly JwtKey[]> {
    return Promise.resolve(this.keys.filter((k) => k.alg === alg));
  }
}

/**
 * The keys of a JWKS URL, cached. A token whose kid is not in the cache
 * fetches the JWKS again, at most once per JWT_JWKS_REFRESH_MIN_S (so a flood
 * of made-up kids makes no flood of fetches); a cache older than
 * JWT_JWKS_CACHE_S is refreshed in the background while its keys still serve.
 * Concurrent requests share one fetch. A fetch is bounded in time
 * (JWT_JWKS_TIMEOUT_MS, body included) and in size (JWKS_MAX_BYTES), follows
 * no redirect, and when it fails the keys already held stay in use.
 */
export class JwksKeySource implements JwtKeySource {
  private readonly logger = new Logger('JwtKeys');
  private readonly where: string;
  private keys: readonly JwtKey[] = [];
  /** When the keys were last fetched successfully (ms since epoch), -Infinity: never. */
  private loadedAt = -Infinity;
  /** When a fetch last started, successful or not. */
  private attemptedAt = -Infinity;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly config: Pick<
      JwtConfig,
      'jwksUrl' | 'jwksTimeoutMs' | 'jwksCacheS' | 'jwksRefreshMinS' | 'algorithms'
    >,
  ) {
    const url = new URL(config.jwksUrl ?? '');
    // What logs show of the URL: no query string, in case it carries anything.
    this.where = `${url.origin}${url.pathname}`;
  }

  async keysFor(kid: string | null, alg: JwtAlgorithm): Promise<readonly JwtKey[]> {
    const now = Date.now();
    const mayFetch = now - this.attemptedAt >= this.config.jwksRefreshMinS * 1000;
    let refreshed = false;
    if (this.loadedAt === -Infinity) {
      if (mayFetch || this.inFlight) await this.refresh();
      refreshed = true;
    } else if (now - this.loadedAt >= this.config.jwksCacheS * 1000 && !this.inFlight) {
      void this.refresh();
    }
    let found = match(this.keys, kid, alg);
    if (found.length === 0 && !refreshed && (mayFetch || this.inFlight)) {
      await this.refresh();
      found = match(this.keys, kid, alg);
    }
    return found;
  }

  /** Fetches the JWKS (or joins the fetch under way); never throws. */
  private refresh(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    this.attemptedAt = Date.now();
    this.inFlight = this.load()
      .catch((err: unknown) => {
        this.logger.warn(`cannot fetch the JWKS at ${this.where}: ${(err as Error).message}`);
      })
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  private async load(): Promise<void> {
    const body = await fetchBounded(this.config.jwksUrl ?? '', this.config.jwksTimeoutMs);
    const { keys, skipped } = parseJwks(body, this.config.algorithms);
    this.keys = keys;
    this.loadedAt = Date.now();
    this.logger.debug(
      `fetched ${keys.length} key(s) from the JWKS at ${this.where}` +
        (skipped > 0 ? `, skipped ${skipped} unusable` : ''),
    );
  }
}

function match(keys: readonly JwtKey[], kid: string | null, alg: JwtAlgorithm): JwtKey[] {
  const forAlg = keys.filter((k) => k.alg === alg);
  if (kid !== null) return forAlg.filter((k) => k.kid === kid);
  return forAlg.length === 1 ? forAlg : [];
}

/** GET `url` as JSON, within `timeoutMs` for the whole exchange and JWKS_MAX_BYTES of body. */
async function fetchBounded(url: string, timeoutMs: number): Promise<unknown> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url, {
      signal,
      redirect: 'error',
      headers: { accept: 'application/jwk-set+json, application/json' },
    });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new Error(`it answered HTTP ${res.status}`);
    }
    if (Number(res.headers.get('content-length') ?? 0) > JWKS_MAX_BYTES) {
      await res.body.cancel();
      throw new Error(`its body is over ${JWKS_MAX_BYTES} bytes`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += chunk.byteLength;
      if (size > JWKS_MAX_BYTES) throw new Error(`its body is over ${JWKS_MAX_BYTES} bytes`);
      chunks.push(chunk);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch {
      throw new Error('its body is not JSON');
    }
  } catch (err) {
    if (signal.aborted) {
      throw new Error(`no complete answer within ${timeoutMs} ms`, { cause: err });
    }
    throw err;
  }
}

/**
 * The usable keys of a JWKS: RSA (≥ 2048 bits), EC P-256 and Ed25519 public
 * keys for signatures whose algorithm is accepted. Symmetric (`oct`) keys,
 * keys for another use or algorithm, and malformed ones are skipped.
 */
export function parseJwks(
  body: unknown,
  algorithms: readonly JwtAlgorithm[],
): { keys: JwtKey[]; skipped: number } {
  const list = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) throw new Error('its body is not a JWKS (no "keys" list)');
  const keys: JwtKey[] = [];
  let skipped = 0;
  for (const jwk of list.slice(0, JWKS_MAX_KEYS) as unknown[]) {
    const key = importJwk(jwk, algorithms);
    if (key) keys.push(key);
    else skipped += 1;
  }
  return { keys, skipped: skipped + Math.max(0, list.length - JWKS_MAX_KEYS) };
}

function importJwk(jwk: unknown, algorithms: readonly JwtAlgorithm[]): JwtKey | null {
  if (typeof jwk !== 'object' || jwk === null) return null;
  const { kty, kid, use, alg, key_ops: ops } = jwk as Record<string, unknown>;
  if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') return null;
  if (use !== undefined && use !== 'sig') return null;
  if (ops !== undefined && !(Array.isArray(ops) && ops.includes('verify'))) return null;
  if (kid !== undefined && (typeof kid !== 'string' || kid.length > 256)) return null;
  let key: KeyObject;
  try {
    // Only the public members: a JWKS that (wrongly) publishes a private key is read as its public half.
    const { n, e, crv, x, y } = jwk as Record<string, unknown>;
    const members =
      kty === 'RSA' ? { kty, n, e } : kty === 'EC' ? { kty, crv, x, y } : { kty, crv, x };
    key = createPublicKey({ key: members as JsonWebKey, format: 'jwk' });
  } catch {
    return null;
  }
  const keyAlg = jwtAlgorithmOf(key);
  if (keyAlg === null || !algorithms.includes(keyAlg)) return null;
  if (alg !== undefined && alg !== keyAlg) return null;
  return { kid: kid ?? null, alg: keyAlg, key };
}
