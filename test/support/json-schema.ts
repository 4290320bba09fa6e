/**
 * A small JSON Schema validator for the keywords the gateway's schemas use
 * (src/events/event-schema.ts's JsonSchema): enough to check real events
 * against the declared schema. A keyword it does not know is an error, so a
 * schema that grows past it fails loudly instead of passing unchecked.
 */
import {
  eventTypeSchema,
  GATEWAY_EVENT_SCHEMA,
  type JsonSchema,
  type JsonType,
} from '#src/events/event-schema.js';
import { EVENT_TYPES } from '#src/events/event-types.js';

const KNOWN = new Set([
  '$ref',
  'description',
  'type',
  'const',
  'enum',
  'format',
  'pattern',
  'minimum',
  'maximum',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'oneOf',
  'allOf',
]);

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a `$ref` names (`#/components/schemas/X` → the schema X). */
export type SchemaResolver = (ref: string) => JsonSchema | undefined;

/** Every way `value` fails `schema`, each as `<path>: <why>` (empty: it conforms). */
export function schemaErrors(
  schema: JsonSchema,
  value: unknown,
  resolve: SchemaResolver = () => undefined,
  path = '$',
): string[] {
  const errors: string[] = [];
  for (const key of Object.keys(schema)) {
    if (!KNOWN.has(key)) throw new Error(`${path}: the validator does not know '${key}'`);
  }
  if (schema.$ref !== undefined) {
    const target = resolve(schema.$ref);
    if (target === undefined) throw new Error(`${path}: cannot resolve ${schema.$ref}`);
    errors.push(...schemaErrors(target, value, resolve, path));
  }
  if (schema.type !== undefined) {
    const types: readonly JsonType[] =
      typeof schema.type === 'string' ? [schema.type] : schema.type;
    if (!types.some((t) => hasType(value, t))) {
      errors.push(`${path}: ${show(value)} is not ${types.join(' or ')}`);
      return errors;
    }
  }
  if ('const' in schema && value !== schema.const) {
    errors.push(`${path}: ${show(value)} is not ${JSON.stringify(schema.const)}`);
  }
  if (schema.enum !== undefined && !schema.enum.some((v) => v === value)) {
    errors.push(`${path}: ${show(value)} is none of ${JSON.stringify(schema.enum)}`);
  }
  if (typeof value === 'string') {
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      errors.push(`${path}: '${value}' does not match ${schema.pattern}`);
    }
    if (schema.format === 'date-time' && !(DATE_TIME.test(value) && !isNaN(Date.parse(value)))) {
      errors.push(`${path}: '${value}' is no date-time`);
    }
    if (schema.format === 'uuid' && !UUID.test(value))
      errors.push(`${path}: '${value}' is no UUID`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) {
      errors.push(`${path}: ${value} < ${schema.minimum}`);
    }
    if (schema.maximum !== undefined && value > schema.maximum) {
      errors.push(`${path}: ${value} > ${schema.maximum}`);
    }
  }
  if (isObject(value)) {
    for (const key of schema.required ?? []) {
      if (!(key in value)) errors.push(`${path}: '${key}' is missing`);
    }
    for (const [key, v] of Object.entries(value)) {
      const declared = schema.properties?.[key];
      if (declared !== undefined) {
        errors.push(...schemaErrors(declared, v, resolve, `${path}.${key}`));
      } else if (schema.additionalProperties === false) {
        errors.push(`${path}: '${key}' is not allowed`);
      } else if (typeof schema.additionalProperties === 'object') {
        errors.push(...schemaErrors(schema.additionalProperties, v, resolve, `${path}.${key}`));
      }
    }
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items;
    value.forEach((v, i) => errors.push(...schemaErrors(items, v, resolve, `${path}[${i}]`)));
  }
  for (const part of schema.allOf ?? []) errors.push(...schemaErrors(part, value, resolve, path));
  if (schema.oneOf !== undefined) {
    const results = schema.oneOf.map((s) => schemaErrors(s, value, resolve, path));
    const passed = results.filter((r) => r.length === 0).length;
    if (passed !== 1) {
      errors.push(
        `${path}: matches ${passed} of oneOf's ${results.length} (${results.flat().join('; ')})`,
      );
    }
  }
  return errors;
}

function hasType(value: unknown, type: JsonType): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'integer':
      return Number.isInteger(value);
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isObject(value);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/**
 * Every way `event` fails the event schema: GATEWAY_EVENT_SCHEMA and what
 * its type adds (eventTypeSchema), as openapi/asyncapi.yaml describes it.
 */
export function eventSchemaErrors(event: unknown): string[] {
  const errors = schemaErrors(GATEWAY_EVENT_SCHEMA, event);
  const type = (event as { type?: unknown } | null)?.type;
  const declaration = EVENT_TYPES.find((d) => d.type === type);
  if (declaration !== undefined) errors.push(...schemaErrors(eventTypeSchema(declaration), event));
  return errors;
}
