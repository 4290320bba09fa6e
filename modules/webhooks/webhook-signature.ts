/**
 * Signing as the Standard Webhooks specification defines it, so that a
 * receiver verifies with the spec's own libraries (`standardwebhooks`):
 * a secret is `whsec_` + base64 of random bytes; the HMAC-SHA256 key is those
 * bytes; the signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the
 * `webhook-signature` header is `v1,<base64 signature>`, one per secret,
 * space-separated (the new secret's first during a rotation's grace period).
 */
import { createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';
/** Random bytes of a new secret (the spec asks for 24 at least). */
const SECRET_BYTES = 32;

/** A new signing secret, `whsec_…`: shown once to whoever made it. */
export function generateSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`;
}

/** The HMAC key of a `whsec_` secret. */
export function signingKeyOf(secret: string): KeyObject {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error('not a whsec_ secret');
  return createSecretKey(Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64'));
}

/** The three headers of a delivery attempt. */
export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * The headers of one attempt: `id` is the delivery's (the same across its
 * retries; never user-controlled, never holding a `.`), `timestamp` the
 * attempt's Unix seconds, `body` exactly the bytes sent.
 */
export function signatureHeaders(
  keys: readonly KeyObject[],
  id: string,
  timestamp: number,
  body: string,
): SignatureHeaders {
  if (keys.length === 0) throw new Error('a delivery needs a signing key');
  if (id.includes('.')) throw new Error('a webhook-id must not hold a "."');
  const content = `${id}.${timestamp}.${body}`;
  const signatures = keys.map(
    (key) => `v1,${createHmac('sha256', key).update(content, 'utf8').digest('base64')}`,
  );
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatures.join(' '),
  };
}
