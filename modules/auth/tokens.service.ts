import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { RedisClient } from '#src/redis/redis-connection.js';
import {
  CALLER_ROLES,
  roleAtLeast,
  type Caller,
  type CallerRole,
  type HostScope,
} from '#src/common/auth/caller.js';
import { scopesWithin } from '#src/common/auth/scope.js';
import { AppError, ErrorCode, invalidField } from '#src/common/errors/app-error.js';
import { isRedisUnavailable } from '#src/common/errors/redis-errors.js';
import { OutageCache } from '#src/common/outage-cache.js';
import { paginate, type Page } from '#src/common/pagination.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';

/** An API token's record in Redis. The token itself is never stored, only its sha256. */
export interface TokenRecord {
  id: string;
  name: string;
  role: CallerRole;
  /** null: every host and everything on it. */
  scopes: HostScope[] | null;
  createdAt: string;
  /** The id of the token that made this one (null for the admin token). */
  createdBy: string | null;
  /** When the token stops working (ISO 8601); null: never. */
  expiresAt: string | null;
  lastUsedAt: string | null;
  lastUsedAddress: string | null;
}

export interface NewToken {
  name: string;
  role: CallerRole;
  scopes?: HostScope[] | null;
  expiresAt?: string | null;
}

export const ADMIN_CALLER_ID = 'admin';

/** How often one process records a token's last use (a write per request would be wasteful). */
const LAST_USED_EVERY_MS = 60_000;

/** How many tokens deep a chain of creators may go (each token's maker, and its maker…). */
const MAX_CHAIN = 8;

/** sha256 of a token, hex: the only form in which a token is stored. */
/** How long a verified token is remembered for authenticating while Redis is down. */
const VERIFIED_FOR_OUTAGES_MS = 10 * 60_000;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random token: `vg_` + 32 random bytes in base64url. */
export function generateToken(): string {
  return `vg_${randomBytes(32).toString('base64url')}`;
}

/**
 * A token's record, if it and every token in its chain of creators exists and
 * has not expired: one round trip. A token's rights are its own, which were
 * checked at creation to be within its creator's; revoking or expiring a
 * creator ends every token made under it.
 * KEYS: 1 the token's hash key. ARGV: 1 the key prefix, 2 now (ms), 3 max chain.
 */
const FIND = `local function live(key)
  local rec = redis.call('HGETALL', key)
  if #rec == 0 then return nil end
  local t = {}
  for i = 1, #rec, 2 do t[rec[i]] = rec[i + 1] end
  local exp = tonumber(t['expiresAtMs'] or '')
  if exp and exp <= tonumber(ARGV[2]) then return nil end
  return t, rec
end
local t, rec = live(KEYS[1])
if not t then return nil end
local parent = t['createdBy']
local depth = 0
while parent and parent ~= '' do
  depth = depth + 1
  if depth > tonumber(ARGV[3]) then return nil end
  local hash
  if parent == 'admin' then hash = redis.call('GET', ARGV[1] .. 'auth:admin-token-hash')
  else hash = redis.call('GET', ARGV[1] .. 'auth:token-id:' .. parent) end
  if not hash then return nil end
  local p = live(ARGV[1] .. 'auth:token:' .. hash)
  if not p then return nil end
  parent = p['createdBy']
end
return rec`;

