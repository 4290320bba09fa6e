import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { fromLibvirtError } from '#src/common/errors/libvirt-errors.js';
import {
  ConnectionClosedError,
  KeepaliveTimeoutError,
  LibvirtClient,
  redactUri,
  type NodeInfo,
} from '#src/libvirt/index.js';
import { parseCapabilitiesXml, type CapabilitiesXml } from '#src/xml/capabilities-xml.js';
import { CredentialError, HostCredentialStore } from './host-credentials.js';
import type { HostRecord } from './host-registry.js';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'unreachable';

export interface ConnectionStatus {
  state: ConnectionState;
  /** Why the last attempt failed or the last connection closed. */
  lastError: string | null;
  /** When the host entered this state. */
  since: Date;
  /** While `unreachable`: when the background probe tries the host next. */
  retryAt: Date | null;
}

/** What a host says about itself, read once per connection set and cached. */
export interface HostFacts {
  hostname: string;
  libVersion: bigint;
  hypervisorType: string;
  hypervisorVersion: bigint;
  node: NodeInfo;
  capabilities: CapabilitiesXml;
}

/** A connection with this many calls in flight is busy: libvirtd runs 5 at a time per client. */
const BUSY_IN_FLIGHT = 4;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const FACTS_MAX_AGE_MS = 5 * 60_000;

