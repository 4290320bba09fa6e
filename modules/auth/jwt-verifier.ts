import { constants, verify as verifySignature, type KeyObject } from 'node:crypto';
import { looksLikeJwt, type JwtAlgorithm } from '#src/config/config.js';
import type { JwtKeySource } from './jwt-keys.js';

/** A token refused; the message completes "the bearer token is not valid: …" and names no secret. */
export class JwtRejected extends Error {
  override readonly name = 'JwtRejected';
}

/** What a token must satisfy besides its signature. */
export interface JwtExpectations {
  readonly issuer: string;
  readonly audience: string;
  readonly algorithms: readonly JwtAlgorithm[];
  readonly clockToleranceS: number;
}

/** The claims of a verified token: `iss`, `sub` and `exp` are known to be there. */
export type JwtClaims = Record<string, unknown> & { iss: string; sub: string; exp: number };

/** Longest token verified; a longer one is refused unread. */
export const JWT_MAX_LENGTH = 16 * 1024;

/**
 * Verifies a compact JWS: the header's `alg` must be one of `expected.algorithms`
 * (asymmetric only: `none` and HS* are never accepted, whatever the key) and
 * the algorithm of the key it names (kid), so an RS256 key is never used to
 * check an HS256 MAC; then the signature, then `iss`, `aud`, `exp` (required),
 * `nbf` and `iat`, and a `sub`. Throws JwtRejected naming the first failure.
 *
 * Written on node:crypto rather than passport-jwt/jsonwebtoken: jsonwebtoken
 * (through jws/jwa) has no EdDSA, and its only verification hook is a
 * process-wide static meant for tests.
 */
export async function verifyJwt(
  token: string,
  keys: JwtKeySource,
  expected: JwtExpectations,
  nowMs: number = Date.now(),
): Promise<JwtClaims> {
  if (token.length > JWT_MAX_LENGTH) throw new JwtRejected(`longer than ${JWT_MAX_LENGTH} bytes`);
  if (!looksLikeJwt(token)) throw new JwtRejected('not a compact JWS (three base64url parts)');
  const [headerPart = '', payloadPart = '', signaturePart = ''] = token.split('.');
  const header = decodeObject(headerPart, 'header');

  const alg = header.alg;
  if (typeof alg !== 'string' || !(expected.algorithms as readonly string[]).includes(alg)) {
    throw new JwtRejected(`its algorithm is not accepted (only ${expected.algorithms.join(', ')})`);
  }
  if (header.crit !== undefined) throw new JwtRejected('it has critical header parameters');
  const kid = header.kid;
  if (kid !== undefined && (typeof kid !== 'string' || kid.length > 256)) {
    throw new JwtRejected('its kid is not a string of at most 256 characters');
  }
  // jku, x5u, jwk and x5c header parameters are never used: keys come from configuration only.
  const candidates = await keys.keysFor(kid ?? null, alg as JwtAlgorithm);
  if (candidates.length === 0) {
    throw new JwtRejected(
      kid === undefined
        ? `it names no kid and the issuer has no single ${alg} key`
        : 'its kid names no key of the issuer',
    );
  }
  const signed = Buffer.from(`${headerPart}.${payloadPart}`, 'ascii');
  const signature = Buffer.from(signaturePart, 'base64url');
  const valid = candidates.some((k) =>
    signatureValid(alg as JwtAlgorithm, k.key, signed, signature),
  );
  if (!valid) throw new JwtRejected('its signature does not verify');

  const claims = decodeObject(payloadPart, 'payload');
  checkClaims(claims, expected, nowMs / 1000);
  return claims as JwtClaims;
}

function signatureValid(
  alg: JwtAlgorithm,
  key: KeyObject,
  data: Buffer,
  signature: Buffer,
): boolean {
  try {
    return verifyWith(alg, key, data, signature);
  } catch {
    return false; // a malformed signature is a wrong one
  }
}

function verifyWith(alg: JwtAlgorithm, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  switch (alg) {
    case 'RS256':
      return verifySignature(
        'sha256',
        data,
        { key, padding: constants.RSA_PKCS1_PADDING },
        signature,
      );
    case 'ES256':
      // JWS carries ECDSA signatures as r || s (64 bytes), not DER.
      return (
        signature.length === 64 &&
        verifySignature('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
      );
    case 'EdDSA':
      return signature.length === 64 && verifySignature(null, data, key, signature);
  }
}

function decodeObject(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new JwtRejected(`its ${what} is not base64url JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new JwtRejected(`its ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function checkClaims(
  claims: Record<string, unknown>,
  expected: JwtExpectations,
  now: number,
): void {
  const leeway = expected.clockToleranceS;
  if (claims.iss !== expected.issuer) throw new JwtRejected('it is from another issuer (iss)');
  const aud = claims.aud;
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.includes(expected.audience)) {
    throw new JwtRejected('it is meant for another audience (aud)');
  }
  if (!isNumericDate(claims.exp)) throw new JwtRejected('it has no expiry (exp)');
  if (now > claims.exp + leeway) throw new JwtRejected('it has expired (exp)');
  if (claims.nbf !== undefined) {
    if (!isNumericDate(claims.nbf)) throw new JwtRejected('its nbf is not a number');
    if (now + leeway < claims.nbf) throw new JwtRejected('it is not valid yet (nbf)');
  }
  if (claims.iat !== undefined) {
    if (!isNumericDate(claims.iat)) throw new JwtRejected('its iat is not a number');
    if (now + leeway < claims.iat) throw new JwtRejected('it is issued in the future (iat)');
  }
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 256) {
    throw new JwtRejected('it has no subject (sub) of 1-256 characters');
  }
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
