import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
} from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { Caller } from '../common/auth/caller.js';
import type { RequestAuthenticator } from '../common/auth/authenticator.js';
import { AppError, ErrorCode } from '../common/errors/app-error.js';
import type { RedisKeys } from '../redis/keys.js';

/** The docs' session cookie: `vg_docs=<id>`, Path=/docs, HttpOnly, SameSite=Strict. */
export const DOCS_COOKIE = 'vg_docs';
/** 32 random bytes, base64url. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * Sign-in sessions for the docs: a person gives an API token once, on the
 * login form, and gets a cookie holding a random session id, nothing else.
 *
 * Redis keeps, under the sha256 of that id and with a TTL, the token's id and
 * the token sealed (AES-256-GCM) with a key derived from the session id,
 * which only the browser holds: neither the cookie nor Redis alone gives the
 * token back. Each request with the cookie unseals the token and
 * authenticates it with the same authenticator as every route, so a revoked
 * (or expired) token ends its sessions at once, and ends them for good: the
 * session is deleted when its token no longer authenticates.
 */
export class DocsSessions {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly authenticator: RequestAuthenticator,
    private readonly ttlSeconds: number,
  ) {}

  /**
   * Checks `token` with the authenticator (throws UNAUTHENTICATED when it is
   * not valid) and opens a session for it; returns the cookie's session id.
   */
  async open(token: string, requestId: string): Promise<{ id: string; caller: Caller }> {
    const caller = await this.authenticator.authenticate(bearerRequest(token, requestId));
    const id = randomBytes(32).toString('base64url');
    const key = this.keys.docsSession(sha256(id));
    await this.redis
      .multi()
      .hset(key, {
        tokenId: caller.id,
        sealed: seal(token, id),
        createdAt: new Date().toISOString(),
      })
      .expire(key, this.ttlSeconds)
      .exec();
    return { id, caller };
  }

  /**
   * The Caller of the session whose id the request's cookie holds; throws
   * UNAUTHENTICATED when there is no such live session or its token no longer
   * authenticates (the session is then deleted).
   */
  async authenticate(request: FastifyRequest, id: string): Promise<Caller> {
    const key = this.keys.docsSession(sha256(id));
    const stored = await this.redis.hgetall(key);
    const token = stored.sealed ? unseal(stored.sealed, id) : null;
    if (token === null) throw expired();
    let caller: Caller;
    try {
      caller = await this.authenticator.authenticate(bearerRequest(token, request.id));
    } catch (err) {
      if (err instanceof AppError && err.code === ErrorCode.UNAUTHENTICATED) {
        await this.redis.del(key);
        throw expired();
      }
      throw err;
    }
    if (caller.id !== stored.tokenId) {
      await this.redis.del(key);
      throw expired();
    }
    (request as FastifyRequest & { user?: Caller }).user = caller;
    return caller;
  }

  /** Ends a session (sign-out); nothing when it is already gone. */
  async close(id: string): Promise<void> {
    await this.redis.del(this.keys.docsSession(sha256(id)));
  }

  /** The session id of the request's docs cookie, or null (absent or malformed). */
  static idOf(request: FastifyRequest): string | null {
    const header = request.headers.cookie;
    if (!header) return null;
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0 || part.slice(0, eq).trim() !== DOCS_COOKIE) continue;
      const value = part.slice(eq + 1).trim();
      return SESSION_ID.test(value) ? value : null;
    }
    return null;
  }

  /** The Set-Cookie value opening a session (`id`) or clearing it (null). */
  setCookie(id: string | null, secure: boolean): string {
    const attributes = ['Path=/docs', 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : [])];
    const value = id === null ? `${DOCS_COOKIE}=; Max-Age=0` : `${DOCS_COOKIE}=${id}; Max-Age=${this.ttlSeconds}`;
    return [value, ...attributes].join('; ');
  }
}

function expired(): AppError {
  return new AppError(
    ErrorCode.UNAUTHENTICATED,
    'the docs session has ended or its token is no longer valid: sign in again at /docs/login',
  );
}

/** What the authenticator reads of a request: the Authorization header and the request id. */
function bearerRequest(token: string, requestId: string): FastifyRequest {
  return { headers: { authorization: `Bearer ${token}` }, id: requestId } as unknown as FastifyRequest;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The sealing key of a session: derived from its id, never stored. */
function sealingKey(id: string): Buffer {
  return createHmac('sha256', id).update('virtgate docs session v1').digest();
}

/** iv.tag.ciphertext, base64url each. */
function seal(token: string, id: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(id), iv);
  const body = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return [iv, cipher.getAuthTag(), body].map((b) => b.toString('base64url')).join('.');
}

function unseal(sealed: string, id: string): string | null {
  const [iv, tag, body] = sealed.split('.').map((p) => Buffer.from(p, 'base64url'));
  if (!iv || !tag || !body || iv.length !== 12 || tag.length !== 16) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(id), iv);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
