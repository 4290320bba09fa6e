import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { CALLER_ROLES, type CallerRole, type HostScope } from '#src/common/auth/caller.js';
import type { TokenVerifier } from '#src/common/auth/token-verifier.js';
import { REDIS, REDIS_KEYS } from '#src/redis/redis.module.js';
import type { RedisKeys } from '#src/redis/keys.js';

/** An API token's record in Redis. The token itself is never stored, only its sha256. */
export interface TokenRecord {
  id: string;
  role: CallerRole;
  /** null: every host and everything on it. */
  scopes: HostScope[] | null;
  createdAt: string;
}

export const ADMIN_CALLER_ID = 'admin';

/** sha256 of a token, hex: the only form in which a token is stored. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random token: `vg_` + 32 random bytes in base64url. */
export function generateToken(): string {
  return `vg_${randomBytes(32).toString('base64url')}`;
}

@Injectable()
export class TokensService implements TokenVerifier {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
  ) {}

  /** The record of a presented token, or null when it matches none. */
  async findByToken(token: string): Promise<TokenRecord | null> {
    const fields = await this.redis.hgetall(this.keys.token(hashToken(token)));
    if (!fields.id || !(CALLER_ROLES as readonly string[]).includes(fields.role ?? '')) return null;
    return {
      id: fields.id,
      role: fields.role as CallerRole,
      scopes: parseScopes(fields.scopes),
      createdAt: fields.createdAt ?? '',
    };
  }

  async isValid(token: string): Promise<boolean> {
    return (await this.findByToken(token)) !== null;
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

function adminRecord(): Record<keyof TokenRecord, string> {
  return {
    id: ADMIN_CALLER_ID,
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
