import { CALLER_ROLES, type CallerRole } from '../../config/roles.js';
import { AppError, ErrorCode } from '../errors/app-error.js';

/** The roles, weakest first: see src/config/roles.ts. */
export { CALLER_ROLES, type CallerRole };

/**
 * What a scoped token reaches on one host. Neither list: everything on the
 * host; once one is given, what is not named is not reached (an absent list
 * is then empty: see effectivePatterns in scope.ts). Patterns are shell-style
 * (`*`, `?`), matched against the whole name.
 */
export interface HostScope {
  readonly host: string;
  readonly domains?: readonly string[];
  readonly pools?: readonly string[];
}

/**
 * Who is calling, as services see it: never the HTTP request, so a job
 * processor can call the same service with the Caller it recorded.
 */
export interface Caller {
  /** Stable id of the token (or JWT subject) that authenticated ('admin' for the admin token). */
  readonly id: string;
  readonly role: CallerRole;
  /** What the caller reaches; null: every host and everything on it. */
  readonly scopes: readonly HostScope[] | null;
  /** The request (or job) this call belongs to. */
  readonly requestId: string;
}

/** Whether `role` holds everything `needed` holds. */
export function roleAtLeast(role: CallerRole, needed: CallerRole): boolean {
  return CALLER_ROLES.indexOf(role) >= CALLER_ROLES.indexOf(needed);
}

/** Refuses (FORBIDDEN) a caller whose role is below `needed`. */
export function requireRole(caller: Caller, needed: CallerRole, what: string): void {
  if (!roleAtLeast(caller.role, needed)) {
    throw new AppError(
      ErrorCode.FORBIDDEN,
      `${what} needs the ${needed} role or above; this token has the ${caller.role} role`,
    );
  }
}

/** Refuses a caller who is not an admin (FORBIDDEN), for operations reserved to admins. */
export function requireAdmin(caller: Caller, what: string): void {
  if (caller.role !== 'admin') {
    throw new AppError(ErrorCode.FORBIDDEN, `only an admin may ${what}`);
  }
}

/**
 * Refuses (FORBIDDEN) a caller that is not an admin without scopes: for what
 * reaches beyond any scope (registering hosts, the whole audit trail).
 */
export function requireUnscopedAdmin(caller: Caller, what: string): void {
  requireAdmin(caller, what);
  if (caller.scopes !== null) {
    throw new AppError(ErrorCode.FORBIDDEN, `a token with scopes may not ${what}`);
  }
}
