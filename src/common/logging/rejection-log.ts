import type { FastifyReply, FastifyRequest } from 'fastify';
import { LogController } from 'fastify';
import type { Logger } from 'pino';

/** The addresses followed at once; beyond, rejections are only counted, together. */
const MAX_ADDRESSES = 10_000;
/** Rejections of one address logged in full per window, before only counting the rest. */
export const LOGGED_REJECTIONS_PER_WINDOW = 10;

interface AddressWindow {
  /** Rejections logged in full. */
  logged: number;
  unauthenticated: number;
  rateLimited: number;
  /** Rejections whose lines were left out. */
  suppressed: number;
}

/**
 * Keeps a flood of rejected requests (401, 429) from writing lines per
 * request: per client address and window, the first few rejections
 * (LOGGED_REJECTIONS_PER_WINDOW) are logged in full, the rest only counted, and when the window ends one summary line per
 * address says how many were left out. In memory, per process: it is about
 * this process's log.
 */
export class RejectionLog {
  private windows = new Map<string, AddressWindow>();
  private overflow = 0;
  private readonly timer: NodeJS.Timeout;
  /** Per request: whether its rejection is logged (decided once, at its first rejection). */
  private readonly verdicts = new WeakMap<object, boolean>();
  /** What each noted request was counted as. */
  private readonly kinds = new WeakMap<object, 'unauthenticated' | 'rateLimited'>();

  constructor(
    private readonly logger: Logger,
    private readonly windowMs: number,
  ) {
    this.timer = setInterval(() => this.flush(), windowMs);
    this.timer.unref();
  }

  /** Whether this address had its sample of rejections logged in this window (its next lines may be left out). */
  isHot(address: string): boolean {
    const window = this.windows.get(address);
    return window !== undefined && window.logged >= LOGGED_REJECTIONS_PER_WINDOW;
  }

  /**
   * Notes that `request` is rejected (`kind`) and says whether to log it: true
   * for the first few rejections of its address in the window. The same request asked
   * twice (the guard, then the completion line) gets the same answer, counted once.
   */
  admit(request: FastifyRequest, kind: 'unauthenticated' | 'rateLimited'): boolean {
    const known = this.verdicts.get(request.raw);
    if (known !== undefined) {
      // A 401 the failed-authentication count turned into a 429 on its way out: counted as that.
      const noted = this.kinds.get(request.raw);
      const window = this.windows.get(request.ip);
      if (noted !== undefined && noted !== kind && window) {
        window[noted]--;
        window[kind]++;
        this.kinds.set(request.raw, kind);
      }
      return known;
    }
    let window = this.windows.get(request.ip);
    if (!window) {
      if (this.windows.size >= MAX_ADDRESSES) {
        this.overflow++;
        this.verdicts.set(request.raw, false);
        return false;
      }
      window = { logged: 0, unauthenticated: 0, rateLimited: 0, suppressed: 0 };
      this.windows.set(request.ip, window);
    }
    const verdict = window.logged < LOGGED_REJECTIONS_PER_WINDOW;
    if (verdict) window.logged++;
    else window.suppressed++;
    window[kind]++;
    this.verdicts.set(request.raw, verdict);
    this.kinds.set(request.raw, kind);
    return verdict;
  }

  /** Whether `request` was noted as rejected (GraphQL answers 200 with errors: its status does not say). */
  wasRejected(request: FastifyRequest): boolean {
    return this.verdicts.has(request.raw);
  }

  /** Ends the window: one line per address with left-out rejections, then starts afresh. */
  flush(): void {
    for (const [address, w] of this.windows) {
      if (w.suppressed === 0) continue;
      this.logger.warn(
        {
          remoteAddress: address,
          unauthenticated: w.unauthenticated,
          rateLimited: w.rateLimited,
          suppressed: w.suppressed,
          windowMs: this.windowMs,
        },
        `rejected requests from one address (lines of all but the first ${LOGGED_REJECTIONS_PER_WINDOW} left out)`,
      );
    }
    if (this.overflow > 0) {
      this.logger.warn(
        { suppressed: this.overflow, addresses: MAX_ADDRESSES, windowMs: this.windowMs },
        'rejected requests from more addresses than are followed (not logged one by one)',
      );
    }
    this.windows = new Map();
    this.overflow = 0;
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}

const rejectionLogs = new WeakMap<object, RejectionLog>();

/**
 * Whether to log the rejection of `request` (see RejectionLog.admit): for the
 * guard's own line about a bad token. True when no RejectionLog is installed.
 */
export function shouldLogRejection(
  request: FastifyRequest,
  kind: 'unauthenticated' | 'rateLimited',
): boolean {
  return rejectionLogs.get(request.raw)?.admit(request, kind) ?? true;
}

/** Whether `request` was rejected for its credentials (see shouldLogRejection). */
export function wasRejected(request: FastifyRequest): boolean {
  return rejectionLogs.get(request.raw)?.wasRejected(request) ?? false;
}

/**
 * Fastify's request lines (incoming, completed) through a RejectionLog: a
 * request answered 401 or 429 (rate limit) is logged only when it is one of
 * the first few of its address in the window. The incoming line of a request from an
 * address already rejected in this window waits for its outcome, so a flood
 * writes none while a good request from the same address still gets both.
 */
export class SampledLogController extends LogController {
  private readonly deferred = new WeakSet<object>();

  constructor(
    private readonly rejections: RejectionLog,
    options: { requestIdLogLabel: string },
  ) {
    super(options);
  }

  override incomingRequest(
    request: FastifyRequest,
    reply: FastifyReply,
    metadata?: Record<string, unknown>,
  ): void {
    rejectionLogs.set(request.raw, this.rejections);
    if (this.rejections.isHot(request.ip)) {
      this.deferred.add(request.raw);
      return;
    }
    super.incomingRequest(request, reply, metadata);
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
    metadata?: Record<string, unknown>,
  ): void {
    const status = reply.statusCode;
    if (
      status === 401 ||
      (status === 429 && isRateLimited(reply)) ||
      this.rejections.wasRejected(request)
    ) {
      const kind = status === 429 ? 'rateLimited' : 'unauthenticated';
      if (!this.rejections.admit(request, kind)) return;
    }
    if (this.deferred.has(request.raw)) super.incomingRequest(request, reply, metadata);
    super.requestCompleted(error, request, reply, metadata);
  }
}

/** Marks a reply as a rate-limit rejection (not a quota one, which a known caller earned). */
export const RATE_LIMITED_REPLY = Symbol('virtgate.rateLimited');

function isRateLimited(reply: object): boolean {
  return (reply as Record<symbol, unknown>)[RATE_LIMITED_REPLY] === true;
}
