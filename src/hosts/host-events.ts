import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import {
  ConnectionClosedError,
  DomainEventId,
  LibvirtClient,
  redactUri,
  type DomainEvent,
} from '#src/libvirt/index.js';
import { HostCredentialStore } from './host-credentials.js';
import type { HostRecord } from './host-registry.js';

/**
 * The event IDs every host's event connection registers for, for all
 * domains: what the event stream carries (PMSUSPEND's own events repeat the
 * lifecycle's PMSUSPENDED; the legacy BLOCK_JOB repeats BLOCK_JOB_2;
 * BALLOON_CHANGE and TUNABLE are chatty statistics, GRAPHICS a client's
 * connection: none is registered).
 */
export const HOST_EVENT_IDS: readonly number[] = [
  DomainEventId.LIFECYCLE,
  DomainEventId.BLOCK_JOB_2,
  DomainEventId.REBOOT,
  DomainEventId.RTC_CHANGE,
  DomainEventId.WATCHDOG,
  DomainEventId.IO_ERROR_REASON,
  DomainEventId.CONTROL_ERROR,
  DomainEventId.DISK_CHANGE,
  DomainEventId.TRAY_CHANGE,
  DomainEventId.PMWAKEUP,
  DomainEventId.DEVICE_REMOVED,
  DomainEventId.AGENT_LIFECYCLE,
  DomainEventId.DEVICE_ADDED,
  DomainEventId.JOB_COMPLETED,
  DomainEventId.DEVICE_REMOVAL_FAILED,
  DomainEventId.METADATA_CHANGE,
  DomainEventId.BLOCK_THRESHOLD,
  DomainEventId.MEMORY_FAILURE,
];

/**
 * What a subscriber of a host's events hears: libvirt's domain events as the
 * client decodes them, and the state of the stream itself. Between
 * `disconnected` and the next `connected`, events may have been missed.
 */
export type HostEvent =
  | { kind: 'domain'; event: DomainEvent }
  | { kind: 'connected' }
  | { kind: 'disconnected'; error: string | null };

export type HostEventListener = (event: HostEvent) => void;

export interface HostEventSubscription {
  /** Whether the host's event connection is registered now (nothing is being missed). */
  readonly connected: boolean;
  /** Closed, or the host was dropped (unregistered, or its URI changed): nothing more will come. */
  readonly ended: boolean;
  close(): void;
}

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;

class HostEventSource {
  client: LibvirtClient | null = null;
  connecting: Promise<void> | null = null;
  readonly listeners = new Set<HostEventListener>();
  failures = 0;
  retryAt = 0;
  lastError: string | null = null;
  reconnectTimer: NodeJS.Timeout | null = null;
  closed = false;

  constructor(
    readonly name: string,
    /** The host's record as last seen: a reconnection uses its credentials (rotation). */
    public host: HostRecord,
  ) {}

  get uri(): string {
    return this.host.uri;
  }

  get connected(): boolean {
    return this.client !== null && !this.client.closed;
  }

  emit(event: HostEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }
}

/**
 * The one source of each host's libvirt events in this process: a
 * connection of its own per host (read-only: events need no more), registered
 * once for every event ID of HOST_EVENT_IDS over all domains, whose events
 * go to every subscriber (the api's domain inventory, the worker's block job
 * followers). libvirt sends an event only to connections registered at the
 * time, so a subscriber that must not miss one waits for `ready` first.
 * When the connection is lost, subscribers hear `disconnected`, and while
 * any remain it is re-opened with backoff (then `connected`).
 */
