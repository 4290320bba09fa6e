import type { INestApplicationContext } from '@nestjs/common';
import { ModulesContainer, NestFactory } from '@nestjs/core';
import {
  GraphQLSchemaBuilderModule,
  GraphQLSchemaFactory,
  RESOLVER_TYPE_METADATA,
} from '@nestjs/graphql';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';

type ResolverClass = new (...args: never[]) => unknown;

/** The committed GraphQL schema, relative to the repository root. */
export const GRAPHQL_SCHEMA_PATH = 'openapi/schema.graphql';

const HEADER =
  '# The GraphQL schema of virtgate (/graphql), generated from the resolvers and models\n' +
  '# by `npm run openapi`: do not edit. A test fails when it is stale.\n\n';

/**
 * Builds the schema the way the running gateway does (code first, the same
 * resolvers, sorted) from an application's module graph, which may be read
 * in preview mode (nothing instantiated): no Redis or libvirt is needed.
 */
export async function buildGraphqlSchema(app: INestApplicationContext): Promise<GraphQLSchema> {
  const resolvers = [...app.get(ModulesContainer).values()].flatMap((module) =>
    [...module.providers.values()]
      .map((wrapper) => wrapper.metatype)
      .filter(
        (type): type is ResolverClass =>
          typeof type === 'function' && Reflect.hasMetadata(RESOLVER_TYPE_METADATA, type),
      ),
  );
  const builder = await NestFactory.createApplicationContext(GraphQLSchemaBuilderModule, {
    logger: false,
  });
  try {
    const schema = await builder.get(GraphQLSchemaFactory).create(resolvers);
    return lexicographicSortSchema(schema);
  } finally {
    await builder.close();
  }
}

/** The schema as written to GRAPHQL_SCHEMA_PATH. */
export function serializeGraphqlSchema(schema: GraphQLSchema): string {
  return `${HEADER}${printSchema(schema)}\n`;
}
