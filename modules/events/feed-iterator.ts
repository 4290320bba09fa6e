import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import type { FeedSubscription } from '#src/events/event-feed.js';

/**
 * The async iterator a GraphQL subscription hands to Mercurius, fed by an
 * EventFeed subscription: events wait in a queue until the connection takes
 * them (Mercurius takes the next once the last is written to the socket, so
 * a slow client leaves them queued).
 *
 * The queue is bounded: when events land on a queue the client has not
 * emptied and it grows past `maxBytes` (their JSON size, roughly), the
 * subscription ends with UNAVAILABLE once what is queued has been taken, and
 * the feed subscription is closed: the client resumes with `after` set to
 * the last id it received. A batch landing on an empty queue is taken whole
 * (the feed hands at most a read's worth at once), and while the feed
 * catches up from a cursor it waits for the queue to empty before its next
 * chunk, so a long catch-up is paced by the client instead of cut off.
 *
 * `return()` (the client completed, or the connection closed) ends it at
 * once, pending `next()` included, and closes the feed subscription: nothing
 * stays subscribed after the client has gone.
 */
export class FeedIterator<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private readonly sizes: number[] = [];
  private queuedBytes = 0;
  private waiter: {
    resolve: (r: IteratorResult<T>) => void;
    reject: (err: unknown) => void;
  } | null = null;
  private drained: Array<() => void> = [];
  private failure: unknown = null;
  private ended = false;
  private subscription: FeedSubscription | null = null;

  constructor(
    private readonly maxBytes: number,
    private readonly sizeOf: (item: T) => number,
  ) {}

  /** Hands over the feed subscription to close when this ends (closed at once if it has). */
  attach(subscription: FeedSubscription): void {
    if (this.ended) subscription.close();
    else this.subscription = subscription;
  }

  /** Whether it has ended (completed, failed or returned). */
  get done(): boolean {
    return this.ended;
  }

  /**
   * The feed's sink: queues `items`; the promise (if any) settles once the
   * client has taken them, which holds back the feed's catch-up meanwhile.
   */
  push(items: readonly T[]): Promise<void> | undefined {
    if (this.ended) return undefined;
    const landedOnEmpty = this.queue.length === 0;
    for (const item of items) {
      if (this.waiter) {
        const waiter = this.waiter;
        this.waiter = null;
        waiter.resolve({ value: item, done: false });
        continue;
      }
      const size = this.sizeOf(item);
      this.queue.push(item);
      this.sizes.push(size);
      this.queuedBytes += size;
    }
    if (!landedOnEmpty && this.queuedBytes > this.maxBytes) {
      this.fail(
        new AppError(
          ErrorCode.UNAVAILABLE,
          `the subscriber is too slow: more than ${this.maxBytes} bytes of events waited for it (EVENTS_CLIENT_BUFFER_BYTES); subscribe again with after set to the id of the last event received`,
        ),
      );
      return undefined;
    }
    if (this.queue.length === 0) return undefined;
    return new Promise((resolve) => this.drained.push(resolve));
  }

  /** Ends it with `err` once the queued items have been taken (the first error wins). */
  fail(err: unknown): void {
    if (this.ended) return;
    this.failure = err;
    this.finish();
    if (this.waiter && this.queue.length === 0) {
      const waiter = this.waiter;
      this.waiter = null;
      this.failure = null;
      waiter.reject(err);
    }
  }

  /** Ends it normally once the queued items have been taken. */
  complete(): void {
    if (this.ended) return;
    this.finish();
    if (this.waiter && this.queue.length === 0) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) {
      const value = this.queue.shift()!;
      this.queuedBytes -= this.sizes.shift()!;
      if (this.queue.length === 0) this.release();
      return Promise.resolve({ value, done: false });
    }
    if (this.failure !== null) {
      const err = this.failure;
      this.failure = null;
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter) return Promise.reject(new Error('next() called before the last one settled'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.finish();
    this.queue.length = 0;
    this.sizes.length = 0;
    this.queuedBytes = 0;
    this.failure = null;
    this.release();
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.resolve({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private finish(): void {
    this.ended = true;
    this.subscription?.close();
    this.subscription = null;
    // The feed's catch-up must not wait on a client that is gone.
    this.release();
  }

  private release(): void {
    const drained = this.drained;
    this.drained = [];
    for (const resolve of drained) resolve();
  }
}
