/**
 * Secrets the gateway must keep but never store in clear (webhook signing
 * secrets; host credentials later): sealed with AES-256-GCM under the key of
 * VIRTGATE_SECRETS_KEY. Each seal has a fresh 96-bit nonce and is bound to
 * a context (what it belongs to, `webhook:wh_…`), so a sealed value copied
 * onto another record does not open there.
 */
import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';

/** The format version: `v1.<nonce>.<ciphertext>.<tag>`, each part base64url. */
const VERSION = 'v1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A sealed value that does not open: another key, another context, or altered. */
export class SecretBoxError extends Error {
  override readonly name = 'SecretBoxError';
}

export class SecretBox {
  constructor(private readonly key: KeyObject) {
    if (key.type !== 'secret' || key.symmetricKeySize !== 32) {
      throw new Error('a SecretBox needs a 32-byte secret key');
    }
  }

  /** `plaintext` sealed for `context`. */
  seal(plaintext: string, context: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, nonce, sealed, cipher.getAuthTag()]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join('.');
  }

  /** The plaintext of a value sealed for `context`; SecretBoxError when it does not open. */
  open(sealed: string, context: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== VERSION) {
      throw new SecretBoxError('not a sealed value of this format');
    }
    const [nonce, data, tag] = parts.slice(1).map((p) => Buffer.from(p, 'base64url')) as [
      Buffer,
      Buffer,
      Buffer,
    ];
    if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES) {
      throw new SecretBoxError('not a sealed value of this format');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, nonce, {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretBoxError(
        'the sealed value does not open with this key (VIRTGATE_SECRETS_KEY changed?) for this record',
      );
    }
  }
}
