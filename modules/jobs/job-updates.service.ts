import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { JobStore, type JobRecord } from '#jobs/job-store.js';
import { TERMINAL_STATES } from '#jobs/job-types.js';

/**
 * Waits for jobs to finish without polling: one subscriber connection per
 * process listens to the job store's update channel and wakes the waiters of
 * the job that changed.
 */
@Injectable()
export class JobUpdates implements OnApplicationShutdown {
  private subscriber: Redis | null = null;
  private subscribing: Promise<void> | null = null;
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly store: JobStore,
  ) {}

  /** The record once it is final, or as it is when `ms` have passed. */
  async waitFor(id: string, ms: number): Promise<JobRecord | null> {
    await this.subscribe();
    const deadline = Date.now() + ms;
    for (;;) {
      const changed = this.nextChange(id, deadline - Date.now());
      const record = await this.store.get(id);
      if (!record || TERMINAL_STATES.has(record.state) || Date.now() >= deadline) {
        changed.cancel();
        return record;
      }
      await changed.promise;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    for (const set of this.waiters.values()) for (const wake of set) wake();
    this.subscriber?.disconnect();
  }

  private nextChange(id: string, ms: number): { promise: Promise<void>; cancel(): void } {
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

  private subscribe(): Promise<void> {
    if (this.subscribing) return this.subscribing;
    const subscriber = this.redis.duplicate({ connectionName: 'virtgate-job-updates' });
    this.subscriber = subscriber;
    subscriber.on('message', (_channel: string, id: string) => {
      for (const wake of [...(this.waiters.get(id) ?? [])]) wake();
    });
    this.subscribing = subscriber.subscribe(this.keys.jobUpdates).then(
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
