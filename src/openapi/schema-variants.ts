import type { Type } from '@nestjs/common';
import {
  getSchemaPath,
  type OpenAPIObject,
  type ReferenceObject,
  type SchemaObject,
} from '@nestjs/swagger';

/**
 * Schemas that are one of several variants, told apart by one property (an
 * OpenAPI `oneOf` with a `discriminator`), for objects whose other properties
 * depend on that one: a class declares the common shape as usual, and each
 * variant names the properties it types more tightly. buildOpenApiDocument
 * then replaces the class's schema by the `oneOf` of its variants, each the
 * common shape with the discriminator fixed (`const`) and its own properties,
 * so a generated client narrows on the discriminator. Declared where the
 * variants are known (each feature for its own), applied to the whole document.
 */
export interface SchemaVariant {
  /** The discriminator's value. */
  value: string;
  /** The variant's name under components.schemas. */
  name: string;
  /** What the variant is (its description). */
  description: string;
  /** Properties typed by the variant: a model class (its schema), or a schema. */
  properties: Record<string, VariantProperty>;
}

export type VariantProperty =
  | { model: Type; nullable?: boolean; description?: string }
  | { schema: SchemaObject | ReferenceObject };

interface Declaration {
  property: string;
  variants: Map<string, SchemaVariant>;
}

/** Declared variants, by the schema they split. */
export class SchemaVariants {
  private readonly declarations = new Map<string, Declaration>();

  /** Declares one variant of schema `schema`, told apart by `property`. */
  declare(schema: string, property: string, variant: SchemaVariant): void {
    let declaration = this.declarations.get(schema);
    if (!declaration) {
      declaration = { property, variants: new Map() };
      this.declarations.set(schema, declaration);
    }
    if (declaration.property !== property) {
      throw new Error(
        `schema ${schema}: variants are told apart by ${declaration.property}, not ${property}`,
      );
    }
    if (declaration.variants.has(variant.value)) {
      throw new Error(`schema ${schema}: a second variant for ${property} = ${variant.value}`);
    }
    declaration.variants.set(variant.value, variant);
  }

  /** The model classes variants refer to (the document must hold their schemas). */
  models(): Type[] {
    const models = new Set<Type>();
    for (const { variants } of this.declarations.values()) {
      for (const variant of variants.values()) {
        for (const p of Object.values(variant.properties)) if ('model' in p) models.add(p.model);
      }
    }
    return [...models];
  }

  /**
   * Replaces each declared schema by the `oneOf` of its variants. A value of the
   * discriminator's enum with no variant, or a variant outside it, is an error:
   * the union must say exactly what the server sends.
   */
  apply(document: OpenAPIObject): void {
    const schemas = document.components?.schemas ?? {};
    for (const [name, { property, variants }] of this.declarations) {
      const common = schemas[name] as SchemaObject | undefined;
      if (!common?.properties) throw new Error(`schema variants: no schema ${name} to split`);
      schemas[name] = split(schemas, name, common.properties, common, property, variants);
    }
  }
}

/** The variants the application declares (buildOpenApiDocument applies them). */
export const schemaVariants = new SchemaVariants();

function split(
  schemas: Record<string, SchemaObject | ReferenceObject>,
  name: string,
  commonProperties: Record<string, SchemaObject | ReferenceObject>,
  common: SchemaObject,
  property: string,
  variants: Map<string, SchemaVariant>,
): SchemaObject {
  const discriminator = commonProperties[property] as SchemaObject | undefined;
  const values = (discriminator?.enum ?? []) as string[];
  const missing = values.filter((v) => !variants.has(v));
  const extra = [...variants.keys()].filter((v) => !values.includes(v));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(
      `schema ${name}: the variants of ${property} differ from its values (without a variant: ${missing.join(', ') || 'none'}; not a value: ${extra.join(', ') || 'none'})`,
    );
  }
  const mapping: Record<string, string> = {};
  // In the order of the discriminator's values, whatever the order of the declarations.
  for (const [value, variant] of [...variants].sort(
    ([a], [b]) => values.indexOf(a) - values.indexOf(b),
  )) {
    const unknown = Object.keys(variant.properties).filter((k) => !(k in commonProperties));
    if (unknown.length > 0) {
      throw new Error(`schema ${variant.name}: ${unknown.join(', ')} not properties of ${name}`);
    }
    const properties: Record<string, SchemaObject | ReferenceObject> = {};
    for (const [key, schema] of Object.entries(commonProperties)) {
      const own = variant.properties[key];
      properties[key] =
        key === property
          ? { type: 'string', enum: [value], description: discriminator?.description }
          : own
            ? mergeDescription(propertySchema(own), schema)
            : schema;
    }
    schemas[variant.name] = {
      type: 'object',
      description: variant.description,
      properties,
      ...(common.required ? { required: common.required } : {}),
    };
    mapping[value] = `#/components/schemas/${variant.name}`;
  }
  return {
    ...(common.description ? { description: common.description } : {}),
    oneOf: values.map((v) => ({ $ref: `#/components/schemas/${variants.get(v)?.name}` })),
    discriminator: { propertyName: property, mapping },
  };
}

function propertySchema(p: VariantProperty): SchemaObject | ReferenceObject {
  if ('schema' in p) return p.schema;
  const ref: ReferenceObject = { $ref: getSchemaPath(p.model) };
  if (!p.nullable && p.description === undefined) return ref;
  return {
    ...(p.description === undefined ? {} : { description: p.description }),
    ...(p.nullable ? { anyOf: [ref, { type: 'null' }] } : { allOf: [ref] }),
  };
}

/** The variant's schema, described as the common property is unless it says more. */
function mergeDescription(
  schema: SchemaObject | ReferenceObject,
  common: SchemaObject | ReferenceObject,
): SchemaObject | ReferenceObject {
  const description = 'description' in common ? common.description : undefined;
  if (description === undefined || '$ref' in schema || schema.description !== undefined) {
    return schema;
  }
  return { ...schema, description };
}

type Schema = SchemaObject | ReferenceObject;

/** Schema helpers for variant properties written as schemas. */
export const S = {
  string: (description?: string): SchemaObject => ({
    type: 'string',
    ...(description === undefined ? {} : { description }),
  }),
  integer: (description?: string): SchemaObject => ({
    type: 'integer',
    ...(description === undefined ? {} : { description }),
  }),
  boolean: (description?: string): SchemaObject => ({
    type: 'boolean',
    ...(description === undefined ? {} : { description }),
  }),
  enum: (values: readonly (string | boolean)[], description?: string): SchemaObject => ({
    type: typeof values[0] === 'boolean' ? 'boolean' : 'string',
    enum: [...values],
    ...(description === undefined ? {} : { description }),
  }),
  /** `schema`, or null. */
  nullable: (schema: Schema): SchemaObject => ({ anyOf: [schema, { type: 'null' }] }),
  array: (items: Schema, description?: string): SchemaObject => ({
    type: 'array',
    items,
    ...(description === undefined ? {} : { description }),
  }),
  /** An object of `properties`, all required but those in `optional`. */
  object: (
    properties: Record<string, Schema>,
    options: { optional?: readonly string[]; description?: string } = {},
  ): SchemaObject => ({
    type: 'object',
    ...(options.description === undefined ? {} : { description: options.description }),
    properties,
    required: Object.keys(properties).filter((k) => !options.optional?.includes(k)),
  }),
};
