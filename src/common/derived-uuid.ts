import { createHash } from 'node:crypto';
import { uuidString } from '#src/libvirt/index.js';

/**
 * A v4-shaped UUID derived from `parts`: the same parts give the same UUID.
 * What a new object's UUID is made of when its request has an
 * Idempotency-Key, so that a retried request is the same request (and a
 * re-run job finds the object an earlier attempt made).
 */
export function derivedUuid(parts: readonly string[]): string {
  const h = createHash('sha256').update(JSON.stringify(parts)).digest().subarray(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x40; // version 4 layout
  h[8] = (h[8]! & 0x3f) | 0x80;
  return uuidString(h);
}
