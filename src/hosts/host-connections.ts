import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { fromLibvirtError } from '#src/common/errors/libvirt-errors.js';
import { LibvirtClient, redactUri, type NodeInfo } from '#src/libvirt/index.js';
import { parseCapabilitiesXml, type CapabilitiesXml } from '#src/xml/capabilities-xml.js';
import type { HostRecord } from './host-registry.js';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'unreachable';

export interface ConnectionStatus {
  state: ConnectionState;
  /** Why the last attempt failed or the last connection closed. */
  lastError: string | null;
  /** When the host entered this state. */
  since: Date;
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

class HostPool {
  clients: LibvirtClient[] = [];
  opening = 0;
  connecting: Promise<LibvirtClient> | null = null;
  status: ConnectionStatus = { state: 'idle', lastError: null, since: new Date() };
  failures = 0;
  retryAt = 0;
  facts: { value: Promise<HostFacts>; at: number } | null = null;
  closed = false;

  constructor(readonly uri: string) {}

  setState(state: ConnectionState, lastError: string | null): void {
    if (this.status.state !== state) this.status = { state, lastError, since: new Date() };
    else this.status = { ...this.status, lastError };
  }
}

/**
 * The api role's read-only libvirt connections, pooled per host: a few
 * connections per host (libvirtd serves 5 calls at a time on each), opened on
 * demand, spread by calls in flight, re-established after a failure with
 * exponential backoff. While a host is in backoff, requests fail at once with
 * HOST_UNREACHABLE (503, Retry-After) instead of waiting on it.
 */
@Injectable()
export class HostConnections implements OnApplicationShutdown {
  private readonly logger = new Logger(HostConnections.name);
  private readonly pools = new Map<string, HostPool>();
  /** The api role reads only: its connections are opened with VIR_CONNECT_RO. */
  protected readonly readOnly: boolean = true;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** A connected read-only client for `host`, opening one if needed. */
  async client(host: HostRecord): Promise<LibvirtClient> {
    const pool = this.poolFor(host);
    pool.clients = pool.clients.filter((c) => !c.closed);
    if (pool.clients.length > 0) {
      let best = pool.clients[0]!;
      for (const c of pool.clients) if (c.inFlight < best.inFlight) best = c;
      if (
        best.inFlight >= BUSY_IN_FLIGHT &&
        pool.clients.length + pool.opening < this.config.libvirtPoolSize
      ) {
        this.open(host.name, pool).catch(() => undefined); // grow in the background; this call uses `best`
      }
      return best;
    }
    if (pool.connecting) return pool.connecting;
    if (Date.now() < pool.retryAt) throw this.unreachable(host.name, pool);
    pool.connecting = this.open(host.name, pool).finally(() => {
      pool.connecting = null;
    });
    return pool.connecting;
  }

  /** Runs `fn` with a client of `host`; libvirt's and the link's errors come out as AppErrors. */
  async withClient<T>(host: HostRecord, fn: (client: LibvirtClient) => Promise<T>): Promise<T> {
    const client = await this.client(host);
    try {
      return await fn(client);
    } catch (err) {
      throw fromLibvirtError(err) ?? err;
    }
  }

  status(name: string): ConnectionStatus {
    return this.pools.get(name)?.status ?? { state: 'idle', lastError: null, since: new Date() };
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

  /** Closes and forgets the connections of a host (it was deleted or its URI changed). */
  async drop(name: string): Promise<void> {
    const pool = this.pools.get(name);
    if (!pool) return;
    this.pools.delete(name);
    pool.closed = true;
    await Promise.all(pool.clients.map((c) => c.close()));
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.pools.keys()].map((name) => this.drop(name)));
  }

  private poolFor(host: HostRecord): HostPool {
    let pool = this.pools.get(host.name);
    if (pool && pool.uri !== host.uri) {
      void this.drop(host.name);
      pool = undefined;
    }
    if (!pool) {
      pool = new HostPool(host.uri);
      this.pools.set(host.name, pool);
    }
    return pool;
  }

  private async open(name: string, pool: HostPool): Promise<LibvirtClient> {
    pool.opening++;
    if (pool.clients.length === 0) pool.setState('connecting', pool.status.lastError);
    try {
      const client = await LibvirtClient.connect(pool.uri, {
        readOnly: this.readOnly,
        connectTimeoutMs: this.config.libvirtConnectTimeoutMs,
        callTimeoutMs: this.config.libvirtCallTimeoutMs,
      });
      if (pool.closed) {
        await client.close();
        throw new AppError(ErrorCode.HOST_UNREACHABLE, `host '${name}' was removed`);
      }
      client.on('close', (err) => this.onClose(name, pool, client, err));
      pool.clients.push(client);
      if (pool.failures > 0) this.logger.log(`host '${name}': connected again`);
      pool.failures = 0;
      pool.retryAt = 0;
      pool.setState('connected', null);
      return client;
    } catch (err) {
      if (err instanceof AppError) throw err;
      pool.failures++;
      pool.retryAt =
        Date.now() + Math.min(BACKOFF_MIN_MS * 2 ** (pool.failures - 1), BACKOFF_MAX_MS);
      const message = (err as Error).message;
      if (pool.status.lastError !== message) {
        this.logger.warn(`host '${name}' (${redactUri(pool.uri)}) unreachable: ${message}`);
      }
      if (pool.clients.length === 0) pool.setState('unreachable', message);
      throw this.unreachable(name, pool);
    } finally {
      pool.opening--;
    }
  }

  private onClose(name: string, pool: HostPool, client: LibvirtClient, err: Error | null): void {
    pool.clients = pool.clients.filter((c) => c !== client);
    if (pool.closed || pool.clients.length > 0) return;
    pool.facts = null;
    if (err) {
      this.logger.warn(`host '${name}': connection lost: ${err.message}`);
      pool.setState('idle', err.message);
    }
  }

  private unreachable(name: string, pool: HostPool): AppError {
    const retryAfterSeconds = Math.max(1, Math.ceil((pool.retryAt - Date.now()) / 1000));
    return new AppError(
      ErrorCode.HOST_UNREACHABLE,
      `host '${name}' is unreachable: ${pool.status.lastError ?? 'not connected'}`,
      { retryAfterSeconds },
    );
  }
}

/**
 * The worker role's connections: the same pooling and backoff, opened
 * read-write, since every change to a host is made by a worker.
 */
@Injectable()
export class WorkerConnections extends HostConnections {
  protected override readonly readOnly: boolean = false;
}
