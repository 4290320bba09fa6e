import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { redactUri } from '#src/libvirt/index.js';
import { withTimeout } from '#src/common/with-timeout.js';
import { REDIS } from '#src/redis/redis.module.js';
import type { LibvirtCheckDto, ReadinessDto, RedisCheckDto } from './dto/health.dto.js';
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
  ) {}

  async readiness(): Promise<ReadinessDto> {
    const [redis, libvirt] = await Promise.all([this.checkRedis(), this.checkLibvirt()]);
    const ok = redis.status === 'up' && libvirt.status === 'up';
    return { status: ok ? 'ok' : 'unavailable', checks: { redis, libvirt } };
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
      return { status: 'down', latencyMs: elapsed(started), error: (err as Error).message };
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
