import { Module, type DynamicModule } from '@nestjs/common';
import { GraphQLModule } from '@nestjs/graphql';
import { MercuriusDriver, type MercuriusDriverConfig } from '@nestjs/mercurius';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GraphQLError } from 'graphql';
import type { MercuriusContext } from 'mercurius';
import type { AppConfig } from '../config/config.js';
import { createGraphqlContext } from './graphql-context.js';
import { formatGraphqlError } from './graphql-errors.js';
import { checkQueryLimits, type QueryLimits } from './query-limits.js';

export const GRAPHQL_PATH = '/graphql';

/**
 * The schema is built from the code (the resolvers and the models' @Field
 * decorators), sorted so that openapi/schema.graphql is stable. No GraphiQL
 * or landing page: the gateway serves no assets from a CDN.
 */
export const SCHEMA_BUILD_OPTIONS = { autoSchemaFile: true, sortSchema: true } as const;

/**
 * GraphQL at /graphql on the same Fastify server as REST, through Mercurius
 * (Fastify's own GraphQL server, which also serves graphql-ws subscriptions).
 * The context holds the request (for the bearer guard) and per-request
 * DataLoaders; errors carry the REST codes (graphql-errors.ts); operations
 * over the depth or cost limit are refused before they run (query-limits.ts).
 */
@Module({})
export class GraphqlApiModule {
  static forRoot(config: AppConfig): DynamicModule {
    const limits: QueryLimits = {
      maxDepth: config.graphqlMaxDepth,
      maxCost: config.graphqlMaxCost,
    };
    return {
      module: GraphqlApiModule,
      imports: [GraphQLModule.forRoot<MercuriusDriverConfig>(mercuriusOptions(limits))],
    };
  }
}

function mercuriusOptions(limits: QueryLimits): MercuriusDriverConfig {
  return {
    driver: MercuriusDriver,
    path: GRAPHQL_PATH,
    ...SCHEMA_BUILD_OPTIONS,
    graphiql: false,
    context: (request: FastifyRequest, reply: FastifyReply) => createGraphqlContext(request, reply),
    errorFormatter: (execution, context: MercuriusContext) => {
      const request = context.reply?.request;
      // Mercurius wraps request failures (validation, a mutation over GET) in one
      // error whose `errors` are the real ones; those that are not GraphQL errors
      // take the wrapper's code and status, with their own message.
      const errors = execution.errors.flatMap((e) => {
        const outer = e.originalError as (Error & { errors?: unknown }) | undefined;
        if (!outer || !Array.isArray(outer.errors)) return [e];
        return outer.errors.map((inner: unknown) =>
          inner instanceof GraphQLError
            ? inner
            : asGraphqlError(
                Object.assign(new Error(inner instanceof Error ? inner.message : String(inner)), {
                  code: (outer as { code?: unknown }).code,
                  statusCode: (outer as { statusCode?: unknown }).statusCode,
                }),
              ),
        );
      });
      const formatted = errors.map((e) => formatGraphqlError(e, request));
      // With `data` the operation ran (maybe partly): 200 as GraphQL over HTTP says.
      // Without, the request itself failed: the status of its (first) error.
      const ran = 'data' in execution && execution.data !== undefined;
      return {
        statusCode: ran ? 200 : (formatted[0]?.status ?? 400),
        response: { data: execution.data ?? null, errors: formatted.map((f) => f.error) },
      };
    },
    hooks: {
      preExecution: [
        (schema, document, context, variables) => {
          const body = context.reply?.request.body as { operationName?: unknown } | undefined;
          const query = context.reply?.request.query as { operationName?: unknown } | undefined;
          const operationName = body?.operationName ?? query?.operationName;
          const error = checkQueryLimits(
            {
              schema,
              document,
              operationName: typeof operationName === 'string' ? operationName : null,
              variables,
            },
            limits,
          );
          if (error) throw error;
        },
      ],
    },
  };
}

function asGraphqlError(error: unknown): GraphQLError {
  if (error instanceof GraphQLError) return error;
  const err = error instanceof Error ? error : new Error(String(error));
  return new GraphQLError(err.message, { originalError: err });
}
