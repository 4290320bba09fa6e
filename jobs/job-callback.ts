import { AsyncLocalStorage } from 'node:async_hooks';
import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { AppError, ErrorCode, invalidField } from '#src/common/errors/app-error.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { DestinationPolicy, DestinationRefused } from '#src/net/destination-policy.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';

/**
 * The `callbackUrl` of the job request being served. Every route and
 * mutation that starts a job takes it the same way (REST: the `callbackUrl`
 * query parameter; GraphQL: the argument of JobMutationArgs), and the jobs
 * feature's interceptor runs the handler inside `withJobCallback`: the
 * features' services and DTOs need not carry it to JobSubmitter.submit,
 * which reads it here.
 */
const requested = new AsyncLocalStorage<{ url: string | undefined }>();

/** Runs `run` as serving a job request with `url` as its callbackUrl (undefined: none). */
export function withJobCallback<T>(url: string | undefined, run: () => T): T {
  return requested.run({ url }, run);
}

/** The callbackUrl of the job request being served, if it has one. */
export function requestedJobCallback(): string | undefined {
  return requested.getStore()?.url;
}

/** A callback is kept at most this long past the job's retention (a job that never ends loses it). */
const KEEP_BEYOND_RETENTION_SECONDS = 30 * 86_400;

/**
 * Job callbacks: a job requested with `callbackUrl` gets, when it ends, the
 * signed delivery of its final job.state-changed event there (the webhooks
 * feature's dispatcher sends it, signed with WEBHOOK_CALLBACK_SECRET). The URL
 * is checked as a webhook URL is (src/net/destination-policy.ts) when the job
 * is requested, and again at each delivery attempt.
 */
@Injectable()
export class JobCallbacks {
  private readonly policy: DestinationPolicy;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
  ) {
    this.policy = new DestinationPolicy({
      allowed: config.webhookAllowedCidrs,
      denied: config.webhookDeniedCidrs,
    });
  }

  /**
   * Checks a requested callbackUrl: the gateway must have a callback secret,
   * and the URL must pass the destination checks. Its normalised form.
   */
  async check(raw: unknown): Promise<string> {
    if (typeof raw !== 'string') throw invalidField('callbackUrl', 'must be a URL');
    if (this.config.webhookCallbackKey === null) {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        'callbackUrl needs WEBHOOK_CALLBACK_SECRET set on the gateway (whsec_ + base64 of 24-64 random bytes): callbacks are signed with it',
      );
    }
    try {
      return (await this.policy.resolve(raw)).url.href;
    } catch (err) {
      if (err instanceof DestinationRefused) throw invalidField('callbackUrl', err.message);
      throw err;
    }
  }

  /** Notes the callback of a new job (before its record exists, so its end cannot be missed). */
  async remember(jobId: string, url: string): Promise<void> {
    const ttl = this.config.jobRetentionHours * 3600 + KEEP_BEYOND_RETENTION_SECONDS;
    await this.redis.set(this.keys.jobCallback(jobId), url, 'EX', ttl);
  }

  /** The callbacks of jobs (null for a job without one), in one round trip. */
  async of(jobIds: readonly string[]): Promise<(string | null)[]> {
    if (jobIds.length === 0) return [];
    return this.redis.mget(jobIds.map((id) => this.keys.jobCallback(id)));
  }
}
