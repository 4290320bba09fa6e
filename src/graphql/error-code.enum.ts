/** The gateway's error codes (problem documents' `code`) as a GraphQL enum, for fields that carry one. */
import { registerEnumType } from '@nestjs/graphql';
import { ErrorCode } from '../common/errors/app-error.js';

export const ErrorCodeEnum = ErrorCode;
registerEnumType(ErrorCodeEnum, {
  name: 'ErrorCode',
  description:
    "The gateway's error code, as problem documents and GraphQL errors' extensions.code carry it",
});
