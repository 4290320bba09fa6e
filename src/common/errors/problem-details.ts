import { HttpException } from '@nestjs/common';
import { AppError, ErrorCode, type FieldError } from './app-error.js';
import { HOST_RETRY_AFTER_SECONDS, fromLibvirtError } from './libvirt-errors.js';
import { fromRedisError } from './redis-errors.js';
import { redactText } from '../redact.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/** An RFC 9457 problem document, plus the gateway's stable `code` and the request id. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: ErrorCode;
  requestId: string;
  /** For INVALID_ARGUMENT: each invalid field and why (absent otherwise). */
  errors?: FieldError[];
  /** For CURSOR_EXPIRED: the oldest event id retained, to resume from after listing again. */
  oldestEventId?: string | null;
}

/** How one exception is answered over HTTP. */
export interface HttpProblem {
  status: number;
  code: ErrorCode;
  title: string;
  detail: string;
  headers: Record<string, string>;
  fields: readonly FieldError[];
  /** For CURSOR_EXPIRED: the oldest event id retained (undefined otherwise). */
  oldestEventId?: string | null;
  /**
   * A gateway failure (status 500): log it once, with the request id. For an
   * error we did not expect, the answer also hides its message.
   */
  logAsError: boolean;
}

/** The HTTP status and title of each code: the one place they are decided. */
export function describeCode(code: ErrorCode): { status: number; title: string } {
  switch (code) {
    case ErrorCode.NOT_FOUND:
      return { status: 404, title: 'Not found' };
    case ErrorCode.ALREADY_EXISTS:
      return { status: 409, title: 'Already exists' };
    case ErrorCode.INVALID_ARGUMENT:
      return { status: 400, title: 'Invalid argument' };
    case ErrorCode.INVALID_STATE:
      return { status: 409, title: 'Invalid state' };
    case ErrorCode.HOST_UNREACHABLE:
      return { status: 503, title: 'Host unreachable' };
    case ErrorCode.UNAVAILABLE:
      return { status: 503, title: 'Service unavailable' };
    case ErrorCode.CONFLICT:
      return { status: 409, title: 'Conflict' };
    case ErrorCode.NOT_READY:
      return { status: 409, title: 'Not ready' };
    case ErrorCode.IDEMPOTENCY_MISMATCH:
      return { status: 422, title: 'Idempotency-Key reused with another request' };
    case ErrorCode.UNSUPPORTED:
      return { status: 501, title: 'Unsupported' };
    case ErrorCode.TIMEOUT:
      return { status: 504, title: 'Timeout' };
    case ErrorCode.UNAUTHENTICATED:
      return { status: 401, title: 'Unauthenticated' };
    case ErrorCode.FORBIDDEN:
      return { status: 403, title: 'Forbidden' };
    case ErrorCode.PATH_NOT_ALLOWED:
      return { status: 403, title: 'Path not allowed' };
    case ErrorCode.QUOTA_EXCEEDED:
      return { status: 429, title: 'Quota exceeded' };
    case ErrorCode.RATE_LIMITED:
      return { status: 429, title: 'Too many requests' };
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return { status: 413, title: 'Payload too large' };
    case ErrorCode.CURSOR_EXPIRED:
      return { status: 410, title: 'Cursor expired' };
    case ErrorCode.INTERNAL:
      return { status: 500, title: 'Internal error' };
    default:
      return assertNever(code);
  }
}

/** The problem `type` URI of a code, e.g. urn:virtgate:problem:not-found. */
export function problemType(code: ErrorCode): string {
  return `urn:virtgate:problem:${code.toLowerCase().replaceAll('_', '-')}`;
}

