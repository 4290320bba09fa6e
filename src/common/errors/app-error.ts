/**
 * The gateway's error vocabulary. Services throw AppError with one of these
 * codes and never an HTTP exception; each transport translates the code once
 * (HTTP: problem-details.ts; GraphQL later: extensions.code).
 */
export enum ErrorCode {
  NOT_FOUND = 'NOT_FOUND',
  ALREADY_EXISTS = 'ALREADY_EXISTS',
  INVALID_ARGUMENT = 'INVALID_ARGUMENT',
  INVALID_STATE = 'INVALID_STATE',
  HOST_UNREACHABLE = 'HOST_UNREACHABLE',
  /** The gateway's own store (Redis) is not answering: retry later. */
  UNAVAILABLE = 'UNAVAILABLE',
  CONFLICT = 'CONFLICT',
  /** A two-phase block job asked to pivot before libvirt reported it ready: retry once it is. */
  NOT_READY = 'NOT_READY',
  /** An Idempotency-Key reused with another request body. */
  IDEMPOTENCY_MISMATCH = 'IDEMPOTENCY_MISMATCH',
  UNSUPPORTED = 'UNSUPPORTED',
  TIMEOUT = 'TIMEOUT',
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  FORBIDDEN = 'FORBIDDEN',
  /** A path a client gave resolves outside the storage pools in the caller's scope and the configured roots. */
  PATH_NOT_ALLOWED = 'PATH_NOT_ALLOWED',
  /** The caller has as many jobs queued as it may: wait for some to finish. */
  QUOTA_EXCEEDED = 'QUOTA_EXCEEDED',
  /** Too many requests from this token or address: retry after Retry-After. */
  RATE_LIMITED = 'RATE_LIMITED',
  /** An event cursor older than the stream retains (or from a stream that was reset): list again, then resume. */
  CURSOR_EXPIRED = 'CURSOR_EXPIRED',
  /** The request body is larger, or nested deeper, than the gateway accepts. */
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  INTERNAL = 'INTERNAL',
}

/** One invalid input field and what is wrong with it. */
export interface FieldError {
  /** The field's name as the caller sent it (`limit`, `uri`, `filter.state`). */
  field: string;
  message: string;
}

export interface AppErrorOptions {
  cause?: unknown;
  /** For INVALID_ARGUMENT: which fields are wrong, and why. */
  fields?: FieldError[];
  /** For HOST_UNREACHABLE, UNAVAILABLE and TIMEOUT: when a retry makes sense, in seconds. */
  retryAfterSeconds?: number;
  /** For CURSOR_EXPIRED: the oldest event id the stream retains (null: none). */
  oldestEventId?: string | null;
}

/** An expected failure, with a message fit to show to the API's caller. */
export class AppError extends Error {
  override readonly name = 'AppError';
  readonly retryAfterSeconds: number | undefined;
  readonly fields: readonly FieldError[];
  readonly oldestEventId: string | null | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.fields = options.fields ?? [];
    this.oldestEventId = options.oldestEventId;
  }
}

/** INVALID_ARGUMENT for one field: `field: message`. */
export function invalidField(field: string, message: string): AppError {
  return new AppError(ErrorCode.INVALID_ARGUMENT, `${field}: ${message}`, {
    fields: [{ field, message }],
  });
}

/** INVALID_ARGUMENT for several fields, each message saying which field it is about. */
export function invalidFields(fields: FieldError[]): AppError {
  return new AppError(ErrorCode.INVALID_ARGUMENT, fields.map((f) => f.message).join('; '), {
    fields,
  });
}
