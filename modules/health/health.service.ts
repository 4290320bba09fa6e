import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { redactUri } from '#src/libvirt/index.js';
import { withTimeout } from '#src/common/with-timeout.js';
import { REDIS } from '#src/redis/redis.module.js';
import { RedisRecovery } from '#src/redis/redis-recovery.js';
import type {
  LibvirtCheckDto,
  ReadinessDto,
  RecoveryCheckDto,
  RedisCheckDto,
} from './dto/health.dto.js';
import { CHECK_TIMEOUT_MS, LibvirtProbe } from './libvirt-probe.js';

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
  ) {}

  async readiness(): Promise<ReadinessDto> {
    const [redis, libvirt, recovery] = await Promise.all([
      this.checkRedis(),
      this.checkLibvirt(),
      this.checkRecovery(),
    ]);
    const up = redis.status === 'up' && libvirt.status === 'up';
    const status = !up ? 'unavailable' : recovery.status === 'recovering' ? 'degraded' : 'ok';
    return { status, checks: { redis, libvirt, recovery } };
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
