/**
 * Request bodies as a generated client reads them.
 *
 * openapi-typescript (7.x, with its default `defaultNonNullable: true`) types a
 * property that has a `default` as required, except in a schema it meets under
 * a request body or a parameter: there a default is what the server fills in,
 * so the property stays optional. A request DTO that @nestjs/swagger puts in
 * components.schemas would make `paused`, `pivot`, `metadata`… required in every
 * generated client, though the server never needs them.
 *
 * So a schema only request bodies use is written into each request body that
 * uses it (with its name as `title`, its `default`s kept for the documentation
 * UIs, and `additionalProperties: false`: the server refuses unknown fields), and
 * leaves components.schemas. Two kinds stay components: those an answer, a
 * parameter or a header uses too (they are shared), and those a discriminator
 * maps to (a discriminator names components). A component that stays and that
 * request bodies use says its defaults in its description instead of `default`,
 * so that no client takes them for required fields.
 *
 * An operation's `x-refused-fields` (ApiRefusedFields) become `false`
 * properties of its body's schema: fields it refuses though a sibling takes them.
 */
import type { OpenAPIObject } from '@nestjs/swagger';
import { REFUSED_FIELDS_EXTENSION } from '../common/decorators/api-refused-fields.decorator.js';

type Json = Record<string, unknown>;

const SCHEMA_REF = '#/components/schemas/';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The component a `$ref` names, or undefined for any other reference. */
function refName(node: Json): string | undefined {
  const ref = node.$ref;
  return typeof ref === 'string' && ref.startsWith(SCHEMA_REF)
    ? ref.slice(SCHEMA_REF.length)
    : undefined;
}

/** Every component name referred to anywhere under `node`. */
function refsUnder(node: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(node)) {
    for (const item of node) refsUnder(item, into);
  } else if (isObject(node)) {
    const name = refName(node);
    if (name !== undefined) into.add(name);
    // A discriminator's mapping names components too.
    const mapping = isObject(node.discriminator) ? node.discriminator.mapping : undefined;
    if (isObject(mapping)) {
      for (const target of Object.values(mapping)) {
        if (typeof target === 'string' && target.startsWith(SCHEMA_REF)) {
          into.add(target.slice(SCHEMA_REF.length));
        }
      }
    }
    for (const value of Object.values(node)) refsUnder(value, into);
  }
  return into;
}

/** `names` and every component they refer to, transitively. */
function closure(names: Iterable<string>, schemas: Json): Set<string> {
  const seen = new Set<string>();
  const todo = [...names];
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    todo.push(...refsUnder(schemas[name]));
  }
  return seen;
}

interface Operation {
  requestBody?: unknown;
  [REFUSED_FIELDS_EXTENSION]?: unknown;
}

function operations(document: OpenAPIObject): Operation[] {
  const ops: Operation[] = [];
  for (const item of Object.values(document.paths)) {
    for (const method of METHODS) {
      const op = (item as Record<string, unknown>)[method];
      if (isObject(op)) ops.push(op);
    }
  }
  return ops;
}

/** The schema objects of a request body's media types. */
function bodyMedia(op: Operation): Json[] {
  const body = op.requestBody;
  if (!isObject(body) || !isObject(body.content)) return [];
  return Object.values(body.content).filter(isObject);
}

/** A component's title: its name without Nest's `Dto` suffix. */
function titleOf(name: string): string {
  return name.replace(/Dto$/, '');
}

/** A JSON value as a description shows it. */
function shown(value: unknown): string {
  return typeof value === 'string' ? `\`${value}\`` : `\`${JSON.stringify(value)}\``;
}

/** Moves each property's `default` into its description. */
function defaultsToDescriptions(schema: Json): void {
  if (!isObject(schema.properties)) return;
  for (const property of Object.values(schema.properties)) {
    if (!isObject(property) || !('default' in property)) continue;
    const said = `Default: ${shown(property.default)}.`;
    const description = typeof property.description === 'string' ? property.description : '';
    property.description = description === '' ? said : `${description.replace(/\.?$/, '.')} ${said}`;
    delete property.default;
  }
}