/** The code for an HTTP status raised outside our services (Nest's or Fastify's own errors). */
export function codeForHttpStatus(status: number): ErrorCode {
  switch (status) {
    case 401:
      return ErrorCode.UNAUTHENTICATED;
    case 403:
      return ErrorCode.FORBIDDEN;
    case 404:
    case 410:
      return ErrorCode.NOT_FOUND;
    case 405:
    case 406:
    case 415:
    case 501:
      return ErrorCode.UNSUPPORTED;
    case 408:
    case 504:
      return ErrorCode.TIMEOUT;
    case 409:
    case 412:
      return ErrorCode.CONFLICT;
    case 413:
      return ErrorCode.PAYLOAD_TOO_LARGE;
    case 429:
      return ErrorCode.RATE_LIMITED;
    case 502:
      return ErrorCode.HOST_UNREACHABLE;
    case 503:
      return ErrorCode.UNAVAILABLE;
  }
  return status >= 400 && status < 500 ? ErrorCode.INVALID_ARGUMENT : ErrorCode.INTERNAL;
}

/**
 * Decides the HTTP answer to any thrown value: our AppError, the libvirt
 * client's errors, Nest's HttpException (unknown route, bad input), Fastify's
 * own 4xx errors (malformed body), and anything else as an unexpected 500.
 */
export function httpProblemFor(exception: unknown): HttpProblem {
  const appError =
    exception instanceof AppError
      ? exception
      : (fromLibvirtError(exception) ?? fromRedisError(exception));
  if (appError) {
    const { status, title } = describeCode(appError.code);
    return {
      status,
      code: appError.code,
      title,
      // Messages quote what the client gave (a URI, XML) and what libvirt said: no secret of either.
      detail: redactText(appError.message),
      headers: headersFor(appError.code, appError.retryAfterSeconds),
      fields: appError.fields.map((f) => ({ ...f, message: redactText(f.message) })),
      ...(appError.oldestEventId !== undefined ? { oldestEventId: appError.oldestEventId } : {}),
      logAsError: appError.code === ErrorCode.INTERNAL,
    };
  }
  const http = httpStatusAndMessage(exception);
  if (http && http.status < 500) {
    const code = codeForHttpStatus(http.status);
    return {
      status: http.status,
      code,
      title: describeCode(code).title,
      detail: redactText(http.message),
      headers: headersFor(code, undefined),
      fields: [],
      logAsError: false,
    };
  }
  return {
    status: 500,
    code: ErrorCode.INTERNAL,
    title: describeCode(ErrorCode.INTERNAL).title,
    detail: 'The gateway failed unexpectedly; report the requestId to its operators.',
    headers: {},
    fields: [],
    logAsError: true,
  };
}

function headersFor(
  code: ErrorCode,
  retryAfterSeconds: number | undefined,
): Record<string, string> {
  if (code === ErrorCode.UNAUTHENTICATED) return { 'www-authenticate': 'Bearer realm="virtgate"' };
  if (code === ErrorCode.HOST_UNREACHABLE || code === ErrorCode.UNAVAILABLE) {
    return { 'retry-after': String(retryAfterSeconds ?? HOST_RETRY_AFTER_SECONDS) };
  }
  if (retryAfterSeconds !== undefined) return { 'retry-after': String(retryAfterSeconds) };
  return {};
}

/** Status and message of a Nest HttpException or a Fastify error (FST_ERR_* with statusCode). */
function httpStatusAndMessage(exception: unknown): { status: number; message: string } | null {
  if (exception instanceof HttpException) {
    const response = exception.getResponse();
    let message = exception.message;
    if (typeof response === 'object' && response !== null && 'message' in response) {
      const m = (response as { message: unknown }).message;
      if (Array.isArray(m)) message = m.join('; ');
      else if (typeof m === 'string') message = m;
    }
    return { status: exception.getStatus(), message };
  }
  if (isFastifyError(exception)) {
    return { status: exception.statusCode, message: exception.message };
  }
  return null;
}

function isFastifyError(err: unknown): err is Error & { code: string; statusCode: number } {
  const { code, statusCode } = (err ?? {}) as { code?: unknown; statusCode?: unknown };
  return (
    err instanceof Error &&
    typeof code === 'string' &&
    code.startsWith('FST_') &&
    typeof statusCode === 'number'
  );
}

function assertNever(value: never): never {
  throw new Error(`unhandled error code: ${String(value)}`);
}
