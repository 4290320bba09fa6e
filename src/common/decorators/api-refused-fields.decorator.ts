import { ApiExtension } from '@nestjs/swagger';

/** The operation extension withPreciseRequestBodies (src/openapi/request-schemas.ts) reads. */
export const REFUSED_FIELDS_EXTENSION = 'x-refused-fields';

/**
 * Fields a route's body refuses although a sibling route takes them (the
 * options of another action): the OpenAPI document lists them in the body's
 * schema as `false` schemas (never valid), so a generated client rejects them
 * at compile time. TypeScript alone does not: openapi-fetch infers the body's
 * type, and an inferred object is not checked for unknown properties.
 */
export function ApiRefusedFields(fields: readonly string[]): MethodDecorator {
  return ApiExtension(REFUSED_FIELDS_EXTENSION, [...fields]);
}
