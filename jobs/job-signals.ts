import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { JobChannel } from './job-channel.js';

/**
 * Requests for a running job's worker (a cancel, a pivot): the api records
 * them, then signals the job's id here, and the worker following the job
 * wakes at once instead of at its next poll. A lost signal only delays: the
 * worker still polls.
 */
@Injectable()
export class JobSignals implements OnApplicationShutdown {
  private readonly channel: JobChannel;

  constructor(@Inject(REDIS) redis: RedisClient, @Inject(REDIS_KEYS) keys: RedisKeys) {
    this.channel = new JobChannel(redis, keys.jobSignals, 'virtgate-job-signals');
  }

  signal(id: string): Promise<void> {
    return this.channel.publish(id);
  }

  /** Resolves at the next signal for job `id` or after `ms`; see JobChannel.next. */
  next(id: string, ms: number): Promise<{ promise: Promise<void>; cancel(): void }> {
    return this.channel.next(id, ms);
  }

  onApplicationShutdown(): void {
    this.channel.close();
  }
}