@Injectable()
export class TokensService {
  /** When this process last recorded each token's use. */
  private readonly lastUseWritten = new Map<string, number>();
  /**
   * Tokens verified in the last ten minutes, by their sha256: while Redis
   * does not answer, they still authenticate (reads that need no Redis keep
   * working in an outage). A revocation is never missed by it: while Redis
   * answers, Redis is asked every time.
   */
  private readonly verified = new OutageCache<TokenRecord>(VERIFIED_FOR_OUTAGES_MS);

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
  ) {
    this.redis.defineCommand('virtgateFindToken', { numberOfKeys: 1, lua: FIND });
  }

  /** The record of a presented token, or null when it matches none (or is expired or orphaned). */
  async findByToken(token: string): Promise<TokenRecord | null> {
    const hash = hashToken(token);
    let record: TokenRecord | null;
    try {
      record = await this.lookUp(hash);
    } catch (err) {
      const cached = isRedisUnavailable(err) ? this.verified.recall(hash) : undefined;
      if (cached && (cached.expiresAt === null || Date.parse(cached.expiresAt) > Date.now())) {
        return cached;
      }
      throw err;
    }
    if (record) this.verified.remember(hash, record);
    else this.verified.forget(hash);
    return record;
  }

  private async lookUp(hash: string): Promise<TokenRecord | null> {
    const run = (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)
      .virtgateFindToken!;
    const raw = (await run.call(
      this.redis,
      this.keys.token(hash),
      this.keys.prefix,
      Date.now(),
      MAX_CHAIN,
    )) as string[] | null;
    if (!raw) return null;
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < raw.length; i += 2) fields[raw[i]!] = raw[i + 1]!;
    return recordOf(fields);
  }

  /** Notes that a token was used, at most once a minute per token and process; never fails the request. */
  noteUse(token: string, id: string, address: string): void {
    const now = Date.now();
    if ((this.lastUseWritten.get(id) ?? 0) > now - LAST_USED_EVERY_MS) return;
    this.lastUseWritten.set(id, now);
    if (this.lastUseWritten.size > 10_000) this.lastUseWritten.clear();
    const key = this.keys.token(hashToken(token));
    // Only on an existing record: a token revoked meanwhile must not come back as a fragment.
    void this.redis
      .eval(
        `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1], 'lastUsedAddress', ARGV[2]) end return 0`,
        1,
        key,
        new Date(now).toISOString(),
        address,
      )
      .catch(() => undefined);
  }

  /**
   * Makes a token for `creator`: never more than the creator holds (its role
   * or below, its scopes or within them). Returns the token, shown only now.
   */
  async create(creator: Caller, spec: NewToken): Promise<{ token: string; record: TokenRecord }> {
    if (!roleAtLeast(creator.role, spec.role)) {
      throw new AppError(
        ErrorCode.FORBIDDEN,
        `a token cannot grant more than its creator holds: role ${spec.role} is above this token's ${creator.role}`,
        { fields: [{ field: 'role', message: `must be ${creator.role} or below` }] },
      );
    }
    const scopes = spec.scopes ?? null;
    if (!scopesWithin(scopes, creator.scopes)) {
      throw new AppError(
        ErrorCode.FORBIDDEN,
        "a token cannot grant more than its creator holds: the scopes reach beyond this token's own",
        { fields: [{ field: 'scopes', message: "must lie within the creating token's scopes" }] },
      );
    }
    let expiresAtMs: number | null = null;
    if (spec.expiresAt != null) {
      expiresAtMs = Date.parse(spec.expiresAt);
      if (!(expiresAtMs > Date.now())) throw invalidField('expiresAt', 'must be in the future');
    }
    const token = generateToken();
    const hash = hashToken(token);
    const now = new Date();
    const record: TokenRecord = {
      id: `tok_${randomBytes(9).toString('base64url')}`,
      name: spec.name,
      role: spec.role,
      scopes,
      createdAt: now.toISOString(),
      createdBy: creator.id,
      expiresAt: expiresAtMs === null ? null : new Date(expiresAtMs).toISOString(),
      lastUsedAt: null,
      lastUsedAddress: null,
    };
    await this.redis
      .multi()
      .hset(this.keys.token(hash), {
        ...storedFields(record),
        ...(expiresAtMs === null ? {} : { expiresAtMs: String(expiresAtMs) }),
      })
      .set(this.keys.tokenId(record.id), hash)
      .zadd(this.keys.tokens, now.getTime(), record.id)
      .exec();
    return { token, record };
  }

  /** The tokens `caller` may see (all for an unscoped admin; the ones it made otherwise), by id. */
  async list(
    caller: Caller,
    limit: number,
    cursor: string | undefined,
  ): Promise<Page<TokenRecord>> {
    const ids = await this.redis.zrange(this.keys.tokens, 0, -1);
    const records = (await this.recordsOf(ids)).filter((r) => this.visibleTo(caller, r));
    records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return paginate(records, (r) => r.id, limit, cursor);
  }

  /** The record of the token with this id, or null. */
  async get(id: string): Promise<TokenRecord | null> {
    return (await this.recordsOf([id]))[0] ?? null;
  }

  /** Revokes a token `caller` may see: at once, for every api process (each request reads Redis). */
  async revoke(caller: Caller, id: string): Promise<void> {
    if (id === ADMIN_CALLER_ID) {
      throw new AppError(
        ErrorCode.CONFLICT,
        'the admin token is not revoked through the API: set VIRTGATE_ADMIN_TOKEN to replace it',
      );
    }
    const record = await this.get(id);
    if (!record || !this.visibleTo(caller, record)) {
      throw new AppError(ErrorCode.NOT_FOUND, `no token with id "${id}"`);
    }
    const hash = await this.redis.get(this.keys.tokenId(id));
    const tx = this.redis.multi().del(this.keys.tokenId(id)).zrem(this.keys.tokens, id);
    if (hash) tx.del(this.keys.token(hash));
    await tx.exec();
  }

  private visibleTo(caller: Caller, record: TokenRecord): boolean {
    return caller.scopes === null || record.createdBy === caller.id || record.id === caller.id;
  }

  private async recordsOf(ids: readonly string[]): Promise<TokenRecord[]> {
    if (ids.length === 0) return [];
    const hashes = await this.redis.mget(ids.map((id) => this.keys.tokenId(id)));
    const pipeline = this.redis.pipeline();
    const present = hashes.filter((h): h is string => h !== null);
    for (const h of present) pipeline.hgetall(this.keys.token(h));
    const results = (await pipeline.exec()) ?? [];
    const out: TokenRecord[] = [];
    for (const [err, fields] of results) {
      if (err) throw err;
      const record = recordOf(fields as Record<string, string>);
      if (record) out.push(record);
    }
    return out;
  }

  /**
   * Makes `token` the admin token (VIRTGATE_ADMIN_TOKEN): stores its hash and
   * revokes the admin token it replaces, if any.
   */
  async setAdminToken(token: string): Promise<'unchanged' | 'registered' | 'replaced'> {
    const hash = hashToken(token);
    const previous = await this.redis.get(this.keys.adminTokenHash);
    await this.redis.hset(this.keys.token(hash), adminRecord());
    await this.redis.set(this.keys.adminTokenHash, hash);
    if (previous === hash) return 'unchanged';
    if (previous === null) return 'registered';
    await this.redis.del(this.keys.token(previous));
    return 'replaced';
  }

  /**
   * Creates an admin token if none exists yet and returns it: the only time
   * it exists in clear. Returns null when there already is one. Safe against
   * two processes starting at once: only the one whose SET NX wins keeps its
   * token (and prints it); a crash midway leaves at most an unknown record.
   */
  async createAdminTokenIfNone(): Promise<string | null> {
    if ((await this.redis.exists(this.keys.adminTokenHash)) === 1) return null;
    const token = generateToken();
    const hash = hashToken(token);
    await this.redis.hset(this.keys.token(hash), adminRecord());
    const won = await this.redis.set(this.keys.adminTokenHash, hash, 'NX');
    if (won === 'OK') return token;
    await this.redis.del(this.keys.token(hash));
    return null;
  }

  /** Whether the admin token recorded in Redis still has its record. */
  async adminTokenRecordExists(): Promise<boolean> {
    const hash = await this.redis.get(this.keys.adminTokenHash);
    return hash !== null && (await this.redis.exists(this.keys.token(hash))) === 1;
  }
}

