import { applyDecorators } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiResponse,
  getSchemaPath,
  type ApiResponseOptions,
  type HeadersObject,
} from '@nestjs/swagger';
import { ProblemDetailsDto } from '../dto/problem-details.dto.js';
import { ErrorCode } from '../errors/app-error.js';
import { describeCode, problemType, type ProblemDetails } from '../errors/problem-details.js';

const DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'Invalid argument',
  401: 'Missing or invalid bearer token (with a WWW-Authenticate: Bearer header)',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict with the current state',
  410: 'Gone',
  413: 'The body is larger than BODY_LIMIT_BYTES, or nests deeper than JSON_MAX_DEPTH',
  415: 'The body is not application/json',
  422: 'The Idempotency-Key was used with another request',
  429: 'Too many requests, or too many jobs of this caller queued (with a Retry-After header)',
  500: 'Unexpected error; the body carries only the requestId',
  503: 'A libvirt host or the gateway store is unreachable (with a Retry-After header)',
};

/** The component headers (openapi-document.ts RESPONSE_HEADERS) that problem answers send. */
const HEADERS: Readonly<Record<number, HeadersObject>> = {
  401: { 'WWW-Authenticate': { $ref: '#/components/headers/WWW-Authenticate' } },
  429: {
    'Retry-After': { $ref: '#/components/headers/Retry-After' },
    'RateLimit-Limit': { $ref: '#/components/headers/RateLimit-Limit' },
    'RateLimit-Remaining': { $ref: '#/components/headers/RateLimit-Remaining' },
    'RateLimit-Reset': { $ref: '#/components/headers/RateLimit-Reset' },
  },
  503: { 'Retry-After': { $ref: '#/components/headers/Retry-After' } },
};

const REQUEST_ID = '0f9c2d4e-8b1a-4c3f-9e7d-5a6b7c8d9e0f';

/** A problem document as the gateway sends it, for `code` (its status and title decided by describeCode). */
function problem(
  code: ErrorCode,
  instance: string,
  detail: string,
  extra: Partial<ProblemDetails> = {},
): ProblemDetails {
  const { status, title } = describeCode(code);
  return {
    type: problemType(code),
    title,
    status,
    detail,
    instance,
    code,
    requestId: REQUEST_ID,
    ...extra,
  };
}

/** One realistic answer per status, each of the code the status usually carries. */
export const PROBLEM_EXAMPLES: Readonly<Record<number, ProblemDetails>> = {
  400: problem(
    ErrorCode.INVALID_ARGUMENT,
    '/v1/hosts/local/domains',
    'limit must be an integer number',
    { errors: [{ field: 'limit', message: 'limit must be an integer number' }] },
  ),
  401: problem(ErrorCode.UNAUTHENTICATED, '/v1/me', 'the bearer token is not valid'),
  403: problem(
    ErrorCode.FORBIDDEN,
    '/v1/hosts',
    'this operation needs the admin role or above; this token has the operator role',
  ),
  404: problem(
    ErrorCode.NOT_FOUND,
    '/v1/hosts/local/domains/vm1',
    "libvirt: Domain not found: no domain with matching name 'vm1' (VIR_ERR_NO_DOMAIN)",
  ),
  409: problem(
    ErrorCode.INVALID_STATE,
    '/v1/hosts/local/domains/vm1/actions/start',
    'libvirt: Requested operation is not valid: domain is already running (VIR_ERR_OPERATION_INVALID)',
  ),
  410: problem(
    ErrorCode.CURSOR_EXPIRED,
    '/v1/events',
    'events after 1796204000000-0 are no longer retained; the oldest retained is 1796204112225-0: list again, then resume from there',
    { oldestEventId: '1796204112225-0' },
  ),
  413: problem(
    ErrorCode.PAYLOAD_TOO_LARGE,
    '/v1/hosts',
    'the JSON body nests arrays and objects deeper than 64 levels',
  ),
  // UNSUPPORTED is 501 for an operation the gateway does not do; a body's media type it does not take is 415.
  415: problem(ErrorCode.UNSUPPORTED, '/v1/hosts', 'Unsupported Media Type', { status: 415 }),
  422: problem(
    ErrorCode.IDEMPOTENCY_MISMATCH,
    '/v1/hosts/local/domains',
    'this Idempotency-Key was used with another request; use a new key for a new request',
  ),
  429: problem(
    ErrorCode.RATE_LIMITED,
    '/v1/hosts/local/domains',
    'too many requests with this token: retry after 12 s',
  ),
  500: problem(
    ErrorCode.INTERNAL,
    '/v1/hosts/local/domains',
    'The gateway failed unexpectedly; report the requestId to its operators.',
  ),
  503: problem(
    ErrorCode.HOST_UNREACHABLE,
    '/v1/hosts/local/domains',
    "host 'local' is unreachable: connect ECONNREFUSED /run/libvirt/libvirt-sock",
  ),
};

