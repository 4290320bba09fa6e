import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { BlockJobLedger } from '#jobs/block-job-ledger.js';
import { withDeadline } from '#jobs/queues.js';
import { BlockJobReconciler } from '#modules/block-jobs/index.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { newEvent, type NewEvent } from '#src/events/event.js';
import { APPEND_EVENT_LUA, EVENT_STREAM, type EventStream } from '#src/events/event-stream.js';
import { HostConnections } from '#src/hosts/host-connections.js';
import { HostEvents, type HostEvent, type HostEventSubscription } from '#src/hosts/host-events.js';
import { HostRegistry, type HostRecord } from '#src/hosts/host-registry.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import {
  ConnectListAllDomainsFlags as ListFlags,
  DomainState,
  uuidString,
  type DomainEvent,
  type LibvirtClient,
} from '#src/libvirt/index.js';
import {
  normaliseDomainEvent,
  stateAfter,
  transitions,
  type KnownState,
} from './domain-event-normaliser.js';

/** How long the shutdown waits for the lease round, then for the hosts' steps under way. */
const SHUTDOWN_WAIT_MS = 10_000;
/** Renews a lease only while it is still ours. KEYS: 1 the lease. ARGV: 1 our token, 2 its TTL (ms). */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
/** Lets a lease go only if it is ours. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Appends a host's events and records what they change (its domains as last
 * announced, its link's state) in one step, only while the lease is ours: a
 * worker that lost its hold on the host (paused past its TTL, say) cannot
 * add a thing once another has taken over.
 * KEYS: 1 the lease, 2 the stream, 3 its trimmed-through key, 4 the host's
 * domains, 5 its link. ARGV: 1 our token, 2 the stream's maxlen, 3 the link
 * (`up`, `down`, or empty: unchanged), 4 the number of events n, 5…4+n the
 * events' JSON, then UUID, value (JSON; empty: forget the domain), ….
 */
const PUBLISH = `${APPEND_EVENT_LUA}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('LEASE_LOST') end
local n = tonumber(ARGV[4])
local ids = {}
for i = 5, 4 + n do ids[#ids + 1] = append_event(KEYS[2], KEYS[3], tonumber(ARGV[2]), ARGV[i]) end
for i = 5 + n, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[4], ARGV[i]) else redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]) end
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[5], ARGV[3]) end
return ids`;

/** A domain as last announced. */
interface Known {
  name: string;
  state: KnownState;
}

type Step = { kind: 'event'; event: HostEvent; duringReconcile: boolean } | { kind: 'reconcile' };

/** One host this worker holds: its subscription, and the queue its events go through in order. */
class Ownership {
  subscription: HostEventSubscription | null = null;
  chain: Promise<void> = Promise.resolve();
  known = new Map<string, Known>();
  /** The link as last announced: null before anything was (a host never followed). */
  link: 'up' | 'down' | null = null;
  loaded = false;
  linkUp = false;
  reconciling = false;
  stopped = false;
  disconnectedSince: number | null = null;

  constructor(readonly host: HostRecord) {}
}

/**
 * The source of every libvirt event in the stream: for each registered
 * host, exactly one worker holds the host's event registration, as a lease
 * in Redis (a TTL it renews). A worker that dies stops renewing, and another
 * takes the host over within the lease time; one whose event connection is
 * down for a lease time lets it go, so a worker that can reach the host gets
 * it. Hosts added at run time are taken on the next round, removed ones let go.
 *
 * Each held host's libvirt events go, in the order they came, through one
 * queue: normalised (domain-event-normaliser.ts), correlated to the
 * gateway's block jobs, appended. When the link is lost, `host.disconnected`;
 * when it is back (or a worker takes a host over), the host's domains are
 * compared with what was last announced and each difference is announced as
 * the event a listener missed, `reconciled: true`; then `host.reconnected`.
 * At least once: a worker killed between libvirt's event and the append
 * loses it, and the next owner's reconciliation announces the state change.
 */
