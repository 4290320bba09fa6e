import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { JobStore } from './job-store.js';

/**
 * Removes finished job records once JOB_RETENTION_HOURS have passed, every
 * JOB_PRUNE_INTERVAL_MS (a minute by default), in whichever process gets to it
 * first (the store takes a lock).
 */
@Injectable()
export class JobRetention implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(JobRetention.name);
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: JobStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.prune(), this.config.jobPruneIntervalMs);
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