/**
 * The 404 of each tag's operations (openapi-document.ts puts each under
 * components.examples and shows it on the 404 of the operations of its tag;
 * others show PROBLEM_EXAMPLES[404]).
 */
export const NOT_FOUND_EXAMPLES: Readonly<Record<string, ProblemDetails>> = {
  hosts: problem(ErrorCode.NOT_FOUND, '/v1/hosts/lab2', "no host named 'lab2' is registered"),
  domains: problem(
    ErrorCode.NOT_FOUND,
    '/v1/hosts/local/domains/vm1',
    "no domain 'vm1' on this host",
  ),
  storage: problem(
    ErrorCode.NOT_FOUND,
    '/v1/hosts/local/pools/images',
    "no storage pool named 'images' on host 'local'",
  ),
  'block-jobs': problem(
    ErrorCode.NOT_FOUND,
    '/v1/hosts/local/domains/vm1/disks/vdb/block-jobs',
    "domain 'vm1' has no disk 'vdb' (it has vda)",
  ),
  jobs: problem(
    ErrorCode.NOT_FOUND,
    '/v1/jobs/0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11',
    "no job '0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11'",
  ),
  auth: problem(
    ErrorCode.NOT_FOUND,
    '/v1/tokens/tok_3kQ9xZ1bP0aR',
    'no token with id "tok_3kQ9xZ1bP0aR"',
  ),
  webhooks: problem(
    ErrorCode.NOT_FOUND,
    '/v1/webhooks/wh_3kQ9xZ1bP0aR',
    'no webhook with id "wh_3kQ9xZ1bP0aR"',
  ),
};

/** The name of a status's example under components.examples (openapi-document.ts puts them there). */
export function problemExampleName(status: number): string {
  return `Problem${status}`;
}

/**
 * The documentation of one problem+json answer: the ProblemDetails schema,
 * the example of its status and the headers sent with it.
 */
export function problemResponse(status: number, description?: string): ApiResponseOptions {
  const example = PROBLEM_EXAMPLES[status];
  return {
    status,
    description: description ?? `${DESCRIPTIONS[status] ?? 'Error'} (code ${codesFor(status)})`,
    ...(HEADERS[status] ? { headers: HEADERS[status] } : {}),
    content: {
      'application/problem+json': {
        schema: { $ref: getSchemaPath(ProblemDetailsDto) },
        ...(example
          ? {
              examples: {
                [example.code]: { $ref: `#/components/examples/${problemExampleName(status)}` },
              },
            }
          : {}),
      },
    },
  };
}

/** Documents error responses of an operation (or of every operation of a controller) as problem+json. */
export function ApiProblemResponses(...statuses: number[]): ClassDecorator & MethodDecorator {
  return applyDecorators(
    ApiExtraModels(ProblemDetailsDto),
    ...statuses.map((status) => ApiResponse(problemResponse(status))),
  );
}

/**
 * The problem answers of every operation that takes a request body, before
 * its handler runs (openapi-document.ts adds them): too large, not JSON.
 */
export const BODY_PROBLEM_STATUSES = [413, 415] as const;

/** Every error code answered with `status`: "NOT_FOUND", "ALREADY_EXISTS, INVALID_STATE or CONFLICT". */
function codesFor(status: number): string {
  const codes = Object.values(ErrorCode).filter(
    (c) => describeCode(c).status === status || PROBLEM_EXAMPLES[status]?.code === c,
  );
  return codes.length > 1
    ? `${codes.slice(0, -1).join(', ')} or ${codes.at(-1)}`
    : (codes[0] ?? 'INTERNAL');
}
