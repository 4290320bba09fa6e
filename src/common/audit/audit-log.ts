/**
 * The audit trail's contract: what the features, the job machinery and the
 * global request handling record, and the token they inject to record it.
 * The audit feature (modules/audit) provides it, on a Redis stream.
 *
 * An entry never holds a secret: no token, no password, no request body.
 * Name what was acted on (a host, a domain, a job or token id), never what
 * was presented to prove who the caller is.
 */
import type { Caller, CallerRole } from '../auth/caller.js';
import { AppError, ErrorCode } from '../errors/app-error.js';

/** What can be recorded. */
export const AUDIT_ACTIONS = [
  /** A change asked for as a job (its result: accepted, replayed, or refused with the code). */
  'job.request',
  'host.register',
  'host.unregister',
  'host.update',
  'token.create',
  'token.revoke',
  'webhook.create',
  'webhook.update',
  'webhook.delete',
  /** A request answered 401: no credentials, or credentials that match none. */
  'auth.denied',
  /** A request (or GraphQL field) answered 403: authenticated, but not allowed. */
  'access.denied',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/**
 * - accepted: done (or, for a job, queued);
 * - replayed: an Idempotency-Key gave back an earlier job: nothing new was done;
 * - refused: the request was valid but not carried out (`code` says why);
 * - denied: refused for who the caller is (401, 403).
 */
export const AUDIT_RESULTS = ['accepted', 'replayed', 'refused', 'denied'] as const;
export type AuditResult = (typeof AUDIT_RESULTS)[number];

/** Who acted: the token (or JWT subject) and its role; null for an unauthenticated request. */
export interface AuditActor {
  readonly id: string;
  readonly role: CallerRole;
}

/** Extra facts of an entry: plain values only, and only ones that are safe to keep. */
export type AuditDetail = Readonly<Record<string, string | number | boolean | null>>;

export interface AuditEntry {
  readonly actor: AuditActor | null;
  readonly action: AuditAction;
  /**
   * What was acted on: `host/domain`, `host/pool`, a host name, `job:<id>`,
   * `token:<id>`; for a denied request its method and path (`DELETE /v1/hosts/x`)
   * or GraphQL field (`graphql Mutation.createHost`). Null when there is none.
   */
  readonly target: string | null;
  /** The host the target is on, when there is one. */
  readonly host?: string | null;
  readonly requestId: string;
  /** The client's address; taken from the request being served when omitted. */
  readonly address?: string | null;
  readonly result: AuditResult;
  /** For refused and denied: the error code of the answer (`FORBIDDEN`, `QUOTA_EXCEEDED`…). */
  readonly code?: string | null;
  /** Safe extra facts (a job's id and type, a redacted URI); never a secret or a body. */
  readonly detail?: AuditDetail;
  /** When it happened (ISO 8601); now when omitted. */
  readonly at?: string;
}

/**
 * Records audit entries. `record` never throws and never fails the request
 * it records: a write that fails is logged and counted, and the request goes on.
 */
export interface AuditLog {
  record(entry: AuditEntry): Promise<void>;
}

/** Injection token of the AuditLog (global: inject it anywhere, in both roles). */
export const AUDIT_LOG = Symbol('AUDIT_LOG');

/**
 * Runs a change of `caller`'s and records it: `accepted` with its target, or
 * `refused` with the error's code (then the error goes on). `target` names
 * what was acted on from the result (null when it failed before there was one).
 */
export async function audited<T>(
  audit: AuditLog,
  caller: Caller,
  action: AuditAction,
  target: (result: T | null) => string | null,
  detail: AuditDetail,
  run: () => Promise<T>,
): Promise<T> {
  const entry = {
    actor: { id: caller.id, role: caller.role },
    action,
    requestId: caller.requestId,
  };
  let result: T;
  try {
    result = await run();
  } catch (err) {
    const code = err instanceof AppError ? err.code : ErrorCode.INTERNAL;
    await audit.record({ ...entry, target: target(null), result: 'refused', code, detail });
    throw err;
  }
  await audit.record({ ...entry, target: target(result), result: 'accepted', detail });
  return result;
}
