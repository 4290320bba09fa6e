import { ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
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
/** Removes null members of objects, deeply: in a request body, null means "not given". */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

/**
 * The global pipe: a body's null fields count as absent (`{"xml": null}` is a
 * request without xml, as GraphQL's null arguments are), then class-validator.
 */
class GatewayValidationPipe extends ValidationPipe {
  override transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    return super.transform(metadata.type === 'body' ? withoutNulls(value) : value, metadata);
  }
}

export function createValidationPipe(): ValidationPipe {
  return new GatewayValidationPipe({
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
