import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { JobStore } from './job-store.js';

/** How often finished jobs past their retention are looked for. */
const PRUNE_EVERY_MS = 60_000;

/**
 * Removes finished job records once JOB_RETENTION_HOURS have passed, every
 * minute, in whichever process gets to it first (the store takes a lock).
 */
@Injectable()
export class JobRetention implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(JobRetention.name);
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly store: JobStore) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async prune(): Promise<void> {
    try {
      const removed = await this.store.prune();
      if (removed > 0) this.logger.log(`removed ${removed} finished jobs past their retention`);
    } catch (err) {
      this.logger.warn(`pruning finished jobs: ${(err as Error).message}`);
    }
  }
}
