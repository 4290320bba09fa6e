import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import type { GraphQLSchema } from 'graphql';
import { AppModule } from './app.module.js';
import { loadConfig } from './config/config.js';
import { buildGraphqlSchema } from './graphql/graphql-schema-file.js';
import { buildOpenApiDocument } from './openapi/openapi-document.js';

/**
 * The gateway's public contract, generated from the whole application: the
 * OpenAPI document of its controllers and the GraphQL schema of its
 * resolvers (openapi/, by `npm run openapi`; tests fail when the committed
 * files differ). The module graph is built in preview mode (no provider
 * instantiated), so no Redis or libvirt is needed and the result does not
 * depend on the environment. Part of the composition root: it names every
 * feature through AppModule.
 */
async function withPreview<T>(
  fn: (app: Awaited<ReturnType<typeof preview>>) => Promise<T> | T,
): Promise<T> {
  const app = await preview();
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

function preview() {
  return NestFactory.create(AppModule.forRoot(loadConfig({})), new FastifyAdapter(), {
    preview: true,
    logger: false,
    abortOnError: false,
  });
}

export function generateOpenApiDocument(): Promise<OpenAPIObject> {
  return withPreview((app) => buildOpenApiDocument(app));
}

export function generateGraphqlSchema(): Promise<GraphQLSchema> {
  return withPreview((app) => buildGraphqlSchema(app));
}
