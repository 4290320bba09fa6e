import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppError, ErrorCode, type FieldError } from './errors/app-error.js';

/** Flattens class-validator's nested errors into `field: message` pairs. */
function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

/**
 * Input is validated once, at the edge, from the DTO declarations: unknown
 * fields are refused, values are converted to their declared types, and every
 * failure becomes INVALID_ARGUMENT (400) naming each field and why.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => {
      const fields = flatten(errors);
      return new AppError(ErrorCode.INVALID_ARGUMENT, fields.map((f) => f.message).join('; '), {
        fields,
      });
    },
  });
}
