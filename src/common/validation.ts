import { ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { invalidFields, type FieldError } from './errors/app-error.js';
import { withoutNulls } from './without-nulls.js';

/**
 * The constraints that say a value is not of the kind the field takes, most
 * telling first. When one of them fails, the field's other constraints
 * (ranges, lengths, patterns) were checked on a value they do not apply to:
 * `limit=abc` is not an integer, and neither below 1 nor above 500.
 */
const KIND_CONSTRAINTS = [
  'whitelistValidation',
  'isDefined',
  'isNotEmpty',
  'isInt',
  'isNumber',
  'isBoolean',
  'isString',
  'isArray',
  'isObject',
  'nestedValidation',
  'isEnum',
  'isIn',
  'isUUID',
  'isISO8601',
  'isDateString',
  'isUrl',
];

/** One message for a field: why its value is of the wrong kind if it is, else every failed constraint. */
function messageOf(constraints: Record<string, string>): string | undefined {
  const kind = KIND_CONSTRAINTS.find((c) => constraints[c] !== undefined);
  if (kind !== undefined) return constraints[kind];
  const all = Object.values(constraints);
  return all.length > 0 ? all.join('; ') : undefined;
}

/** Flattens class-validator's nested errors into `field: message` pairs, one per field. */
function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    const message = messageOf(e.constraints ?? {});
    const own = message === undefined ? [] : [{ field, message }];
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
