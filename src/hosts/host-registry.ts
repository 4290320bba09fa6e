import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleInit,
} from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { Caller } from '#src/common/auth/caller.js';
import { requireHostInScope } from '#src/common/auth/scope.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { isRedisUnavailable } from '#src/common/errors/redis-errors.js';
import { OutageCache } from '#src/common/outage-cache.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import { redactUri } from '#src/libvirt/index.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import { RedisRecovery } from '#src/redis/redis-recovery.js';
import type { RedisKeys } from '#src/redis/keys.js';

/** The part of a host's record about its credentials; `sealed` opens only with the key. */
export interface StoredHostCredentials {
  /** HostCredentialsInput as JSON, sealed for `host:<name>`. */
  sealed: string;
  /** Changes with every registration or rotation: connections opened before are retired. */
  version: string;
  kinds: ('tls' | 'ssh')[];
}

/** A registered libvirt host, as stored. */
export interface HostRecord {
  name: string;
  uri: string;
  createdAt: string;
  createdBy: string;
  /** Set by PATCH: when and by whom the URI or credentials were last changed. */
  updatedAt?: string;
  updatedBy?: string;
  /** Registered credentials, sealed (src/hosts/host-credentials.ts); never in clear. */
  credentials?: StoredHostCredentials;
}

/** How long a host's record read from Redis serves while Redis is down. */
const OUTAGE_CACHE_MS = 60 * 60_000;

/** The name under which the gateway registers its default libvirt host at first start. */
export const DEFAULT_HOST_NAME = 'local';

/**
 * The registered hosts, kept in one Redis hash so every api and worker
 * process sees the same list. A new user sees a working host at once: the
 * configured default (LIBVIRT_DEFAULT_URI) is registered as `local` when no
 * host is.
 */
@Injectable()
export class HostRegistry implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger(HostRegistry.name);
  /** The hosts as last read, answered from while Redis is down (reads of a host need no Redis then). */
  private readonly lastRead = new OutageCache<HostRecord>(OUTAGE_CACHE_MS);

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly recovery: RedisRecovery,
  ) {}

  onModuleInit(): void {
    // Redis lost the hosts with the rest: the default host is registered again, as at first start.
    this.recovery.register({
      name: 'the default host',
      order: 0,
      onDataLoss: () => this.registerDefault(),
    });
  }

  onApplicationBootstrap(): Promise<void> {
    return this.registerDefault();
  }

  private async registerDefault(): Promise<void> {
    if (!(await this.isEmpty())) return;
    const added = await this.add({
      name: DEFAULT_HOST_NAME,
      uri: this.config.libvirtDefaultUri,
      createdAt: new Date().toISOString(),
      createdBy: 'gateway',
    });
    if (added) {
      this.logger.log(
        `registered host '${DEFAULT_HOST_NAME}' (${redactUri(this.config.libvirtDefaultUri)})`,
      );
    }
  }

  /** Adds a host; false if the name is taken. */
  async add(record: HostRecord): Promise<boolean> {
    return (await this.redis.hsetnx(this.keys.hosts, record.name, JSON.stringify(record))) === 1;
  }

  /**
   * Replaces the record of a host that is registered; false when it is not
   * (removed meanwhile: an update never brings a host back).
   */
  async replace(record: HostRecord): Promise<boolean> {
    const replaced = await this.redis.eval(
      "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end return 0",
      1,
      this.keys.hosts,
      record.name,
      JSON.stringify(record),
    );
    if (replaced === 1) this.lastRead.remember(record.name, record);
    return replaced === 1;
  }

  async find(name: string): Promise<HostRecord | null> {
    let raw: string | null;
    try {
      raw = await this.redis.hget(this.keys.hosts, name);
    } catch (err) {
      const cached = isRedisUnavailable(err) ? this.lastRead.recall(name) : undefined;
      if (cached) return cached;
      throw err;
    }
    if (raw === null) {
      this.lastRead.forget(name);
      return null;
    }
    const record = JSON.parse(raw) as HostRecord;
    this.lastRead.remember(name, record);
    return record;
  }

  /** The host's record, or NOT_FOUND. */
  async get(name: string): Promise<HostRecord> {
    const record = await this.find(name);
    if (!record) throw new AppError(ErrorCode.NOT_FOUND, `no host named '${name}' is registered`);
    return record;
  }

  /**
   * The host's record as `caller` may see it: NOT_FOUND, exactly as for an
   * unknown host, when the caller's scope does not cover it.
   */
  async getFor(caller: Caller, name: string): Promise<HostRecord> {
    requireHostInScope(caller, name);
    return this.get(name);
  }

  /** Every host, sorted by name. */
  async list(): Promise<HostRecord[]> {
    const all = await this.redis.hvals(this.keys.hosts);
    return all
      .map((raw) => JSON.parse(raw) as HostRecord)
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async remove(name: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.hosts, name)) === 1;
  }

  async isEmpty(): Promise<boolean> {
    return (await this.redis.hlen(this.keys.hosts)) === 0;
  }
}
