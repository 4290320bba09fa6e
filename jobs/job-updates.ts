import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { JobChannel } from './job-channel.js';
import { JobStore, type JobRecord } from './job-store.js';
import { TERMINAL_STATES } from './job-types.js';

/**
 * Waits for jobs to finish without polling: the job store announces every
 * change of a record on a channel, and the waiters of that job are woken.
 */
@Injectable()
export class JobUpdates implements OnApplicationShutdown {
  private readonly channel: JobChannel;

  constructor(
    @Inject(REDIS) redis: RedisClient,
    @Inject(REDIS_KEYS) keys: RedisKeys,
    private readonly store: JobStore,
  ) {
    this.channel = new JobChannel(redis, keys.jobUpdates, 'virtgate-job-updates');
  }

  /** The record once it is final, or as it is when `ms` have passed. */
  async waitFor(id: string, ms: number): Promise<JobRecord | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      // Listen before reading, so a change between the two is not missed.
      const changed = await this.channel.next(id, deadline - Date.now());
      const record = await this.store.get(id);
      if (!record || TERMINAL_STATES.has(record.state) || Date.now() >= deadline) {
        changed.cancel();
        return record;
      }
      await changed.promise;
    }
  }

  onApplicationShutdown(): void {
    this.channel.close();
  }
}
