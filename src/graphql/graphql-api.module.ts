import { Module, type DynamicModule } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { GraphQLModule } from '@nestjs/graphql';
import { MercuriusDriver, type MercuriusDriverConfig } from '@nestjs/mercurius';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GraphQLError, NoSchemaIntrospectionCustomRule, getOperationAST } from 'graphql';
import type { MercuriusContext } from 'mercurius';
import { AUDIT_LOG, type AuditLog } from '../common/audit/audit-log.js';
import { REQUEST_AUTHENTICATOR, type RequestAuthenticator } from '../common/auth/authenticator.js';
import { ErrorCode } from '../common/errors/app-error.js';
import type { AppConfig } from '../config/config.js';
import type { DocumentLimits } from './document-limits.js';
import { createGraphqlContext } from './graphql-context.js';
import { formatGraphqlError } from './graphql-errors.js';
import { graphqlRouteHooks } from './graphql-http-guard.js';
import { checkDocumentLimits, checkQueryLimits, type QueryLimits } from './query-limits.js';
import { guardSubscriptionFields, SubscriptionGate } from './subscription-gate.js';

export const GRAPHQL_PATH = '/graphql';

/**
 * The schema is built from the code (the resolvers and the models' @Field
 * decorators), sorted so that openapi/schema.graphql is stable. No GraphiQL
 * or landing page: the gateway serves no assets from a CDN.
 */
export const SCHEMA_BUILD_OPTIONS = { autoSchemaFile: true, sortSchema: true } as const;

/**
 * How much deeper than GRAPHQL_MAX_DEPTH brackets may nest in a document:
 * arguments' input objects and lists, and introspection's `ofType` chains
 * (not counted in depth).
 */
const NESTING_ALLOWANCE = 32;

/**
 * GraphQL at /graphql on the same Fastify server as REST, through Mercurius
 * (Fastify's own GraphQL server, which also serves graphql-ws subscriptions).
 * Every request is authenticated, checked against cross-site forgery and its
 * document's size and tokens counted before Mercurius parses it
 * (graphql-http-guard.ts); depth, cost, aliases and directives are limited
 * before graphql-js validates it and again before it runs (query-limits.ts).
 * The context holds the request (for the bearer guard) and per-request
 * DataLoaders; errors carry the REST codes (graphql-errors.ts). No batched
 * requests (an array of operations): one request, one operation, one budget.
 */
@Module({})
export class GraphqlApiModule {
  static forRoot(config: AppConfig): DynamicModule {
    const limits: QueryLimits = {
      maxDepth: config.graphqlMaxDepth,
      maxCost: config.graphqlMaxCost,
      maxAliases: config.graphqlMaxAliases,
      maxDirectives: config.graphqlMaxDirectives,
      introspection: config.graphqlIntrospection,
    };
    const document: DocumentLimits = {
      maxBytes: config.graphqlMaxDocumentBytes,
      maxTokens: config.graphqlMaxTokens,
      maxNesting: config.graphqlMaxDepth + NESTING_ALLOWANCE,
    };
    return {
      module: GraphqlApiModule,
      imports: [
        GraphQLModule.forRootAsync<MercuriusDriverConfig>({
          driver: MercuriusDriver,
          inject: [ModuleRef],
          // The authenticator is the auth feature's: found in the whole application
          // when the first request arrives.
          useFactory: (modules: ModuleRef) => {
            const authenticator = () =>
              modules.get<RequestAuthenticator>(REQUEST_AUTHENTICATOR, { strict: false });
            const gate = new SubscriptionGate({
              authenticator,
              audit: () => {
                try {
                  return modules.get<AuditLog>(AUDIT_LOG, { strict: false });
                } catch {
                  return undefined; // no audit trail in this application
                }
              },
              limits,
              document,
              corsOrigins: config.corsOrigins,
              // connection_init is a socket's request headers: the same time to send them.
              initTimeoutMs: config.httpHeadersTimeoutMs,
            });
            return mercuriusOptions(limits, document, authenticator, gate, {
              keepAliveMs: config.eventsHeartbeatSeconds * 1000,
            });
          },
        }),
      ],
    };
  }
}

function mercuriusOptions(
  limits: QueryLimits,
  document: DocumentLimits,
  authenticator: () => RequestAuthenticator,
  gate: SubscriptionGate,
  socket: { keepAliveMs: number },
): MercuriusDriverConfig {
  return {
    path: GRAPHQL_PATH,
    ...SCHEMA_BUILD_OPTIONS,
    graphiql: false,
    allowBatchedQueries: false,
    additionalRouteOptions: graphqlRouteHooks({ authenticator, document, gate }),
    // graphql-ws at the same path; each socket goes through the gate (subscription-gate.ts).
    subscription: {
      context: (socket, request) => gate.context(socket, request),
      // A ping this often keeps proxies from closing an idle socket (as SSE's heartbeat).
      keepAlive: socket.keepAliveMs,
    },
    transformSchema: guardSubscriptionFields,
    graphql: { parseOptions: { maxTokens: document.maxTokens } },
    ...(limits.introspection ? {} : { validationRules: [NoSchemaIntrospectionCustomRule] }),
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
      // Before graphql-js validates a document it has not seen (some validation
      // rules are superlinear), with the variables as the request gives them.
      preValidation: [
        (schema, doc, context) => {
          const error = checkDocumentLimits(schema, doc, requestPart(context, 'variables'), limits);
          if (error) throw error;
        },
      ],
      // Before anything runs, every time (validated documents are cached), exactly.
      preExecution: [
        (schema, doc, context, variables) => {
          const operationName = requestPart(context, 'operationName');
          const operation = getOperationAST(
            doc,
            typeof operationName === 'string' ? operationName : undefined,
          );
          if (operation?.operation === 'subscription') {
            throw new GraphQLError(
              'subscriptions are served over WebSocket (graphql-ws, subprotocol graphql-transport-ws) at /graphql, not over HTTP',
              { extensions: { code: ErrorCode.UNSUPPORTED } },
            );
          }
          const error = checkQueryLimits(
            {
              schema,
              document: doc,
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

/** A member of the request's body (POST) or query string (GET; variables as JSON). */
function requestPart(context: MercuriusContext, name: 'variables' | 'operationName'): unknown {
  const request = context.reply?.request;
  if (!request) return undefined;
  const from = (request.method === 'GET' ? request.query : request.body) as
    Record<string, unknown> | undefined;
  const value = typeof from === 'object' && from !== null ? from[name] : undefined;
  if (name === 'variables' && typeof value === 'string') {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return undefined;
    }
  }
  return value;
}

function asGraphqlError(error: unknown): GraphQLError {
  if (error instanceof GraphQLError) return error;
  const err = error instanceof Error ? error : new Error(String(error));
  return new GraphQLError(err.message, { originalError: err });
}
