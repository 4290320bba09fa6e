import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { Logger } from 'pino';
import type { AppConfig } from '#src/config/config.js';
import type { RedisKeys } from '#src/redis/keys.js';
import { bearerToken } from '../auth/authenticator.js';
import { AppError, ErrorCode } from '../errors/app-error.js';
import { sendProblem } from '../filters/problem-details.filter.js';
import { describeCode, PROBLEM_CONTENT_TYPE, problemType } from '../errors/problem-details.js';
import { RATE_LIMITED_REPLY, wasRejected } from '../logging/rejection-log.js';

/**
 * Counts this request in each counter of KEYS but the last (INCR; the first
 * hit of a window starts its expiry), and reads the last (failed
 * authentications) without counting, unless ARGV[2] is '1' (then it counts
 * that one too). One round trip, atomic, so the limits hold across every api
 * process sharing the Redis. ARGV: 1 the window (ms). Returns count, ms left,
 * for each key in order.
 */
const HIT = `
local out = {}
for i = 1, #KEYS do
  local n
  if i < #KEYS or ARGV[2] == '1' then
    n = redis.call('INCR', KEYS[i])
    if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
  else
    n = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then ttl = tonumber(ARGV[1]) end
  out[#out + 1] = n
  out[#out + 1] = ttl
end
return out
`;

/** Paths no limit applies to: a probe must get through whatever a client does. */
const EXEMPT = /^\/(health|metrics)(\/|$)/;

export interface RateLimitDeps {
  redis: RedisClient;
  keys: RedisKeys;
}

interface Counter {
  limit: number;
  count: number;
  msLeft: number;
  why: string;
}

/**
 * The request rate limits (RATE_LIMIT_PER_TOKEN, RATE_LIMIT_PER_ADDRESS) and
 * the tighter one on failed authentications per address
 * (AUTH_FAILURES_PER_ADDRESS), as Fastify hooks: checked when a request
 * arrives, before its body is read or its token looked up, and answered 429
 * RATE_LIMITED with Retry-After and RateLimit-* headers. Counters are fixed
 * windows in Redis. A token is counted by its hash, whether it is valid or not
 * (a wrong one soon meets the failed-authentication limit). When Redis is not
 * there, requests pass uncounted: the limits protect the gateway, they must not
 * take it down with the store.
 *
 * `deps` is called per request: the Redis client exists only once Nest has built it.
 */
