import { Injectable } from '@nestjs/common';
import {
  BlockJobStatus,
  DomainEventId,
  type DomainEvent,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';

export type BlockJobEvent = Extract<DomainEvent, { kind: 'blockJob' }>;

const TERMINAL: ReadonlySet<number> = new Set([
  BlockJobStatus.COMPLETED,
  BlockJobStatus.FAILED,
  BlockJobStatus.CANCELED,
]);

/** The BLOCK_JOB_2 events of one disk of one domain, seen on one connection since the watch began. */
export class BlockJobWatch {
  readonly events: BlockJobEvent[] = [];
  private wake: (() => void) | null = null;
  /** How many events there were when the last sleep ended. */
  private seen = 0;

  constructor(
    readonly client: LibvirtClient,
    readonly key: string,
    private readonly onClose: (w: BlockJobWatch) => void,
  ) {}

  push(event: BlockJobEvent): void {
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
   * while the caller was busy (an abort's CANCELED arrives before the abort
   * call returns) must not wait for the next round.
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
    this.onClose(this);
  }
}

/**
 * BLOCK_JOB_2 events on the worker's read-write connections: each connection
 * a block job uses registers once for the events of every domain, and each
 * event goes to the watches of its domain (by UUID) and disk (target) on that
 * connection. libvirt sends an event only to the connection that registered,
 * so a watch must be made before the job is started or re-attached to.
 */
@Injectable()
export class BlockJobEvents {
  private readonly registered = new WeakMap<LibvirtClient, Promise<void>>();
  private readonly listening = new WeakSet<LibvirtClient>();
  private readonly watches = new Map<string, Set<BlockJobWatch>>();

  async watch(client: LibvirtClient, dom: RemoteDomain, disk: string): Promise<BlockJobWatch> {
    const key = `${dom.uuid.toString('hex')}/${disk}`;
    const watch = new BlockJobWatch(client, key, (w) => {
      const set = this.watches.get(w.key);
      set?.delete(w);
      if (set?.size === 0) this.watches.delete(w.key);
    });
    let set = this.watches.get(key);
    if (!set) this.watches.set(key, (set = new Set()));
    set.add(watch);
    try {
      await this.register(client);
    } catch (err) {
      watch.close();
      throw err;
    }
    return watch;
  }

  private register(client: LibvirtClient): Promise<void> {
    if (!this.listening.has(client)) {
      this.listening.add(client);
      client.on('domainEvent', (e) => {
        if (e.kind !== 'blockJob') return;
        for (const w of this.watches.get(`${e.dom.uuid.toString('hex')}/${e.disk}`) ?? []) {
          if (w.client === client) w.push(e);
        }
      });
    }
    let registered = this.registered.get(client);
    if (!registered) {
      registered = client.domainEventRegisterAny(DomainEventId.BLOCK_JOB_2, null).then(() => {});
      this.registered.set(client, registered);
      registered.catch(() => this.registered.delete(client));
    }
    return registered;
  }
}
