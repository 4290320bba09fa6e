import { AppError, ErrorCode } from '../errors/app-error.js';

export type CallerRole = 'admin' | 'user';

/**
 * Who is calling, as services see it: never the HTTP request, so a job
 * processor can call the same service with the Caller it recorded.
 */
export interface Caller {
  /** Stable id of the token's owner ('admin' for the admin token). */
  readonly id: string;
  readonly role: CallerRole;
  /** What the caller may do; '*' is everything. */
  readonly scopes: readonly string[];
  /** The request (or job) this call belongs to. */
  readonly requestId: string;
}

/** Refuses a caller who is not an admin (FORBIDDEN), for operations reserved to admins. */
export function requireAdmin(caller: Caller, what: string): void {
  if (caller.role !== 'admin') {
    throw new AppError(ErrorCode.FORBIDDEN, `only an admin may ${what}`);
  }
}
