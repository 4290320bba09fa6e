import { requireUnscopedAdmin, type Caller } from '#src/common/auth/caller.js';
import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { decodeCursor, encodeCursor, type Page } from '#src/common/pagination.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import { ENTRY_FIELD, STREAM_ID, streamIdTime, type StoredAuditEntry } from './audit-record.js';
import type { AuditFilter } from './dto/audit-filter.js';
import type { AuditEventModel } from './models/audit-event.model.js';

/** Entries read from the stream per round trip. */
const BATCH = 500;
/**
 * Entries one page reads at most. A filter that matches little ends its page
 * there, with a cursor to read on: a listing never reads the whole trail at once.
 */
const MAX_SCANNED = 20_000;
/**
 * An entry's id is the time it was written, a little after its `at`: the
 * range read for since/until is this much wider, and `at` decides.
 */
const AT_MARGIN_MS = 1000;

/**
 * Reading the audit trail (the stream RedisAuditLog writes), newest first,
 * for REST and GraphQL alike. Read-only: the API has no way to change or
 * delete an entry.
 */
@Injectable()
export class AuditService {
  private readonly retentionMs: number;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
  ) {
    this.retentionMs = config.auditRetentionDays * 24 * 3600 * 1000;
  }

  /** The trail reaches beyond any scope: an admin whose token has scopes is refused. */
  async list(
    caller: Caller,
    filter: AuditFilter,
    limit: number,
    cursor: string | undefined,
  ): Promise<Page<AuditEventModel>> {
    requireUnscopedAdmin(caller, 'read the audit trail');
    const sinceMs = filter.since === undefined ? 0 : Date.parse(filter.since);
    const untilMs = filter.until === undefined ? null : Date.parse(filter.until);
    // Older than the retention is never shown, even before the next write trims it.
    const min = String(Math.max(sinceMs - AT_MARGIN_MS, Date.now() - this.retentionMs, 0));
    let max = untilMs === null ? '+' : String(untilMs + AT_MARGIN_MS);
    if (cursor !== undefined) {
      const after = decodeCursor(cursor);
      if (!STREAM_ID.test(after)) throw badCursor();
      if (untilMs === null || streamIdTime(after) <= untilMs + AT_MARGIN_MS) max = `(${after}`;
    }
    const items: AuditEventModel[] = [];
    let scanned = 0;
    let lastId: string | null = null;
    for (;;) {
      const batch = (await this.redis.xrevrange(
        this.keys.auditEvents,
        max,
        min,
        'COUNT',
        BATCH,
      )) as Array<[string, string[]]>;
      for (const [id, fields] of batch) {
        scanned++;
        lastId = id;
        const event = eventOf(id, fields);
        if (event === null || !matches(event, filter, sinceMs, untilMs)) continue;
        if (items.length === limit) {
          // One more matches: the page is full and there is a next one.
          return { items, nextCursor: encodeCursor(items.at(-1)!.id) };
        }
        items.push(event);
      }
      if (batch.length < BATCH || lastId === null) return { items, nextCursor: null };
      if (scanned >= MAX_SCANNED) {
        return {
          items,
          nextCursor: encodeCursor(items.length === limit ? items.at(-1)!.id : lastId),
        };
      }
      max = `(${lastId}`;
    }
  }
}

function eventOf(id: string, fields: string[]): AuditEventModel | null {
  const at = fields.indexOf(ENTRY_FIELD);
  const raw = at >= 0 && at % 2 === 0 ? fields[at + 1] : undefined;
  if (raw === undefined) return null;
  let entry: StoredAuditEntry;
  try {
    entry = JSON.parse(raw) as StoredAuditEntry;
  } catch {
    return null;
  }
  return {
    id,
    at: entry.at,
    actor: entry.actor ? { id: entry.actor.id, role: entry.actor.role } : null,
    action: entry.action,
    target: entry.target ?? null,
    host: entry.host ?? null,
    requestId: entry.requestId,
    address: entry.address ?? null,
    result: entry.result,
    code: entry.code ?? null,
    detail: entry.detail ? { ...entry.detail } : null,
  };
}

function matches(
  event: AuditEventModel,
  filter: AuditFilter,
  sinceMs: number,
  untilMs: number | null,
): boolean {
  const at = Date.parse(event.at);
  return (
    at >= sinceMs &&
    (untilMs === null || at <= untilMs) &&
    (filter.actor === undefined || event.actor?.id === filter.actor) &&
    (filter.action === undefined || event.action === filter.action) &&
    (filter.target === undefined || event.target === filter.target) &&
    (filter.host === undefined || event.host === filter.host) &&
    (filter.result === undefined || event.result === filter.result) &&
    (filter.requestId === undefined || event.requestId === filter.requestId) &&
    (filter.address === undefined || event.address === filter.address)
  );
}

function badCursor(): AppError {
  return new AppError(
    ErrorCode.INVALID_ARGUMENT,
    'cursor is not valid: pass back a nextCursor unchanged',
    {
      fields: [{ field: 'cursor', message: 'cursor is not a cursor this API returned' }],
    },
  );
}
