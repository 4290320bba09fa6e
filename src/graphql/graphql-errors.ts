/**
 * The one translation of errors into GraphQL errors: the
 * same mapping as REST (httpProblemFor), so `extensions.code` is the REST
 * `code`, plus `extensions.requestId`. Unexpected errors are masked as
 * INTERNAL and logged once, with the request id.
 */
import type { FastifyBaseLogger } from 'fastify';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ErrorCode, type FieldError } from '../common/errors/app-error.js';
import {
  codeForHttpStatus,
  describeCode,
  httpProblemFor,
} from '../common/errors/problem-details.js';

/** Where an error is reported: the request's id and its logger. */
export interface ErrorRequest {
  readonly id: string;
  readonly log: FastifyBaseLogger;
}

export interface GraphqlErrorExtensions {
  code: ErrorCode;
  requestId: string;
  /** For INVALID_ARGUMENT from input validation: which argument fields are wrong, and why. */
  fields?: FieldError[];
  /** For HOST_UNREACHABLE, UNAVAILABLE and TIMEOUT: when a retry makes sense (REST's Retry-After). */
  retryAfterSeconds?: number;
  /** For an operation over a limit: which one (depth, cost, aliases, directives, tokens…), its maximum and the operation's value. */
  limit?: { name: string; maximum: number; actual: number };
}

/** A GraphQL error as answered, and the HTTP status it calls for when it fails the whole request. */
export interface FormattedGraphqlError {
  error: GraphQLFormattedError & { extensions: GraphqlErrorExtensions };
  status: number;
}

/**
 * Formats one error of a GraphQL response. Errors born as GraphQL errors
 * (syntax, validation, variables, limits) are the caller's: INVALID_ARGUMENT,
 * or the code the gateway gave them (PAYLOAD_TOO_LARGE for a document over
 * a size limit).
 * Errors thrown by resolvers and the layers below them go through the REST
 * mapping.
 */
export function formatGraphqlError(
  error: GraphQLError,
  request: ErrorRequest | undefined,
): FormattedGraphqlError {
  const requestId = request?.id ?? 'unknown';
  const located = {
    ...(error.locations ? { locations: error.locations } : {}),
    ...(error.path ? { path: error.path } : {}),
  };
  const cause = rootCause(error);
  if (cause === undefined) {
    // The gateway's own GraphQL errors (limits) may name another code.
    const given = error.extensions.code;
    const code = isErrorCode(given) ? given : ErrorCode.INVALID_ARGUMENT;
    const limit = error.extensions.limit as GraphqlErrorExtensions['limit'];
    return {
      error: {
        message: error.message,
        ...located,
        extensions: { code, requestId, ...(limit ? { limit } : {}) },
      },
      status: describeCode(code).status,
    };
  }
  const driverError = driverErrorProblem(cause);
  const problem = driverError ?? httpProblemFor(cause);
  if (problem.logAsError) {
    request?.log.error(
      { err: cause, path: error.path?.join('.') },
      'internal error in a GraphQL request',
    );
  }
  const retryAfter = Number(problem.headers['retry-after']);
  return {
    error: {
      message: problem.detail,
      ...located,
      extensions: {
        code: problem.code,
        requestId,
        ...(problem.fields.length > 0 ? { fields: [...problem.fields] } : {}),
        ...(problem.oldestEventId !== undefined ? { oldestEventId: problem.oldestEventId } : {}),
        ...(Number.isInteger(retryAfter) ? { retryAfterSeconds: retryAfter } : {}),
      },
    },
    status: problem.status,
  };
}

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (Object.values(ErrorCode) as string[]).includes(value);
}

/** The first error in `originalError` links that is not a GraphQLError, if any. */
function rootCause(error: GraphQLError): unknown {
  let current: unknown = error;
  for (let hops = 0; current instanceof GraphQLError && hops < 10; hops++) {
    if (current.originalError === undefined || current.originalError === null) return undefined;
    current = current.originalError;
  }
  return current;
}

/**
 * Mercurius's own request errors (MER_ERR_*: a body that is not JSON, a
 * mutation over GET) carry an HTTP status: they are the caller's when 4xx.
 */
function driverErrorProblem(err: unknown): ReturnType<typeof httpProblemFor> | null {
  const { code, statusCode } = (err ?? {}) as { code?: unknown; statusCode?: unknown };
  if (
    !(err instanceof Error) ||
    typeof code !== 'string' ||
    !code.startsWith('MER_ERR_') ||
    typeof statusCode !== 'number' ||
    statusCode < 400 ||
    statusCode >= 500
  ) {
    return null;
  }
  const mapped = codeForHttpStatus(statusCode);
  return {
    status: statusCode,
    code: mapped,
    title: describeCode(mapped).title,
    detail: err.message,
    headers: {},
    fields: [],
    logAsError: false,
  };
}
