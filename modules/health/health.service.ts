import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { redactUri } from '#src/libvirt/index.js';
import { withTimeout } from '#src/common/with-timeout.js';
import { REDIS } from '#src/redis/redis.module.js';
import { RedisRecovery } from '#src/redis/redis-recovery.js';
import { HostCredentialStore } from '#src/hosts/host-credentials.js';
import { HostRegistry } from '#src/hosts/host-registry.js';
import type {
  CredentialsCheckDto,
  CredentialWarningDto,
  LibvirtCheckDto,
  ReadinessDto,
  RecoveryCheckDto,
  RedisCheckDto,
} from './dto/health.dto.js';
import { CHECK_TIMEOUT_MS, LibvirtProbe } from './libvirt-probe.js';

/** How often readiness looks at the hosts' certificates again. */
const CREDENTIALS_EVERY_MS = 5000;

/**
 * Readiness: Redis answers PING and the default libvirt host answers
 * connectGetLibVersion. Each check has its own deadline and reports failure
 * as data; readiness never throws and never waits longer than CHECK_TIMEOUT_MS.
 */
@Injectable()
export class HealthService {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly libvirt: LibvirtProbe,
    private readonly recovery: RedisRecovery,
    private readonly registry: HostRegistry,
    private readonly credentials: HostCredentialStore,
  ) {}

  private lastCredentials: { value: Promise<CredentialsCheckDto>; at: number } | null = null;

  async readiness(): Promise<ReadinessDto> {
    const [redis, libvirt, recovery, credentials] = await Promise.all([
      this.checkRedis(),
      this.checkLibvirt(),
      this.checkRecovery(),
      this.checkCredentials(),
    ]);
    const up = redis.status === 'up' && libvirt.status === 'up';
    const status = !up ? 'unavailable' : recovery.status === 'recovering' ? 'degraded' : 'ok';
    return { status, checks: { redis, libvirt, recovery, credentials } };
  }

  /**
   * Certificates of TLS hosts near or past their expiry, credentials that
   * cannot be read: looked at every 5 s at most (files are read, sealed
   * records opened), served from the last look in between.
   */
  private checkCredentials(): Promise<CredentialsCheckDto> {
    if (this.lastCredentials && Date.now() - this.lastCredentials.at < CREDENTIALS_EVERY_MS) {
      return this.lastCredentials.value;
    }
    const value = withTimeout(this.lookAtCredentials(), CHECK_TIMEOUT_MS, 'too slow').catch(
      (): CredentialsCheckDto => ({ status: 'ok', warnings: [] }),
    );
    this.lastCredentials = { value, at: Date.now() };
    return value;
  }

  private async lookAtCredentials(): Promise<CredentialsCheckDto> {
    const warnings: CredentialWarningDto[] = [];
    for (const host of await this.registry.list()) {
      const view = await this.credentials.describe(host);
      if (view.error !== null) warnings.push({ host: host.name, message: view.error });
      for (const message of view.warnings) {
        if (/expire/.test(message)) warnings.push({ host: host.name, message });
      }
    }
    return { status: warnings.length > 0 ? 'warning' : 'ok', warnings };
  }

  /** Degraded while a loss of Redis data is being recovered from, here or by another process. */
  private async checkRecovery(): Promise<RecoveryCheckDto> {
    // The gateway-wide mark is in Redis: the Redis check reports a Redis that does not answer.
    const degraded = await withTimeout(this.recovery.degraded(), CHECK_TIMEOUT_MS, '').catch(
      () => false,
    );
    const { lastLoss } = this.recovery.status();
    return {
      status: degraded ? 'recovering' : 'ok',
      lastLossAt: lastLoss?.detectedAt ?? null,
      recoveredAt: lastLoss?.recoveredAt ?? null,
    };
  }

  private async checkRedis(): Promise<RedisCheckDto> {
    const started = performance.now();
    try {
      await withTimeout(
        this.redis.ping(),
        CHECK_TIMEOUT_MS,
        `no answer to PING within ${CHECK_TIMEOUT_MS} ms`,
      );
      return { status: 'up', latencyMs: elapsed(started) };
    } catch (err) {
      // Just after the socket drops, ioredis may still say 'ready' while it already
      // refuses to write: the connection is closed either way.
      const message = (err as Error).message;
      const closed =
        this.redis.status !== 'ready' ||
        message.startsWith("Stream isn't writeable") ||
        message === 'Connection is closed.';
      const error = !closed
        ? message
        : `the connection to Redis is closed (${this.redis.status}): ${message}`;
      return { status: 'down', latencyMs: elapsed(started), error };
    }
  }

  private async checkLibvirt(): Promise<LibvirtCheckDto> {
    const started = performance.now();
    const uri = redactUri(this.libvirt.uri);
    try {
      const libvirtVersion = await withTimeout(
        this.libvirt.libvirtVersion(),
        CHECK_TIMEOUT_MS,
        `no answer within ${CHECK_TIMEOUT_MS} ms`,
      );
      return { status: 'up', uri, libvirtVersion, latencyMs: elapsed(started) };
    } catch (err) {
      return { status: 'down', uri, latencyMs: elapsed(started), error: (err as Error).message };
    }
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