/** The wait before probe `failures` (1-based): doubling from 0.5 s, at most 30 s, ±20 % jitter. */
function backoffMs(failures: number): number {
  const base = Math.min(BACKOFF_MIN_MS * 2 ** Math.max(0, failures - 1), BACKOFF_MAX_MS);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

class HostPool {
  clients: LibvirtClient[] = [];
  opening = 0;
  /** The first connection of a pool with none, which requests may wait for (never the probe). */
  connecting: Promise<LibvirtClient> | null = null;
  status: ConnectionStatus = { state: 'idle', lastError: null, since: new Date(), retryAt: null };
  /** Failed attempts in a row (the probe's backoff). */
  failures = 0;
  /** While the breaker is open: when the probe runs next. */
  retryAt = 0;
  /** A failed background grow is not retried before this. */
  growRetryAt = 0;
  probeTimer: NodeJS.Timeout | null = null;
  /** The probe under way, if any: one at a time per host. */
  probing: Promise<void> | null = null;
  facts: { value: Promise<HostFacts>; at: number } | null = null;
  closed = false;

  get uri(): string {
    return this.host.uri;
  }
  /** Rejects when the pool is dropped: a request waiting on `connecting` is let go at once. */
  readonly dropped: Promise<never>;
  private rejectDropped!: (err: Error) => void;

  /** The host's record as last seen: new connections use its credentials (rotation). */
  host: HostRecord;

  constructor(host: HostRecord) {
    this.host = host;
    this.dropped = new Promise<never>((_, reject) => (this.rejectDropped = reject));
    this.dropped.catch(() => undefined);
  }

  /** The breaker is open: requests fail at once, only the probe touches the host. */
  get open(): boolean {
    return this.status.state === 'unreachable';
  }

  setState(state: ConnectionState, lastError: string | null): void {
    const retryAt = state === 'unreachable' ? new Date(this.retryAt) : null;
    if (this.status.state !== state) this.status = { state, lastError, since: new Date(), retryAt };
    else this.status = { ...this.status, lastError, retryAt };
  }

  drop(reason: string): void {
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.rejectDropped(new AppError(ErrorCode.HOST_UNREACHABLE, reason));
  }
}

/**
 * The api role's read-only libvirt connections, pooled per host: a few
 * connections per host (libvirtd serves 5 calls at a time on each), opened on
 * demand, spread by calls in flight.
 *
 * Each host has a circuit breaker, so that a silent or slow host never stalls
 * the API. It opens when a connection cannot be made, when a call gets no
 * reply within its deadline, or when the keepalive finds the host silent
 * (within the configured interval × (count + 1)): the host is `unreachable`,
 * and from then on every request for it fails at once with HOST_UNREACHABLE
 * (503, Retry-After), waiting on nothing. A host found silent has its
 * connections dropped too (the calls in flight on them rejected at once);
 * after a call timeout the other calls go on, since the host still answers
 * pings. Meanwhile one background probe at a time per host, with jittered
 * exponential backoff, connects and makes one cheap call; when that succeeds
 * the breaker closes and the probe's connection joins the pool.
 */
@Injectable()
export class HostConnections implements OnApplicationShutdown {
  private readonly logger = new Logger(HostConnections.name);
  private readonly pools = new Map<string, HostPool>();
  /** The api role reads only: its connections are opened with VIR_CONNECT_RO. */
  protected readonly readOnly: boolean = true;
  /**
   * Whether a caller finding the breaker open waits for a probe made for it
   * (or the one under way) instead of failing at once. Never for requests:
   * the API answers 503 at once. See WorkerConnections.
   */
  protected readonly attemptsProbe: boolean = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly credentials: HostCredentialStore,
  ) {}

  /**
   * A connected client for `host`, opening the first one if the pool has
   * none. HOST_UNREACHABLE at once while the host's breaker is open (the
   * worker's connections probe first: see WorkerConnections).
   */
  async client(host: HostRecord): Promise<LibvirtClient> {
    const pool = this.poolFor(host);
    if (pool.open) {
      if (!this.attemptsProbe) throw this.unreachable(host.name, pool);
      await Promise.race([this.probe(host.name, pool), pool.dropped]);
      if (pool.open) throw this.unreachable(host.name, pool);
    }
    pool.clients = pool.clients.filter((c) => !c.closed);
    if (pool.clients.length > 0) {
      let best = pool.clients[0]!;
      for (const c of pool.clients) if (c.inFlight < best.inFlight) best = c;
      if (
        best.inFlight >= BUSY_IN_FLIGHT &&
        pool.clients.length + pool.opening < this.config.libvirtPoolSize &&
        Date.now() >= pool.growRetryAt
      ) {
        this.grow(host.name, pool); // in the background; this call uses `best`
      }
      return best;
    }
    pool.connecting ??= this.open(host.name, pool).finally(() => {
      pool.connecting = null;
    });
    return Promise.race([pool.connecting, pool.dropped]);
  }

  /**
   * Runs `fn` with a client of `host`; libvirt's and the link's errors come
   * out as AppErrors. A call that found the host dead (and opened its
   * breaker) says when the probe tries it next in its Retry-After.
   */
  async withClient<T>(host: HostRecord, fn: (client: LibvirtClient) => Promise<T>): Promise<T> {
    const client = await this.client(host);
    try {
      return await fn(client);
    } catch (err) {
      const mapped = fromLibvirtError(err);
      if (!mapped) throw err;
      const pool = this.pools.get(host.name);
      if (mapped.code === ErrorCode.HOST_UNREACHABLE && pool?.open) {
        throw new AppError(ErrorCode.HOST_UNREACHABLE, mapped.message, {
          cause: err,
          retryAfterSeconds: retryAfterSeconds(pool),
        });
      }
      throw mapped;
    }
  }

  status(name: string): ConnectionStatus {
    return (
      this.pools.get(name)?.status ?? {
        state: 'idle',
        lastError: null,
        since: new Date(),
        retryAt: null,
      }
    );
  }

  /** Hostname, versions, node info and capabilities of `host`, cached for a few minutes. */
  async facts(host: HostRecord): Promise<HostFacts> {
    const pool = this.poolFor(host);
    if (pool.facts && Date.now() - pool.facts.at < FACTS_MAX_AGE_MS) return pool.facts.value;
    const value = this.withClient(host, async (c) => {
      const [hostname, lib, type, version, node, caps] = await Promise.all([
        c.rpc.connectGetHostname(),
        c.rpc.connectGetLibVersion(),
        c.rpc.connectGetType(),
        c.rpc.connectGetVersion(),
        c.rpc.nodeGetInfo(),
        c.rpc.connectGetCapabilities(),
      ]);
      return {
        hostname: hostname.hostname,
        libVersion: lib.libVer,
        hypervisorType: type.type,
        hypervisorVersion: version.hvVer,
        node,
        capabilities: parseCapabilitiesXml(caps.capabilities),
      };
    });
    pool.facts = { value, at: Date.now() };
    value.catch(() => {
      if (pool.facts?.value === value) pool.facts = null;
    });
    return value;
  }

  /**
   * Forgets a host (it was unregistered, or its URI changed) at once, waiting
   * on nothing it does: its probe stops, its connections are dropped and the
   * calls in flight on them rejected, a request waiting for its first
   * connection is let go.
   */
  drop(name: string, reason = `host '${name}' was unregistered`): void {
    const pool = this.pools.get(name);
    if (!pool) return;
    this.pools.delete(name);
    pool.drop(reason);
    const clients = pool.clients;
    pool.clients = [];
    for (const c of clients) c.destroy(new ConnectionClosedError(reason));
  }

  async onApplicationShutdown(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    // A clean CONNECT_CLOSE where the host answers (LibvirtClient.close bounds its wait).
    await Promise.all(
      pools.map((pool) => {
        pool.drop('the gateway is shutting down');
        return Promise.all(pool.clients.map((c) => c.close()));
      }),
    );
  }

  private poolFor(host: HostRecord): HostPool {
    let pool = this.pools.get(host.name);
    if (pool && pool.uri !== host.uri) {
      this.drop(host.name, `host '${host.name}' has a new URI`);
      pool = undefined;
    }
    if (!pool) {
      pool = new HostPool(host);
      this.pools.set(host.name, pool);
    } else if (pool.host.credentials?.version !== host.credentials?.version) {
      // Rotated: connections from now on use the new credentials, the open ones go on.
      pool.host = host;
      if (pool.open && !pool.probing) {
        pool.retryAt = Date.now();
        if (pool.probeTimer) clearTimeout(pool.probeTimer);
        pool.probeTimer = null;
        this.scheduleProbe(host.name, pool);
      }
    } else {
      pool.host = host;
    }
    return pool;
  }

  /** A new connection to `host`, with its credentials as they are now. */
  private async connect(host: HostRecord): Promise<LibvirtClient> {
    let credentials;
    try {
      credentials = await this.credentials.credentialsFor(host);
    } catch (err) {
      if (!(err instanceof CredentialError)) throw err;
      throw new Error(`the host's credentials cannot be used: ${err.message}`, { cause: err });
    }
    return LibvirtClient.connect(host.uri, {
      credentials,
      readOnly: this.readOnly,
      connectTimeoutMs: this.config.libvirtConnectTimeoutMs,
      callTimeoutMs: this.config.libvirtCallTimeoutMs,
      keepalive: {
        intervalMs: this.config.libvirtKeepaliveIntervalMs,
        count: this.config.libvirtKeepaliveCount,
      },
    });
  }

  /** The first connection of a pool with none; a failure opens the breaker. */
  private async open(name: string, pool: HostPool): Promise<LibvirtClient> {
    pool.opening++;
    pool.setState('connecting', pool.status.lastError);
    try {
      const client = await this.connect(pool.host);
      if (pool.closed) {
        client.destroy(new ConnectionClosedError(`host '${name}' was removed`));
        throw new AppError(ErrorCode.HOST_UNREACHABLE, `host '${name}' was removed`);
      }
      if (pool.open) {
        // The breaker opened meanwhile (another connection found the host dead): the probe decides.
        client.destroy(new ConnectionClosedError(`host '${name}' is unreachable`));
        throw this.unreachable(name, pool);
      }
      this.adopt(name, pool, client);
      pool.setState('connected', null);
      return client;
    } catch (err) {
      if (err instanceof AppError) throw err;
      this.trip(name, pool, err as Error, true);
      throw this.unreachable(name, pool);
    } finally {
      pool.opening--;
    }
  }

  /** One more connection for a busy pool; a failure only delays the next try. */
  private grow(name: string, pool: HostPool): void {
    pool.opening++;
    this.connect(pool.host)
      .then(
        (client) => {
          if (pool.closed || pool.open) {
            client.destroy(new ConnectionClosedError(`host '${name}' is no longer used`));
          } else {
            this.adopt(name, pool, client);
          }
        },
        (err: Error) => {
          pool.growRetryAt = Date.now() + backoffMs(1);
          this.logger.warn(`host '${name}': cannot open one more connection: ${err.message}`);
        },
      )
      .finally(() => pool.opening--);
  }

  /** A connection joins the pool: its timeouts and its loss are watched. */
  private adopt(name: string, pool: HostPool, client: LibvirtClient): void {
    client.on('callTimeout', (err) => {
      if (pool.clients.includes(client)) this.trip(name, pool, err, false);
    });
    client.on('close', (err) => this.onClose(name, pool, client, err));
    pool.clients.push(client);
  }

  private onClose(name: string, pool: HostPool, client: LibvirtClient, err: Error | null): void {
    if (!pool.clients.includes(client)) return; // dropped by the breaker or by drop()
    pool.clients = pool.clients.filter((c) => c !== client);
    if (pool.closed) return;
    if (err instanceof KeepaliveTimeoutError) {
      this.trip(name, pool, err, true);
      return;
    }
    if (pool.clients.length > 0) return;
    pool.facts = null;
    if (err) {
      // Closed by the host (a restart...): the next request connects again, and trips on failure.
      this.logger.warn(`host '${name}': connection lost: ${err.message}`);
      pool.setState('idle', err.message);
    }
  }

  /**
   * Opens the breaker: the host is unreachable, the probe is scheduled, and
   * requests fail at once from now on. A host found silent (keepalive) has
   * its connections dropped, which rejects their calls in flight at once; a
   * call that timed out leaves the others running (the host answers pings,
   * it may only be slow), for the probe to judge.
   */
  private trip(name: string, pool: HostPool, err: Error, dropConnections: boolean): void {
    if (pool.closed) return;
    const message = err.message;
    if (!pool.open) {
      pool.failures = 1;
      pool.retryAt = Date.now() + backoffMs(pool.failures);
      pool.facts = null;
      this.logger.warn(
        `host '${name}' (${redactUri(pool.uri)}) unreachable: ${message}; ` +
          `requests answer 503 until a probe reaches it`,
      );
    }
    pool.setState('unreachable', message);
    if (dropConnections) {
      const clients = pool.clients;
      pool.clients = [];
      for (const c of clients) {
        c.destroy(new ConnectionClosedError(`host '${name}' is unreachable: ${message}`));
      }
    }
    this.scheduleProbe(name, pool);
  }

  private scheduleProbe(name: string, pool: HostPool): void {
    if (pool.closed || pool.probing || pool.probeTimer) return;
    pool.probeTimer = setTimeout(
      () => {
        pool.probeTimer = null;
        void this.probe(name, pool);
      },
      Math.max(0, pool.retryAt - Date.now()),
    );
    pool.probeTimer.unref();
  }

  /** The probe of an unreachable host: the one under way, or a new one now. */
  private probe(name: string, pool: HostPool): Promise<void> {
    if (pool.probing) return pool.probing;
    if (pool.probeTimer) clearTimeout(pool.probeTimer);
    pool.probeTimer = null;
    pool.probing = this.attempt(name, pool).finally(() => {
      pool.probing = null;
      if (pool.open) this.scheduleProbe(name, pool);
    });
    return pool.probing;
  }

  /**
   * One attempt to reach an unreachable host: connect, and one cheap call
   * within the connect deadline. Success closes the breaker; failure backs
   * off further (jittered, capped).
   */
  private async attempt(name: string, pool: HostPool): Promise<void> {
    if (pool.closed || !pool.open) return;
    let client: LibvirtClient | null = null;
    try {
      client = await this.connect(pool.host);
      await client.call('connectGetLibVersion', undefined, {
        timeoutMs: this.config.libvirtConnectTimeoutMs,
      });
      if (pool.closed) {
        client.destroy(new ConnectionClosedError(`host '${name}' was removed`));
        return;
      }
      this.adopt(name, pool, client);
      pool.failures = 0;
      pool.retryAt = 0;
      pool.setState('connected', null);
      this.logger.log(`host '${name}': reachable again; requests are served`);
    } catch (err) {
      if (client && !client.closed) client.destroy(err as Error);
      if (pool.closed) return;
      pool.failures++;
      pool.retryAt = Date.now() + backoffMs(pool.failures);
      const message = (err as Error).message;
      if (message !== pool.status.lastError) {
        this.logger.warn(`host '${name}': still unreachable: ${message}`);
      }
      pool.setState('unreachable', message);
    }
  }

  private unreachable(name: string, pool: HostPool): AppError {
    return new AppError(
      ErrorCode.HOST_UNREACHABLE,
      `host '${name}' is unreachable: ${pool.status.lastError ?? 'not connected'}`,
      { retryAfterSeconds: retryAfterSeconds(pool) },
    );
  }
}

/** Seconds until the probe tries the host next (at least 1). */
function retryAfterSeconds(pool: HostPool): number {
  return Math.max(1, Math.ceil((pool.retryAt - Date.now()) / 1000));
}

/**
 * The worker role's connections: the same pooling and circuit breaker, opened
 * read-write, since every change to a host is made by a worker.
 */
@Injectable()
export class WorkerConnections extends HostConnections {
  protected override readonly readOnly: boolean = false;
  /**
   * A job is background work with its own retry schedule (jobs/queues.ts
   * retryAttempts, retryDelay): each attempt on an unreachable host is a
   * probe (one at a time per host, bounded by the connect deadline), so a
   * host that is back serves the next attempt, not only once the background
   * probe's backoff has passed, and a job does not burn its attempts at once.
   */
  protected override readonly attemptsProbe: boolean = true;
}