export function registerRateLimits(
  fastify: FastifyInstance,
  config: AppConfig,
  logger: Logger,
  deps: () => RateLimitDeps | undefined,
): void {
  const { rateLimitPerToken, rateLimitPerAddress, authFailuresPerAddress } = config;
  if (rateLimitPerToken === 0 && rateLimitPerAddress === 0 && authFailuresPerAddress === 0) return;
  const window = config.rateLimitWindowMs;
  let lastWarning = 0;
  const warn = (err: unknown): void => {
    // One line per window at most: an outage must not turn every request into a log line.
    if (Date.now() - lastWarning < window) return;
    lastWarning = Date.now();
    logger.warn({ err }, 'rate limits not applied: Redis did not answer (requests pass uncounted)');
  };
  const ready = (): RateLimitDeps | undefined => {
    const d = deps();
    return d && d.redis.status === 'ready' ? d : undefined;
  };

  /** Counts one request (or WebSocket operation); the refusal and the counter to show. */
  const admit = async (
    address: string,
    token: string | null,
  ): Promise<{ refusal: { why: string; msLeft: number } | null; shown?: Counter } | null> => {
    const d = ready();
    if (!d) return null;
    const checks: Array<{ key: string; limit: number; why: string }> = [];
    if (rateLimitPerAddress > 0) {
      checks.push({
        key: d.keys.rateLimit('address', address),
        limit: rateLimitPerAddress,
        why: 'too many requests from this address',
      });
    }
    if (token !== null && rateLimitPerToken > 0) {
      checks.push({
        key: d.keys.rateLimit('token', createHash('sha256').update(token).digest('hex')),
        limit: rateLimitPerToken,
        why: 'too many requests with this token',
      });
    }
    // Last, read only: the failed authentications of this address.
    const failuresKey = d.keys.rateLimit('auth-failures', address);
    const keys = [...checks.map((c) => c.key), failuresKey];
    let raw: number[];
    try {
      raw = await hit(d.redis, keys, window, false);
    } catch (err) {
      warn(err);
      return null;
    }
    const counters: Counter[] = checks.map((c, i) => ({
      limit: c.limit,
      count: raw[2 * i]!,
      msLeft: raw[2 * i + 1]!,
      why: c.why,
    }));
    const failures = { count: raw[2 * checks.length]!, msLeft: raw[2 * checks.length + 1]! };
    if (authFailuresPerAddress > 0 && failures.count >= authFailuresPerAddress) {
      return {
        refusal: {
          why: 'too many failed authentications from this address',
          msLeft: failures.msLeft,
        },
      };
    }
    const over = counters.find((c) => c.count > c.limit);
    return {
      refusal: over ? { why: over.why, msLeft: over.msLeft } : null,
      shown: over ?? tightest(counters),
    };
  };

  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (EXEMPT.test(request.url)) return;
    const outcome = await admit(request.ip, bearerToken(request.headers.authorization));
    if (!outcome) return;
    const { refusal, shown } = outcome;
    if (shown) {
      void reply
        .header('ratelimit-limit', String(shown.limit))
        .header('ratelimit-remaining', String(Math.max(0, shown.limit - shown.count)))
        .header('ratelimit-reset', String(Math.ceil(shown.msLeft / 1000)));
    }
    if (refusal) return reject(request, reply, refusal.why, refusal.msLeft);
  });

  const messageLimits: MessageLimits = {
    admit: async (address, token) => {
      const refusal = (await admit(address, token))?.refusal;
      if (!refusal) return null;
      const seconds = Math.max(1, Math.ceil(refusal.msLeft / 1000));
      return new AppError(ErrorCode.RATE_LIMITED, `${refusal.why}: retry after ${seconds} s`, {
        retryAfterSeconds: seconds,
      });
    },
    failedAuthentication: async (address) => {
      if (authFailuresPerAddress === 0) return;
      const d = ready();
      if (!d) return;
      try {
        await hit(d.redis, [d.keys.rateLimit('auth-failures', address)], window, true);
      } catch (err) {
        warn(err);
      }
    },
  };
  fastify.decorate(MESSAGE_LIMITS, messageLimits);

  if (authFailuresPerAddress > 0) {
    // Counted as the answer goes out, atomically, so that a burst sent all at once meets the
    // limit too: the failures beyond it are answered 429, not 401, and say nothing of the token.
    fastify.addHook(
      'onSend',
      async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
        // A GraphQL field refused for its credentials answers 200: the guard noted it.
        const status = reply.statusCode;
        if (status === 429 || (status !== 401 && !wasRejected(request))) return payload;
        const d = ready();
        if (!d) return payload;
        const key = d.keys.rateLimit('auth-failures', request.ip);
        let counted: number[];
        try {
          counted = await hit(d.redis, [key], window, true);
        } catch (err) {
          warn(err);
          return payload;
        }
        const [count = 0, msLeft = window] = counted;
        if (status !== 401 || count <= authFailuresPerAddress) return payload;
        const seconds = Math.max(1, Math.ceil(msLeft / 1000));
        (reply as unknown as Record<symbol, unknown>)[RATE_LIMITED_REPLY] = true;
        void reply
          .code(429)
          .header('retry-after', String(seconds))
          .header('content-type', PROBLEM_CONTENT_TYPE)
          .removeHeader('www-authenticate');
        return JSON.stringify({
          type: problemType(ErrorCode.RATE_LIMITED),
          title: describeCode(ErrorCode.RATE_LIMITED).title,
          status: 429,
          detail: `too many failed authentications from this address: retry after ${seconds} s`,
          instance: request.url.split('?')[0],
          code: ErrorCode.RATE_LIMITED,
          requestId: request.id,
        });
      },
    );
  }
}

/**
 * The same limits for what arrives over an open WebSocket (GraphQL
 * subscriptions), where no HTTP request carries it: each operation started
 * counts as a request of its token and address, and a refused
 * authentication counts in the address's failed authentications.
 */
export interface MessageLimits {
  /** Counts one operation; RATE_LIMITED (with retryAfterSeconds) when over a limit, else null. */
  admit(address: string, token: string | null): Promise<AppError | null>;
  /** Counts one failed authentication of `address`. */
  failedAuthentication(address: string): Promise<void>;
}

const MESSAGE_LIMITS = Symbol('virtgate.messageLimits');

/** The message limits registered on `fastify` (undefined when every limit is off). */
export function messageLimitsOf(fastify: FastifyInstance): MessageLimits | undefined {
  return (fastify as unknown as Record<symbol, MessageLimits | undefined>)[MESSAGE_LIMITS];
}

/** Runs HIT by its SHA (EVALSHA; the script's text is sent once per connection, not per request). */
async function hit(redis: RedisClient, keys: string[], window: number, countLast: boolean) {
  const r = redis as RedisClient & {
    virtgateRateHit?: (n: number, ...args: Array<string | number>) => Promise<number[]>;
  };
  if (!r.virtgateRateHit) r.defineCommand('virtgateRateHit', { lua: HIT });
  return r.virtgateRateHit!(keys.length, ...keys, window, countLast ? '1' : '0');
}

function reject(
  request: FastifyRequest,
  reply: FastifyReply,
  why: string,
  msLeft: number,
): FastifyReply {
  const seconds = Math.max(1, Math.ceil(msLeft / 1000));
  (reply as unknown as Record<symbol, unknown>)[RATE_LIMITED_REPLY] = true;
  sendProblem(
    new AppError(ErrorCode.RATE_LIMITED, `${why}: retry after ${seconds} s`, {
      retryAfterSeconds: seconds,
    }),
    request,
    reply,
  );
  return reply;
}

function tightest(counters: Counter[]): Counter | undefined {
  let best: Counter | undefined;
  for (const c of counters) {
    if (!best || c.limit - c.count < best.limit - best.count) best = c;
  }
  return best;
}
