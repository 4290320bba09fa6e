/**
 * Call deadlines with one timer per connection instead of one per call.
 *
 * Calls with the same timeout expire in the order they were made, so each
 * distinct timeout keeps a FIFO of (deadline, serial); the single timer is armed
 * for the earliest head. Answered calls are not removed eagerly: the queue is
 * compacted when it holds mostly answered entries, keeping memory bounded by
 * the calls actually in flight.
 */
export class Deadlines {
  private readonly queues = new Map<number, { deadline: number; serial: number }[]>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  constructor(
    /** Is this serial still waiting for its reply? */
    private readonly isPending: (serial: number) => boolean,
    /** Called once for each pending call whose deadline passed. */
    private readonly expire: (serial: number, timeoutMs: number) => void,
  ) {}

  add(serial: number, timeoutMs: number, pendingCount: number): void {
    const deadline = Date.now() + timeoutMs;
    let queue = this.queues.get(timeoutMs);
    if (!queue) {
      queue = [];
      this.queues.set(timeoutMs, queue);
    }
    queue.push({ deadline, serial });
    if (queue.length > 64 && queue.length > 2 * pendingCount) {
      this.queues.set(
        timeoutMs,
        queue.filter((e) => this.isPending(e.serial)),
      );
    }
    if (deadline < this.armedFor) this.arm(deadline);
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
    this.queues.clear();
  }

  private arm(deadline: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = deadline;
    this.timer = setTimeout(() => this.fire(), Math.max(0, deadline - Date.now()));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const [timeoutMs, queue] of this.queues) {
      let expired = 0;
      while (expired < queue.length && queue[expired]!.deadline <= now) {
        const { serial } = queue[expired]!;
        expired++;
        if (this.isPending(serial)) this.expire(serial, timeoutMs);
      }
      if (expired > 0) queue.splice(0, expired);
      if (queue.length === 0) this.queues.delete(timeoutMs);
      else next = Math.min(next, queue[0]!.deadline);
    }
    if (next !== Infinity) this.arm(next);
  }
}
