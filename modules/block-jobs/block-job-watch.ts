import { HostEvents, type HostEventSubscription } from '#src/hosts/host-events.js';
import type { HostRecord } from '#src/hosts/host-registry.js';
import { BlockJobStatus, type DomainEvent, type RemoteDomain } from '#src/libvirt/index.js';

export type BlockJobEvent = Extract<DomainEvent, { kind: 'blockJob' }>;

const TERMINAL: ReadonlySet<number> = new Set([
  BlockJobStatus.COMPLETED,
  BlockJobStatus.FAILED,
  BlockJobStatus.CANCELED,
]);

/**
 * The BLOCK_JOB_2 events of one disk of one domain, heard from its host's
 * event source since the watch was opened. Open it before the job is
 * started or re-attached to: libvirt sends an event only to connections
 * registered at the time.
 */
export class BlockJobWatch {
  readonly events: BlockJobEvent[] = [];
  /** The host's event connection was lost while watching: an event may have been missed. */
  gap = false;
  private wake: (() => void) | null = null;
  /** How many events there were when the last sleep ended. */
  private seen = 0;
  private subscription: HostEventSubscription | null = null;

  private constructor(
    private readonly uuid: Buffer,
    private readonly disk: string,
  ) {}

  /** Watches `disk` of `dom` on `host`, once the host's events are heard (HOST_UNREACHABLE otherwise). */
  static async open(
    events: HostEvents,
    host: HostRecord,
    dom: RemoteDomain,
    disk: string,
  ): Promise<BlockJobWatch> {
    const watch = new BlockJobWatch(dom.uuid, disk);
    watch.subscription = events.subscribe(host, (e) => {
      if (e.kind === 'disconnected') watch.gap = true;
      if (e.kind !== 'domain' || e.event.kind !== 'blockJob') return;
      if (e.event.disk === watch.disk && e.event.dom.uuid.equals(watch.uuid)) watch.push(e.event);
    });
    try {
      await events.ready(host);
    } catch (err) {
      watch.close();
      throw err;
    }
    return watch;
  }

  private push(event: BlockJobEvent): void {
    this.events.push(event);
    this.wake?.();
  }

  /** The terminal event (completed, failed, canceled) seen since `from` (an index into events), if any. */
  terminal(from = 0): BlockJobEvent | undefined {
    return this.events.slice(from).find((e) => TERMINAL.has(e.status));
  }

  sawReady(from = 0): boolean {
    return this.events.slice(from).some((e) => e.status === BlockJobStatus.READY);
  }

  /**
   * Resolves after `ms`, as soon as an event arrives, or when `also` settles.
   * At once when an event came since the last sleep ended: one that came
   * while the caller was busy (an abort's CANCELED may arrive before the
   * abort call returns) must not wait for the next round.
   */
  async sleep(ms: number, also?: Promise<unknown>): Promise<void> {
    if (this.events.length > this.seen) {
      this.seen = this.events.length;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
      also?.then(done, done);
    });
    this.wake = null;
    this.seen = this.events.length;
  }

  close(): void {
    this.subscription?.close();
    this.subscription = null;
  }
}
