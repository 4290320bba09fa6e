import { NestFactory, ModulesContainer } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import {
  GraphQLSchemaBuilderModule,
  GraphQLSchemaFactory,
  RESOLVER_TYPE_METADATA,
} from '@nestjs/graphql';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { AppModule } from '../app.module.js';
import { loadConfig } from '../config/config.js';

type ResolverClass = new (...args: never[]) => unknown;

/** The committed GraphQL schema, relative to the repository root. */
export const GRAPHQL_SCHEMA_PATH = 'openapi/schema.graphql';

const HEADER =
  '# The GraphQL schema of virtgate (/graphql), generated from the resolvers and models\n' +
  '# by `npm run openapi`: do not edit. A test fails when it is stale.\n\n';

/**
 * Builds the schema the way the running gateway does (code first, the same
 * resolvers, sorted), without Redis or libvirt: the application's module
 * graph is read in preview mode (nothing instantiated) for its resolvers.
 */
export async function generateGraphqlSchema(): Promise<GraphQLSchema> {
  const preview = await NestFactory.create(
    AppModule.forRoot(loadConfig({})),
    new FastifyAdapter(),
    {
      preview: true,
      logger: false,
      abortOnError: false,
    },
  );
  let resolvers: ResolverClass[];
  try {
    resolvers = [...preview.get(ModulesContainer).values()].flatMap((module) =>
      [...module.providers.values()]
        .map((wrapper) => wrapper.metatype)
        .filter(
          (type): type is ResolverClass =>
            typeof type === 'function' && Reflect.hasMetadata(RESOLVER_TYPE_METADATA, type),
        ),
    );
  } finally {
    await preview.close();
  }
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
