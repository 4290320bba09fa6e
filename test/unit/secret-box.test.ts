/**
 * Sealed secrets (src/common/secret-box.ts): what is sealed opens with the
 * same key and context only, a seal never holds the plaintext, and an
 * altered seal is refused.
 */
import assert from 'node:assert/strict';
import { createSecretKey, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { SecretBox, SecretBoxError } from '#src/common/secret-box.js';

describe('SecretBox', () => {
  const box = new SecretBox(createSecretKey(randomBytes(32)));
  const secret = `whsec_${randomBytes(32).toString('base64')}`;

  it('opens what it sealed, for the same context', () => {
    const sealed = box.seal(secret, 'webhook:wh_1');
    assert.match(sealed, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    assert.ok(!sealed.includes(secret.slice(6)));
    assert.ok(!sealed.includes(Buffer.from(secret).toString('base64url')));
    assert.equal(box.open(sealed, 'webhook:wh_1'), secret);
    assert.notEqual(box.seal(secret, 'webhook:wh_1'), sealed, 'a fresh nonce each time');
  });

  it('refuses another context, another key, an altered or malformed seal', () => {
    const sealed = box.seal(secret, 'webhook:wh_1');
    assert.throws(() => box.open(sealed, 'webhook:wh_2'), SecretBoxError);
    const other = new SecretBox(createSecretKey(randomBytes(32)));
    assert.throws(() => other.open(sealed, 'webhook:wh_1'), SecretBoxError);
    const parts = sealed.split('.');
    const data = Buffer.from(parts[2]!, 'base64url');
    data[0]! ^= 1;
    parts[2] = data.toString('base64url');
    assert.throws(() => box.open(parts.join('.'), 'webhook:wh_1'), SecretBoxError);
    for (const bad of ['', 'v1.a.b', 'v2.a.b.c', secret]) {
      assert.throws(() => box.open(bad, 'webhook:wh_1'), SecretBoxError);
    }
  });

  it('needs a 32-byte key', () => {
    assert.throws(() => new SecretBox(createSecretKey(randomBytes(16))), /32-byte/);
  });
});
