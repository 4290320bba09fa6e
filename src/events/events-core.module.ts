import {
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnModuleInit,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { AppConfig } from '../config/config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { REDIS, REDIS_KEYS } from '../redis/redis.module.js';
import type { RedisKeys } from '../redis/keys.js';
import { RedisRecovery } from '../redis/redis-recovery.js';
import { newEvent } from './event.js';
import { EventFeed } from './event-feed.js';
import { cursorBefore, EVENT_STREAM, EventStream } from './event-stream.js';

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
 * The stream's part of a recovery from lost Redis data: the first process to
 * notice appends `gateway.degraded` and marks everything before it as gone
 * (a client resuming from an older cursor gets CURSOR_EXPIRED, 410, instead
 * of silently missing what was lost); the worker that finishes the recovery
 * appends `gateway.recovered`.
 */
@Injectable()
class EventRecoveryHook implements OnModuleInit {
  constructor(
    @Inject(EVENT_STREAM) private readonly stream: EventStream,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    private readonly recovery: RedisRecovery,
  ) {}

  onModuleInit(): void {
    this.recovery.register({
      name: 'the event stream',
      order: 5,
      onDataLoss: async () => undefined,
      onFirstNotice: async ({ detectedAt }) => {
        const [id] = await this.stream.append(
          newEvent('gateway.degraded', null, {
            time: detectedAt,
            data: { reason: 'redis-data-lost', detectedAt },
          }),
        );
        await this.redis.set(this.keys.eventsTrimmedThrough, cursorBefore(id!));
      },
      onRecovered: async ({ detectedAt }) => {
        await this.stream.append(
          newEvent('gateway.recovered', null, {
            data: { detectedAt, recoveredAt: new Date().toISOString() },
          }),
        );
      },
    });
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
    EventRecoveryHook,
  ],
  exports: [EVENT_STREAM, EventFeed],
})
export class EventsCoreModule {}
