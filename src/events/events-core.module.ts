import {
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { AppConfig } from '../config/config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { REDIS, REDIS_KEYS } from '../redis/redis.module.js';
import type { RedisKeys } from '../redis/keys.js';
import { EventFeed } from './event-feed.js';
import { EVENT_STREAM, EventStream } from './event-stream.js';

/** How often each process trims the events older than the retention (any process may: it is idempotent). */
const TRIM_INTERVAL_MS = 60_000;

@Injectable()
class EventRetentionTimer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('EventRetention');
  private timer: NodeJS.Timeout | null = null;

  constructor(@Inject(EVENT_STREAM) private readonly stream: EventStream) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.stream.trimByAge().catch((err: unknown) => {
        this.logger.warn(`trimming old events failed: ${(err as Error).message}`);
      });
    }, TRIM_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/**
 * The event stream, for both roles: the stream (appended by the workers'
 * publishers and the job store, read by the api's channels), this process's
 * feed of it (its one blocking reader starts with the first subscriber), and
 * the age-based trimming.
 */
@Global()
@Module({
  providers: [
    {
      provide: EVENT_STREAM,
      inject: [REDIS, REDIS_KEYS, APP_CONFIG],
      useFactory: (redis: RedisClient, keys: RedisKeys, config: AppConfig) =>
        new EventStream(redis, keys, {
          maxLength: config.eventsRetentionMaxEvents,
          maxAgeMs: config.eventsRetentionHours * 3_600_000,
        }),
    },
    EventFeed,
    EventRetentionTimer,
  ],
  exports: [EVENT_STREAM, EventFeed],
})
export class EventsCoreModule {}
