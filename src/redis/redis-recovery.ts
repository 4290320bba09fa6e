import { randomUUID } from 'node:crypto';
import {
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { RedisClient } from './redis-connection.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { REDIS, REDIS_KEYS } from './redis.module.js';
import type { RedisKeys } from './keys.js';

/** How often each process looks for the marker (besides at every reconnect). */
const CHECK_INTERVAL_MS = 1000;
/**
 * How long the gateway-wide `degraded` lasts at most when no worker finishes
 * the recovery (none runs, or it died in the middle): the mark lapses then.
 */
const RECOVERING_TTL_SECONDS = 120;
/** The marker's value while the first finder announces a loss (with a TTL: a finder that dies lets it go). */
const PENDING = 'pending:';
const PENDING_MS = 10_000;
/** Hooks of this order and above reconcile with the hosts: they wait for SETTLE_MS after the loss was noticed. */
export const RECONCILE_ORDER = 20;
/** Time for every process to notice a loss (two check intervals) before the gateway is said recovered. */
const SETTLE_MS = 2 * CHECK_INTERVAL_MS;

/** What a recovery hook is told. */
export interface DataLossContext {
  /** The marker's new value: the same in every process recovering from this loss. */
  readonly epoch: string;
  /** This process found the loss first (wrote the new marker): one-off work is its to do. */
  readonly first: boolean;
  /** When this process noticed (ISO 8601). */
  readonly detectedAt: string;
}

export interface RecoveryHook {
  /** For logs. */
  readonly name: string;
  /** Lower runs first: bootstrap records (0), then what builds on them (10), then reconciliation (20). */
  readonly order: number;
  /** Run once gateway-wide, by the process that found the loss, before any process recovers. */
  onFirstNotice?(ctx: DataLossContext): Promise<void>;
  /** Restores what this part of the gateway keeps in Redis. Errors are logged, and the hook re-run at the next check. */
  onDataLoss(ctx: DataLossContext): Promise<void>;
  /** The whole recovery is done (called once, in the worker that finished it). */
  onRecovered?(ctx: DataLossContext): Promise<void>;
}

export interface RecoveryStatus {
  /** `recovering` from the moment a loss is noticed until the workers reconciled the hosts. */
  state: 'ok' | 'recovering';
  /** The last loss this process saw. */
  lastLoss: { detectedAt: string; recoveredAt: string | null } | null;
}

/**
 * Notices that Redis lost the gateway's data, and restores it without a
 * restart. At boot each process reads (or writes, when there is none) a
 * marker key holding a random epoch; it then checks the marker every second
 * and at every reconnect. A marker gone means the data went with it (a
 * restart without persistence, a FLUSHALL, a failover to an empty replica):
 * the first process to see it writes a new epoch, and every process, seeing
 * the epoch change, runs its recovery hooks (the admin token and the default
 * host are registered again, the workers re-record their running jobs and
 * reconcile the hosts' block jobs).
 *
 * While that lasts the gateway is `degraded` (GET /health/ready): a
 * gateway-wide mark says so to every api process, set by the first finder and
 * cleared by a worker once its hooks ran (or lapsing after two minutes).
 */
@Injectable()
export class RedisRecovery implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('RedisRecovery');
  private readonly hooks: RecoveryHook[] = [];
  private epoch: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** Hooks still to run for the current loss (a failed one is retried at the next check). */
  private pending: { ctx: DataLossContext; hooks: RecoveryHook[] } | null = null;
  private lastLoss: { detectedAt: string; recoveredAt: string | null } | null = null;
  private readonly onReady = (): void => void this.check();
  private stopped = false;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Adds a hook (at module init or bootstrap: hooks added later join from the next loss). */
  register(hook: RecoveryHook): void {
    this.hooks.push(hook);
    this.hooks.sort((a, b) => a.order - b.order);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.epoch = await this.readOrWriteMarker();
    this.redis.on('ready', this.onReady);
    this.timer = setInterval(() => void this.check(), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    this.redis.off('ready', this.onReady);
    if (this.timer) clearInterval(this.timer);
  }

  /** This process's view; see `degraded()` for the gateway's. */
  status(): RecoveryStatus {
    return {
      // Only a loss being recovered from: the routine look at the marker is no recovery.
      state: this.pending ? 'recovering' : 'ok',
      lastLoss: this.lastLoss && { ...this.lastLoss },
    };
  }

  /**
   * True while a recovery runs here or anywhere in the gateway (the
   * gateway-wide mark exists). A Redis that does not answer is not
   * `degraded`: readiness reports that as Redis being down.
   */
  async degraded(): Promise<boolean> {
    if (this.status().state === 'recovering') return true;
    return (await this.redis.exists(this.keys.recovering)) === 1;
  }

  /** Looks at the marker once; runs the recovery when it is gone or changed. Never throws. */
  check(): Promise<void> {
    if (this.running || this.stopped || this.epoch === null)
      return this.running ?? Promise.resolve();
    if (this.redis.status !== 'ready') return Promise.resolve();
    this.running = this.checkOnce()
      .catch((err: unknown) => {
        this.logger.warn(`recovery check failed: ${(err as Error).message}`);
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async checkOnce(): Promise<void> {
    const current = await this.redis.get(this.keys.marker);
    // Another process is announcing a loss it found: its epoch is final in a moment.
    if (current !== null && current.startsWith(PENDING)) return;
    if (current !== null && current === this.epoch && !this.pending) return;
    if (current === null || current !== this.epoch) {
      const detectedAt = new Date().toISOString();
      let first = false;
      let seen = current;
      if (current === null) {
        seen = randomUUID();
        const won = await this.redis.set(this.keys.marker, PENDING + seen, 'PX', PENDING_MS, 'NX');
        if (won !== 'OK') return; // another process found it first: its epoch shows next check
        first = true;
        await this.redis.set(this.keys.recovering, seen, 'EX', RECOVERING_TTL_SECONDS);
        // What is announced once (the event stream's gateway.degraded) comes before any
        // process, seeing the new epoch, can finish its part.
        for (const hook of this.hooks) {
          await hook.onFirstNotice?.({ epoch: seen, first, detectedAt }).catch((err: unknown) => {
            this.logger.warn(`${hook.name} on the loss: ${(err as Error).message}`);
          });
        }
        await this.redis.set(this.keys.marker, seen);
      }
      this.epoch = seen!;
      this.lastLoss = { detectedAt, recoveredAt: null };
      this.pending = { ctx: { epoch: seen!, first, detectedAt }, hooks: [...this.hooks] };
      this.logger.warn(
        first
          ? "Redis lost the gateway's data (its marker key is gone): restoring what the gateway keeps there"
          : "Redis lost the gateway's data (another process noticed first): restoring this process's part",
      );
    }
    await this.runPending();
  }

  private async runPending(): Promise<void> {
    const pending = this.pending!;
    while (pending.hooks.length > 0) {
      const hook = pending.hooks[0]!;
      if (hook.order >= RECONCILE_ORDER) {
        // Every process notices within a check interval; the reconciliation waits for all of
        // them to have written back their running jobs, lest it take one for an orphan.
        const wait = Date.parse(pending.ctx.detectedAt) + SETTLE_MS - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      try {
        await hook.onDataLoss(pending.ctx);
      } catch (err) {
        this.logger.warn(
          `recovery of ${hook.name} failed, retried at the next check: ${(err as Error).message}`,
        );
        return;
      }
      pending.hooks.shift();
    }
    this.pending = null;
    if (this.lastLoss) this.lastLoss.recoveredAt = new Date().toISOString();
    if (this.config.role === 'api') {
      this.logger.log(
        "this process's part of the recovery is done; the workers reconcile the hosts",
      );
      return;
    }
    // A worker finishes the gateway's recovery: the hosts' block jobs are reconciled by now
    // (and every process had the time to notice).
    const wait = Date.parse(pending.ctx.detectedAt) + SETTLE_MS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const cleared = (await this.redis.eval(
      `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
      1,
      this.keys.recovering,
      pending.ctx.epoch,
    )) as number;
    this.logger.log('recovered from the loss of Redis data');
    if (cleared !== 1) return; // another worker finished it (and says so)
    for (const hook of this.hooks) {
      await hook.onRecovered?.(pending.ctx).catch((err: unknown) => {
        this.logger.warn(`${hook.name} after recovery: ${(err as Error).message}`);
      });
    }
  }

  private async readOrWriteMarker(): Promise<string> {
    const epoch = randomUUID();
    const won = await this.redis.set(this.keys.marker, epoch, 'NX');
    if (won === 'OK') return epoch;
    const current = (await this.redis.get(this.keys.marker)) ?? epoch;
    // Booting while a loss is being announced: this process starts on the new epoch.
    return current.startsWith(PENDING) ? current.slice(PENDING.length) : current;
  }
}

/** The recovery service, for both roles (global: features register their hooks with it). */
@Global()
@Module({ providers: [RedisRecovery], exports: [RedisRecovery] })
export class RedisRecoveryModule {}
