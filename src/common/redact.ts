import { isCredentialParam, redactUri } from '../libvirt/uri.js';

/**
 * Removing secrets from what the gateway shows, logs or keeps: tokens,
 * passwords, webhook secrets and keys must never leave it in clear (issue #9,
 * "Secrets"). Everything here copies; nothing changes its input.
 *
 * - URIs: the password of the userinfo and credential query parameters
 *   (`redactUri`, from the libvirt client, which owns URI syntax and must
 *   stand alone);
 * - XML: `passwd` and `password` attributes (a VNC or SPICE `<graphics>`);
 * - free text (error messages, log lines): every URI in it, every XML
 *   credential attribute, `Bearer` values and `password=…`-like pairs;
 * - objects: the values of keys that name a secret (`password`, `token`,
 *   `secret`, `privateKey`…), and every string as free text.
 */

export { redactUri };

/** What a removed value is replaced with (in URIs: `***`, which needs no escaping). */
export const REDACTED = '[redacted]';

/** Objects deeper than this are cut, not walked (input depth is bounded elsewhere, but never trusted here). */
const MAX_DEPTH = 32;

/** Key names whose values are secrets, in any case, with `_`/`-` or camelCase. */
const SECRET_KEY =
  /^(?:passw(?:or)?d|pass|pwd|secret|token|access_?token|refresh_?token|id_?token|api_?key|private_?key|client_?secret|webhook_?secret|signing_?key|jwt_?(?:key|secret)|authorization|cookie|set-cookie)$|secret$|password$|passwd$|token$/i;

/** Whether an object key names a secret. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A URI of any scheme inside text; ends at whitespace, a quote or an angle bracket. */
const URI_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>`]+/gi;
/** What ends a sentence rather than a URI (`… (qemu:///system).`): kept out of the redaction. */
const TRAILING_PUNCTUATION = /[).,;:!?]+$/;
/** `passwd="…"` / `password='…'` (XML attributes, also HTML-ish text). */
const XML_CREDENTIAL_ATTR = /(\b(?:passwd|password)\s*=\s*)(["'])[^"']*\2/gi;
/** `Bearer <value>`, and `Authorization: <scheme> <value>`, quoted in a message. */
const AUTH_SCHEME_VALUE = /\b(bearer|authorization:\s*[a-z]+)(\s+)[A-Za-z0-9._~+/=-]{8,}/gi;
/** `password=value` outside a URI (a query string alone, a key=value message). */
const KEY_VALUE = /([?&;\s(]|^)([A-Za-z_][A-Za-z0-9_.-]*)=([^&\s;'"<>()]+)/g;

/** XML with the values of its `passwd` and `password` attributes removed. */
export function redactXml(xml: string): string {
  return xml.replace(XML_CREDENTIAL_ATTR, `$1$2${REDACTED}$2`);
}

/** Free text (a message, a log line, an XML document) with every secret it shows removed. */
export function redactText(text: string): string {
  if (text.length === 0) return text;
  let out = text.replace(URI_IN_TEXT, (uri) => {
    const tail = TRAILING_PUNCTUATION.exec(uri)?.[0] ?? '';
    return redactUri(uri.slice(0, uri.length - tail.length)) + tail;
  });
  out = redactXml(out);
  out = out.replace(AUTH_SCHEME_VALUE, `$1$2${REDACTED}`);
  out = out.replace(KEY_VALUE, (whole, lead: string, key: string) =>
    isCredentialParam(key) ? `${lead}${key}=***` : whole,
  );
  return out;
}

/**
 * A copy of `value` (JSON-like: objects, arrays, strings, numbers…) with the
 * values of secret-naming keys replaced by REDACTED and every string passed
 * through `redactText`. Deterministic, so two copies of one request compare
 * equal (job idempotency compares redacted requests).
 */
export function redactSecrets<T>(value: T): T {
  return redactValue(value, 0) as T;
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (Buffer.isBuffer(value) || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    out[key] =
      isSecretKey(key) && v !== null && v !== undefined && v !== ''
        ? REDACTED
        : redactValue(v, depth + 1);
  }
  return out;
}