function storedFields(record: TokenRecord): Record<string, string> {
  return {
    id: record.id,
    name: record.name,
    role: record.role,
    scopes: JSON.stringify(record.scopes),
    createdAt: record.createdAt,
    createdBy: record.createdBy ?? '',
    expiresAt: record.expiresAt ?? '',
  };
}

function recordOf(fields: Record<string, string>): TokenRecord | null {
  if (!fields.id || !(CALLER_ROLES as readonly string[]).includes(fields.role ?? '')) return null;
  return {
    id: fields.id,
    name: fields.name ?? fields.id,
    role: fields.role as CallerRole,
    scopes: parseScopes(fields.scopes),
    createdAt: fields.createdAt ?? '',
    createdBy: fields.createdBy || null,
    expiresAt: fields.expiresAt || null,
    lastUsedAt: fields.lastUsedAt || null,
    lastUsedAddress: fields.lastUsedAddress || null,
  };
}

function adminRecord(): Record<string, string> {
  return {
    id: ADMIN_CALLER_ID,
    name: 'admin',
    role: 'admin',
    scopes: 'null',
    createdAt: new Date().toISOString(),
  };
}

/** Stored scopes: JSON, null for everything (the admin token's legacy `["*"]` too). */
function parseScopes(raw: string | undefined): HostScope[] | null {
  const value: unknown = JSON.parse(raw ?? 'null');
  if (!Array.isArray(value) || value.every((v) => v === '*')) return null;
  return value as HostScope[];
}
