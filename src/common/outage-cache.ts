/**
 * What was last read from the gateway's store, kept in memory to answer from
 * while the store does not answer (and only then: a live store is always
 * asked). Entries older than `maxAgeMs` are not used; the oldest go first
 * past `maxEntries`.
 */
export class OutageCache<V> {
  private readonly entries = new Map<string, { value: V; at: number }>();

  constructor(
    private readonly maxAgeMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  remember(key: string, value: V, now = Date.now()): void {
    this.entries.delete(key); // re-inserted last: the Map's order is the age order
    this.entries.set(key, { value, at: now });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  /** The value read within `maxAgeMs`, or undefined. */
  recall(key: string, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (!entry || now - entry.at > this.maxAgeMs) return undefined;
    return entry.value;
  }
}
