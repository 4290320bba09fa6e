import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { ProblemDetailsDto } from '../dto/problem-details.dto.js';
import { ErrorCode } from '../errors/app-error.js';
import { describeCode } from '../errors/problem-details.js';

const DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'Invalid argument',
  401: 'Missing or invalid bearer token (with a WWW-Authenticate: Bearer header)',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict with the current state',
  422: 'The Idempotency-Key was used with another request',
  500: 'Unexpected error; the body carries only the requestId',
  503: 'A libvirt host or the gateway store is unreachable (with a Retry-After header)',
};

/** Documents error responses of an operation (or of every operation of a controller) as problem+json. */
export function ApiProblemResponses(...statuses: number[]): ClassDecorator & MethodDecorator {
  return applyDecorators(
    ApiExtraModels(ProblemDetailsDto),
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: `${DESCRIPTIONS[status] ?? 'Error'} (code ${codesFor(status)})`,
        content: {
          'application/problem+json': { schema: { $ref: getSchemaPath(ProblemDetailsDto) } },
        },
      }),
    ),
  );
}

/** Every error code answered with `status`: "NOT_FOUND", "ALREADY_EXISTS, INVALID_STATE or CONFLICT". */
function codesFor(status: number): string {
  const codes = Object.values(ErrorCode).filter((c) => describeCode(c).status === status);
  return codes.length > 1
    ? `${codes.slice(0, -1).join(', ')} or ${codes.at(-1)}`
    : (codes[0] ?? 'INTERNAL');
}
