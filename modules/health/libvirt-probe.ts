import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  CallTimeoutError,
  LibvirtClient,
  formatVersion,
  redactUri,
  type TransportCredentials,
} from '#src/libvirt/index.js';
import { HostCredentialStore } from '#src/hosts/host-credentials.js';
import { DEFAULT_HOST_NAME, HostRegistry } from '#src/hosts/host-registry.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';

/** Deadline of one readiness check, connecting included. */
export const CHECK_TIMEOUT_MS = 2000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;

/**
 * Keeps one long-lived read-only connection to the default libvirt host for
 * readiness checks, instead of connecting per request. When the connection
 * closes, the next check reconnects; after a failed attempt, checks report
 * the last error without retrying until a backoff (0.5 s doubling to 10 s)
 * has passed, so a dead host is not hammered by probes.
 */
@Injectable()
export class LibvirtProbe implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LibvirtProbe.name);
  readonly uri: string;
  private client: LibvirtClient | null = null;
  private connecting: Promise<LibvirtClient> | null = null;
  private failures = 0;
  private retryAt = 0;
  private lastError = '';
  private shutDown = false;

  private readonly keepalive: { intervalMs: number; count: number };

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly registry: HostRegistry,
    private readonly credentials: HostCredentialStore,
  ) {
    this.uri = config.libvirtDefaultUri;
    this.keepalive = {
      intervalMs: config.libvirtKeepaliveIntervalMs,
      count: config.libvirtKeepaliveCount,
    };
  }

  /**
   * What the default host authenticates with: its registered credentials while
   * its record still has this URI, otherwise what the URI names.
   */
  private async credentialsNow(): Promise<TransportCredentials> {
    const record = await this.registry.find(DEFAULT_HOST_NAME).catch(() => null);
    const host = record?.uri === this.uri ? record : { name: DEFAULT_HOST_NAME, uri: this.uri };
    return this.credentials.credentialsFor(host);
  }

  /** Connects at boot, so the first readiness check finds the connection open. */
  onApplicationBootstrap(): void {
    this.connection().catch(() => {
      // Logged by connection(); readiness reports it.
    });
  }

  /** libvirt's version on the default host, as "major.minor.micro". */
  async libvirtVersion(): Promise<string> {
    const client = await this.connection();
    try {
      const { libVer } = await client.call('connectGetLibVersion', undefined, {
        timeoutMs: CHECK_TIMEOUT_MS,
      });
      return formatVersion(libVer);
    } catch (err) {
      // A peer that lets a trivial call time out is as good as gone: start afresh next time.
      if (err instanceof CallTimeoutError) client.destroy(err);
      throw err;
    }
  }

  private connection(): Promise<LibvirtClient> {
    if (this.client && !this.client.closed) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const wait = this.retryAt - Date.now();
    if (wait > 0) {
      return Promise.reject(
        new Error(`${this.lastError} (next connection attempt in ${Math.ceil(wait / 1000)} s)`),
      );
    }
    this.connecting = this.credentialsNow()
      .then((credentials) =>
        LibvirtClient.connect(this.uri, {
          credentials,
          readOnly: true,
          connectTimeoutMs: CHECK_TIMEOUT_MS,
          callTimeoutMs: CHECK_TIMEOUT_MS,
          keepalive: this.keepalive,
        }),
      )
      .then(
        (client) => this.adopt(client),
        (err: Error) => {
          this.failures += 1;
          this.retryAt =
            Date.now() + Math.min(BACKOFF_MIN_MS * 2 ** (this.failures - 1), BACKOFF_MAX_MS);
          if (err.message !== this.lastError) {
            this.logger.warn(`cannot connect to ${redactUri(this.uri)}: ${err.message}`);
          }
          this.lastError = err.message;
          throw err;
        },
      )
      .finally(() => {
        this.connecting = null;
      });
    return this.connecting;
  }

  private adopt(client: LibvirtClient): LibvirtClient {
    if (this.shutDown) {
      void client.close();
      throw new Error('the application is shutting down');
    }
    if (this.failures > 0 || this.lastError) {
      this.logger.log(`connected to ${redactUri(this.uri)} again`);
    }
    this.failures = 0;
    this.retryAt = 0;
    this.lastError = '';
    this.client = client;
    client.on('warning', (message) => this.logger.debug(`libvirt client: ${message}`));
    client.on('close', (err) => {
      if (this.client === client) this.client = null;
      if (!this.shutDown) {
        this.logger.warn(
          `read-only connection to ${redactUri(this.uri)} closed${err ? `: ${err.message}` : ''}`,
        );
      }
    });
    return client;
  }

  async onApplicationShutdown(): Promise<void> {
    this.shutDown = true;
    await this.client?.close();
    this.client = null;
  }
}