@Injectable()
export class HostEventPublisher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(HostEventPublisher.name);
  /** This process's lease token. */
  private readonly token = randomUUID();
  private readonly owned = new Map<string, Ownership>();
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private closed = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(EVENT_STREAM) private readonly stream: EventStream,
    private readonly registry: HostRegistry,
    private readonly hostEvents: HostEvents,
    private readonly connections: HostConnections,
    private readonly ledger: BlockJobLedger,
    private readonly blockJobs: BlockJobReconciler,
  ) {}

  onApplicationBootstrap(): void {
    const round = (): void => {
      this.ticking ??= this.tick()
        .catch((err: unknown) => this.logger.warn(`event leases: ${(err as Error).message}`))
        .finally(() => (this.ticking = null));
    };
    this.timer = setInterval(round, Math.max(200, Math.floor(this.config.eventsLeaseMs / 3)));
    this.timer.unref();
    round();
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    // Each step is bounded (Redis's command timeout, libvirt's call timeout), but a round
    // or a host's step may chain several: the shutdown waits for them a while, not forever.
    await withDeadline(this.ticking ?? Promise.resolve(), SHUTDOWN_WAIT_MS);
    // Let the hosts go at once, so another worker need not wait out the leases.
    await withDeadline(
      Promise.all([...this.owned.values()].map((o) => this.stop(o, true))),
      SHUTDOWN_WAIT_MS,
    );
  }

  /** The hosts this process holds now (tests, health). */
  get hosts(): string[] {
    return [...this.owned.keys()];
  }

  private async tick(): Promise<void> {
    if (this.closed) return;
    const hosts = await this.registry.list();
    const byName = new Map(hosts.map((h) => [h.name, h]));
    for (const o of [...this.owned.values()]) {
      const now = byName.get(o.host.name);
      if (!now || now.uri !== o.host.uri) {
        await this.stop(o, true);
        if (!now) await this.forget(o.host.name);
        continue;
      }
      const renewed = await this.redis.eval(
        RENEW,
        1,
        this.keys.eventsLease(o.host.name),
        this.token,
        this.config.eventsLeaseMs,
      );
      if (renewed !== 1) {
        this.logger.warn(`host '${o.host.name}': lost its event lease to another worker`);
        await this.stop(o, false);
      } else if (
        o.disconnectedSince !== null &&
        Date.now() - o.disconnectedSince > this.config.eventsLeaseMs
      ) {
        // Down for a whole lease: let a worker that may reach it try.
        await this.stop(o, true);
      } else if (!o.linkUp) {
        this.connect(o);
      }
    }
    for (const host of hosts) {
      if (this.closed || this.owned.has(host.name)) continue;
      const got = await this.redis.set(
        this.keys.eventsLease(host.name),
        this.token,
        'PX',
        this.config.eventsLeaseMs,
        'NX',
      );
      if (got === 'OK') {
        this.logger.log(`host '${host.name}': holding its event registration (pid ${process.pid})`);
        this.own(host);
      }
    }
  }

  private own(host: HostRecord): void {
    const o = new Ownership(host);
    this.owned.set(host.name, o);
    o.subscription = this.hostEvents.subscribe(host, (event) => {
      if (event.kind === 'connected') {
        this.linkCameUp(o);
        return;
      }
      if (event.kind === 'disconnected') o.linkUp = false;
      this.enqueue(o, { kind: 'event', event, duringReconcile: o.reconciling });
    });
    this.connect(o);
  }

  /** Opens (or joins) the host's event connection; its registration reaching us starts a reconciliation. */
  private connect(o: Ownership): void {
    this.hostEvents.ready(o.host).then(
      () => {
        if (o.subscription?.connected) this.linkCameUp(o);
      },
      (err: unknown) => {
        if (o.stopped) return;
        o.disconnectedSince ??= Date.now();
        this.enqueue(o, {
          kind: 'event',
          event: { kind: 'disconnected', error: (err as Error).message },
          duringReconcile: false,
        });
      },
    );
  }

  private linkCameUp(o: Ownership): void {
    if (o.linkUp || o.stopped) return;
    o.linkUp = true;
    o.disconnectedSince = null;
    o.reconciling = true;
    this.enqueue(o, { kind: 'reconcile' });
  }

  private enqueue(o: Ownership, step: Step): void {
    o.chain = o.chain
      .then(async () => {
        if (o.stopped) return;
        if (!o.loaded) await this.load(o);
        if (step.kind === 'reconcile') await this.reconcile(o);
        else await this.handle(o, step.event, step.duringReconcile);
      })
      .catch((err: unknown) => this.failed(o, err));
  }

  private async failed(o: Ownership, err: unknown): Promise<void> {
    if ((err as Error).message?.includes('LEASE_LOST')) {
      this.logger.warn(`host '${o.host.name}': another worker holds its events now`);
      // Not `stop`: this runs inside `o.chain`, which `stop` awaits. Waiting for it here
      // would never end, and neither would a tick or a shutdown stopping `o` meanwhile.
      this.halt(o);
      return;
    }
    this.logger.warn(
      `host '${o.host.name}': publishing its events failed: ${(err as Error).message}`,
    );
    // What was not announced is found by the next reconciliation.
    if (o.linkUp && !o.stopped) {
      o.linkUp = false;
      setTimeout(() => this.linkCameUp(o), 1000).unref();
    }
  }

  private async load(o: Ownership): Promise<void> {
    const [domains, link] = await Promise.all([
      this.redis.hgetall(this.keys.eventsDomains(o.host.name)),
      this.redis.get(this.keys.eventsHostLink(o.host.name)),
    ]);
    o.known = new Map(Object.entries(domains).map(([uuid, v]) => [uuid, JSON.parse(v) as Known]));
    o.link = link === 'up' || link === 'down' ? link : null;
    o.loaded = true;
  }

  private async handle(o: Ownership, event: HostEvent, duringReconcile: boolean): Promise<void> {
    if (event.kind === 'disconnected') {
      if (o.link !== 'up') return;
      await this.publish(
        o,
        [newEvent('host.disconnected', o.host.name, { data: { error: event.error } })],
        [],
        'down',
      );
      return;
    }
    if (event.kind !== 'domain') return;
    await this.handleDomainEvent(o, event.event, duringReconcile);
  }

  private async handleDomainEvent(
    o: Ownership,
    e: DomainEvent,
    duringReconcile: boolean,
  ): Promise<void> {
    const uuid = uuidString(e.dom.uuid);
    const known = o.known.get(uuid);
    const change = stateAfter(e, known?.state ?? null);
    // What the reconciliation's listing already showed (and announced) is not announced twice.
    if (duringReconcile && change !== undefined && change === (known?.state ?? null)) return;
    let blockJobId: string | null = null;
    if (e.kind === 'blockJob') {
      blockJobId = await this.ledger.jobOn({ host: o.host.name, domainUuid: uuid, disk: e.disk });
    }
    const event = normaliseDomainEvent(o.host.name, e, blockJobId);
    if (!event) return;
    const updates: [string, Known | null][] = [];
    if (change !== undefined)
      updates.push([uuid, change === null ? null : { name: e.dom.name, state: change }]);
    await this.publish(o, [event], updates, '');
  }

  /**
   * Compares the host's domains now with those last announced, and
   * announces each difference as the event it would have been; then the
   * link is up (and, when it had been announced down, `host.reconnected`).
   * A host never followed before is taken as it is, with nothing announced.
   */
  private async reconcile(o: Ownership): Promise<void> {
    const live = await this.connections.withClient(o.host, (c) => liveDomains(c));
    o.reconciling = false;
    const host = o.host.name;
    const events: NewEvent[] = [];
    const updates: [string, Known | null][] = [];
    const first = o.link === null && o.known.size === 0;
    for (const [uuid, now] of live) {
      const before = o.known.get(uuid);
      if (!before || before.state !== now.state || before.name !== now.name)
        updates.push([uuid, now]);
      if (first) continue;
      const domain = { uuid, name: now.name };
      if (!before) events.push(reconciled('domain.defined', host, domain, 'added'));
      for (const type of transitions(before?.state ?? 'shutoff', now.state)) {
        events.push(reconciled(type, host, domain, null));
      }
    }
    for (const [uuid, before] of o.known) {
      if (live.has(uuid)) continue;
      updates.push([uuid, null]);
      const domain = { uuid, name: before.name };
      for (const type of transitions(before.state, 'shutoff')) {
        events.push(reconciled(type, host, domain, null));
      }
      events.push(reconciled('domain.undefined', host, domain, 'removed'));
    }
    const reconnected = o.link === 'down';
    if (reconnected) events.push(newEvent('host.reconnected', host));
    await this.publish(o, events, updates, 'up');
    if (events.length > 0) {
      this.logger.log(`host '${host}': ${events.length} event(s) announced on reconciliation`);
    }
    // The host's block jobs too, once it is back or taken over (its holder may have died
    // with jobs running): in the background, the host's events must not wait for it.
    if (reconnected || !first) void this.blockJobs.reconcileHost(host);
  }

  private async publish(
    o: Ownership,
    events: NewEvent[],
    updates: [string, Known | null][],
    link: 'up' | 'down' | '',
  ): Promise<void> {
    if (events.length === 0 && updates.length === 0 && (link === '' || link === o.link)) return;
    const host = o.host.name;
    await this.redis.eval(
      PUBLISH,
      5,
      this.keys.eventsLease(host),
      this.keys.events,
      this.keys.eventsTrimmedThrough,
      this.keys.eventsDomains(host),
      this.keys.eventsHostLink(host),
      this.token,
      this.stream.retention.maxLength,
      link,
      events.length,
      ...events.map((e) => JSON.stringify(e)),
      ...updates.flatMap(([uuid, v]) => [uuid, v === null ? '' : JSON.stringify(v)]),
    );
    for (const [uuid, v] of updates) {
      if (v === null) o.known.delete(uuid);
      else o.known.set(uuid, v);
    }
    if (link !== '') o.link = link;
  }

  /** Stops following the host: no step starts any more (what runs finishes). */
  private halt(o: Ownership): void {
    if (this.owned.get(o.host.name) === o) this.owned.delete(o.host.name);
    o.stopped = true;
    o.subscription?.close();
  }

  /** Stops following the host, once the step under way ended; `release` gives up its lease. Never from inside `o.chain`. */
  private async stop(o: Ownership, release: boolean): Promise<void> {
    this.halt(o);
    await o.chain;
    if (release) {
      await this.redis
        .eval(RELEASE, 1, this.keys.eventsLease(o.host.name), this.token)
        .catch(() => undefined);
    }
  }

  /** A host removed: what was kept to reconcile it goes too. */
  private async forget(host: string): Promise<void> {
    await this.redis.del(this.keys.eventsDomains(host), this.keys.eventsHostLink(host));
  }
}

