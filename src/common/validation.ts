import { ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { invalidFields, type FieldError } from './errors/app-error.js';
import { withoutNulls } from './without-nulls.js';

/** Flattens class-validator's nested errors into `field: message` pairs. */
function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

/**
 * The global pipe. Input is validated once, at the edge, from the DTO
 * declarations: unknown fields are refused, values are converted to their
 * declared types, and every failure becomes INVALID_ARGUMENT (400) naming
 * each field and why. A body's null fields count as absent (`{"xml": null}`
 * is a request without xml, as GraphQL's null arguments are).
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
    exceptionFactory: (errors) => invalidFields(flatten(errors)),
  });
}