@Injectable()
export class HostEvents implements OnApplicationShutdown {
  private readonly logger = new Logger(HostEvents.name);
  private readonly sources = new Map<string, HostEventSource>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly credentials: HostCredentialStore,
  ) {}

  /** Listens to `host`'s events from now on; opens nothing by itself (see `ready`). */
  subscribe(host: HostRecord, listener: HostEventListener): HostEventSubscription {
    const source = this.sourceFor(host);
    source.listeners.add(listener);
    return {
      get connected() {
        return source.connected && source.listeners.has(listener);
      },
      get ended() {
        return source.closed || !source.listeners.has(listener);
      },
      close: () => {
        source.listeners.delete(listener);
      },
    };
  }

  /**
   * Resolves once `host`'s event connection is open and registered, opening
   * it if needed: an event libvirt reports after this reaches the
   * subscribers. HOST_UNREACHABLE when it cannot be opened (at once while the
   * last attempt's backoff lasts).
   */
  async ready(host: HostRecord): Promise<void> {
    const source = this.sourceFor(host);
    if (source.connected) return;
    if (source.connecting) return source.connecting;
    if (Date.now() < source.retryAt) throw unreachable(source);
    return this.connect(source);
  }

  /**
   * Forgets the event connection of a host (it was deleted or its URI
   * changed) at once: the connection is dropped, not closed politely, so a
   * silent host cannot make its removal wait.
   */
  drop(name: string): void {
    const source = this.sources.get(name);
    if (!source) return;
    this.sources.delete(name);
    this.stop(source)?.destroy(new ConnectionClosedError(`host '${name}' was unregistered`));
  }

  async onApplicationShutdown(): Promise<void> {
    const all = [...this.sources.values()];
    this.sources.clear();
    // A clean CONNECT_CLOSE where the host answers (LibvirtClient.close bounds its wait).
    await Promise.all(all.map((s) => this.stop(s)?.close()));
  }

  private sourceFor(host: HostRecord): HostEventSource {
    let source = this.sources.get(host.name);
    if (source && source.uri !== host.uri) {
      this.sources.delete(host.name);
      this.stop(source)?.destroy(new ConnectionClosedError(`host '${host.name}' has a new URI`));
      source.emit({ kind: 'disconnected', error: 'host URI changed' });
      source = undefined;
    }
    if (!source) {
      source = new HostEventSource(host.name, host);
      this.sources.set(host.name, source);
    } else {
      source.host = host;
    }
    return source;
  }

  private connect(source: HostEventSource): Promise<void> {
    source.connecting = (async () => {
      let client: LibvirtClient | null = null;
      try {
        client = await LibvirtClient.connect(source.uri, {
          credentials: await this.credentials.credentialsFor(source.host),
          readOnly: true,
          connectTimeoutMs: this.config.libvirtConnectTimeoutMs,
          callTimeoutMs: this.config.libvirtCallTimeoutMs,
          keepalive: {
            intervalMs: this.config.libvirtKeepaliveIntervalMs,
            count: this.config.libvirtKeepaliveCount,
          },
        });
        const callbacks = new Set<number>();
        const opened = client;
        opened.on('domainEvent', (event) => {
          if (callbacks.has(event.callbackId) && source.client === opened) {
            source.emit({ kind: 'domain', event });
          }
        });
        for (const id of HOST_EVENT_IDS) callbacks.add(await opened.domainEventRegisterAny(id));
        if (source.closed) {
          await opened.close();
          throw new AppError(ErrorCode.HOST_UNREACHABLE, `host '${source.name}' was removed`);
        }
        opened.once('close', (err) => this.onClose(source, opened, err));
        source.client = opened;
        if (source.failures > 0) this.logger.log(`host '${source.name}': events connected again`);
        source.failures = 0;
        source.retryAt = 0;
        source.lastError = null;
        source.emit({ kind: 'connected' });
      } catch (err) {
        if (client && !client.closed) client.destroy(err as Error);
        if (err instanceof AppError) throw err;
        source.failures++;
        source.retryAt =
          Date.now() + Math.min(BACKOFF_MIN_MS * 2 ** (source.failures - 1), BACKOFF_MAX_MS);
        const message = (err as Error).message;
        if (source.lastError !== message) {
          this.logger.warn(
            `host '${source.name}' (${redactUri(source.uri)}): cannot listen to its events: ${message}`,
          );
        }
        source.lastError = message;
        throw unreachable(source);
      } finally {
        source.connecting = null;
      }
    })();
    return source.connecting;
  }

  private onClose(source: HostEventSource, client: LibvirtClient, err: Error | null): void {
    if (source.client !== client) return;
    source.client = null;
    if (source.closed) return;
    source.lastError = err?.message ?? 'connection closed';
    this.logger.warn(
      `host '${source.name}': lost the connection of its events: ${source.lastError}`,
    );
    source.emit({ kind: 'disconnected', error: source.lastError });
    this.scheduleReconnect(source, BACKOFF_MIN_MS);
  }

  /** While anyone listens, the connection is re-opened, with backoff. */
  private scheduleReconnect(source: HostEventSource, delayMs: number): void {
    if (source.closed || source.reconnectTimer || source.listeners.size === 0) return;
    source.reconnectTimer = setTimeout(() => {
      source.reconnectTimer = null;
      if (source.closed || source.connected || source.listeners.size === 0) return;
      const attempt = source.connecting ?? this.connect(source);
      attempt.catch(() =>
        this.scheduleReconnect(source, Math.max(BACKOFF_MIN_MS, source.retryAt - Date.now())),
      );
    }, delayMs);
    source.reconnectTimer.unref();
  }

  /** Ends a source: no more reconnection; returns its client, for the caller to close or drop. */
  private stop(source: HostEventSource): LibvirtClient | null {
    source.closed = true;
    if (source.reconnectTimer) clearTimeout(source.reconnectTimer);
    source.reconnectTimer = null;
    const client = source.client;
    source.client = null;
    return client;
  }
}

function unreachable(source: HostEventSource): AppError {
  const retryAfterSeconds = Math.max(1, Math.ceil((source.retryAt - Date.now()) / 1000));
  return new AppError(
    ErrorCode.HOST_UNREACHABLE,
    `host '${source.name}' is unreachable: ${source.lastError ?? 'not connected'}`,
    { retryAfterSeconds },
  );
}