export function withPreciseRequestBodies(document: OpenAPIObject): OpenAPIObject {
  const schemas = (document.components?.schemas ?? {}) as Json;
  const ops = operations(document);

  // What answers, parameters and headers use (paths without their request bodies).
  const outside = new Set<string>();
  for (const item of Object.values(document.paths)) {
    for (const [key, value] of Object.entries(item as Json)) {
      if (!(METHODS as readonly string[]).includes(key) || !isObject(value)) {
        refsUnder(value, outside);
        continue;
      }
      const { requestBody: _body, ...rest } = value;
      refsUnder(rest, outside);
    }
  }
  const { schemas: _schemas, ...otherComponents } = (document.components ?? {}) as Json;
  refsUnder(otherComponents, outside);
  const shared = closure(outside, schemas);

  // What discriminators map to: those stay components.
  const discriminated = new Set<string>();
  const collectMappings = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(collectMappings);
    if (!isObject(node)) return;
    const mapping = isObject(node.discriminator) ? node.discriminator.mapping : undefined;
    if (isObject(mapping)) {
      for (const target of Object.values(mapping)) {
        if (typeof target === 'string' && target.startsWith(SCHEMA_REF)) {
          discriminated.add(target.slice(SCHEMA_REF.length));
        }
      }
    }
    Object.values(node).forEach(collectMappings);
  };
  for (const op of ops) for (const media of bodyMedia(op)) collectMappings(media.schema);
  for (const name of closure(discriminated, schemas)) collectMappings(schemas[name]);

  const keeps = (name: string): boolean =>
    shared.has(name) || discriminated.has(name) || !isObject(schemas[name]);

  /** A copy of `node` with every request-only component written in. */
  const inline = (node: unknown, trail: readonly string[]): unknown => {
    if (Array.isArray(node)) return node.map((item) => inline(item, trail));
    if (!isObject(node)) return node;
    const name = refName(node);
    if (name !== undefined && !keeps(name)) {
      if (trail.includes(name)) throw new Error(`request schema ${name} refers to itself`);
      const { $ref: _ref, ...siblings } = node;
      const own = inline(schemas[name], [...trail, name]) as Json;
      const object = own.type === 'object' || isObject(own.properties);
      return {
        title: titleOf(name),
        ...own,
        ...(object && own.additionalProperties === undefined
          ? { additionalProperties: false }
          : {}),
        ...siblings,
      };
    }
    // Nest wraps a described reference in a one-member allOf: written in, it needs no allOf.
    const allOf = node.allOf;
    if (Array.isArray(allOf) && allOf.length === 1 && isObject(allOf[0])) {
      const only = refName(allOf[0]);
      if (only !== undefined && !keeps(only)) {
        const { allOf: _allOf, ...siblings } = node;
        return { ...(inline(allOf[0], trail) as Json), ...siblings };
      }
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, inline(v, trail)]));
  };

  const usedByBodies = new Set<string>();
  for (const op of ops) {
    const refused = op[REFUSED_FIELDS_EXTENSION];
    delete op[REFUSED_FIELDS_EXTENSION];
    for (const media of bodyMedia(op)) {
      if (media.schema === undefined) continue;
      media.schema = inline(media.schema, []);
      if (Array.isArray(refused) && isObject(media.schema)) {
        const properties = isObject(media.schema.properties) ? media.schema.properties : {};
        for (const field of refused) {
          if (typeof field === 'string' && !(field in properties)) properties[field] = false;
        }
        media.schema.properties = properties;
        const refusedHere = `Refused here (other operations take them): ${refused.map((f) => `\`${String(f)}\``).join(', ')}.`;
        const description = media.schema.description;
        media.schema.description =
          typeof description === 'string' ? `${description} ${refusedHere}` : refusedHere;
      }
      refsUnder(media.schema, usedByBodies);
    }
  }

  // The components request bodies still refer to (discriminated, or shared with answers).
  for (const name of closure(usedByBodies, schemas)) {
    const schema = schemas[name];
    if (isObject(schema) && !shared.has(name)) {
      defaultsToDescriptions(schema);
      if (schema.type === 'object' && schema.additionalProperties === undefined) {
        schema.additionalProperties = false;
      }
    }
  }

  // Drop what nothing refers to any more (the components written into the bodies).
  const referenced = closure(
    [...refsUnder(document.paths), ...refsUnder(otherComponents)],
    schemas,
  );
  for (const name of Object.keys(schemas)) {
    if (!referenced.has(name) && !shared.has(name)) delete schemas[name];
  }
  return document;
}