function reconciled(
  type: NewEvent['type'],
  host: string,
  domain: { uuid: string; name: string },
  detail: string | null,
): NewEvent {
  return newEvent(type, host, { domain, detail, reconciled: true });
}

/** Every domain of the host with its state, from a few listings (and a state call for the unusual ones). */
async function liveDomains(c: LibvirtClient): Promise<Map<string, Known>> {
  const list = (flags: number) => c.rpc.connectListAllDomains({ needResults: 1, flags });
  const [all, active, running, paused] = await Promise.all([
    list(0),
    list(ListFlags.ACTIVE),
    list(ListFlags.RUNNING),
    list(ListFlags.PAUSED),
  ]);
  const ids = (r: { domains: { uuid: Buffer }[] }) =>
    new Set(r.domains.map((d) => uuidString(d.uuid)));
  const [activeIds, runningIds, pausedIds] = [ids(active), ids(running), ids(paused)];
  const out = new Map<string, Known>();
  await Promise.all(
    all.domains.map(async (dom) => {
      const uuid = uuidString(dom.uuid);
      let state: KnownState = 'shutoff';
      if (runningIds.has(uuid)) state = 'running';
      else if (pausedIds.has(uuid)) state = 'paused';
      else if (activeIds.has(uuid)) {
        const s = (await c.rpc.domainGetState({ dom, flags: 0 }).catch(() => null))?.state;
        state =
          s === DomainState.PMSUSPENDED
            ? 'pmsuspended'
            : s === DomainState.CRASHED
              ? 'crashed'
              : 'running';
      }
      out.set(uuid, { name: dom.name, state });
    }),
  );
  return out;
}
