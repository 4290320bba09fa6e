import { Inject, Injectable, Logger } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { AuditEntry, AuditLog } from '#src/common/audit/audit-log.js';
import { currentRequest } from '#src/common/logging/request-context.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import { ENTRY_FIELD, type StoredAuditEntry } from './audit-record.js';

/** How long the count of folded denied-auth requests of an address is kept without a new entry. */
const FOLDED_TTL_MS = 24 * 3600 * 1000;

/**
 * The AuditLog on a Redis stream (XADD, one JSON field per entry). Each write
 * trims what is older than AUDIT_RETENTION_DAYS (MINID), so the stream holds
 * the retention period and no more. Nothing here changes or deletes an entry
 * otherwise: the API only reads the stream.
 *
 * Denied authentications (401) are folded per client address: the first of a
 * window (AUDIT_DENIED_WINDOW_SECONDS, across api processes: the window is a
 * Redis key) is written, the others of that window are only counted, and the
 * next entry written for that address says how many it stands for
 * (`detail.folded`). A flood of wrong tokens is one entry per address per window.
 */
@Injectable()
export class RedisAuditLog implements AuditLog {
  private readonly logger = new Logger('Audit');
  private readonly retentionMs: number;
  private readonly deniedWindowMs: number;
  /** Entries that could not be written since the process started. */
  private lost = 0;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
  ) {
    this.retentionMs = config.auditRetentionDays * 24 * 3600 * 1000;
    this.deniedWindowMs = config.auditDeniedWindowSeconds * 1000;
  }

  /** How many entries could not be written since the process started. */
  get lostEntries(): number {
    return this.lost;
  }

  async record(entry: AuditEntry): Promise<void> {
    try {
      const address = entry.address ?? currentRequest()?.address ?? null;
      let detail = entry.detail;
      if (entry.action === 'auth.denied' && address !== null && this.deniedWindowMs > 0) {
        const folded = await this.foldDenied(address);
        if (folded === null) return;
        if (folded > 0) detail = { ...detail, folded };
      }
      const stored: StoredAuditEntry = {
        ...entry,
        host: entry.host ?? null,
        code: entry.code ?? null,
        address,
        ...(detail ? { detail } : {}),
        at: entry.at ?? new Date().toISOString(),
      };
      const minId = `${Math.max(0, Date.now() - this.retentionMs)}-0`;
      await this.redis.xadd(
        this.keys.auditEvents,
        'MINID',
        minId,
        '*',
        ENTRY_FIELD,
        JSON.stringify(stored),
      );
    } catch (err) {
      this.lost++;
      this.logger.error(
        `could not record the audit entry ${entry.action} of request ${entry.requestId} ` +
          `(${(err as Error).message}); ${this.lost} entries lost since start`,
      );
    }
  }

  /**
   * Null when this denied request is folded into a later entry; otherwise how
   * many earlier ones of the address the entry about to be written stands for.
   */
  private async foldDenied(address: string): Promise<number | null> {
    const gate = await this.redis.set(
      this.keys.auditDeniedGate(address),
      '1',
      'PX',
      this.deniedWindowMs,
      'NX',
    );
    const folded = this.keys.auditDeniedFolded(address);
    if (gate !== 'OK') {
      await this.redis.multi().incr(folded).pexpire(folded, FOLDED_TTL_MS).exec();
      return null;
    }
    return Number((await this.redis.getdel(folded)) ?? 0);
  }
}
