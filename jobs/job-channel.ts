import { duplicateConnection, type RedisClient } from '#src/redis/redis-connection.js';

/**
 * Waiting on a Redis channel whose messages are job ids, without polling: one
 * subscriber connection (made on first use) wakes whoever waits for the id
 * that came.
 */
export class JobChannel {
  private subscriber: RedisClient | null = null;
  private subscribing: Promise<void> | null = null;
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly channel: string,
    private readonly connectionName: string,
  ) {}

  /**
   * Resolves when a message for job `id` comes, or after `ms`; `cancel` lets
   * go early. Subscribes first (Redis errors are thrown here), so a message
   * published after this resolved is not missed.
   */
  async next(id: string, ms: number): Promise<{ promise: Promise<void>; cancel(): void }> {
    await this.subscribe();
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    const set = this.waiters.get(id) ?? new Set();
    this.waiters.set(id, set);
    const timer = setTimeout(() => done(), Math.max(0, ms));
    const done = (): void => {
      clearTimeout(timer);
      set.delete(done);
      if (set.size === 0) this.waiters.delete(id);
      wake();
    };
    set.add(done);
    return { promise, cancel: done };
  }

  async publish(id: string): Promise<void> {
    await this.redis.publish(this.channel, id);
  }

  /** Wakes every waiter and closes the subscriber connection. */
  close(): void {
    for (const set of this.waiters.values()) for (const wake of [...set]) wake();
    this.subscriber?.disconnect();
  }

  private subscribe(): Promise<void> {
    if (this.subscribing) return this.subscribing;
    const subscriber = duplicateConnection(this.redis, this.connectionName);
    this.subscriber = subscriber;
    subscriber.on('message', (_channel: string, id: string) => {
      for (const wake of [...(this.waiters.get(id) ?? [])]) wake();
    });
    this.subscribing = subscriber.subscribe(this.channel).then(
      () => undefined,
      (err: unknown) => {
        this.subscribing = null;
        subscriber.disconnect();
        throw err;
      },
    );
    return this.subscribing;
  }
}
