/**
 * What /graphql checks over HTTP before Mercurius reads the document, as
 * Fastify hooks of the GraphQL routes, in this order:
 *
 * 1. Authentication (before the body is even read): the same authenticator
 *    as the REST guard; without valid credentials, HTTP 401 with
 *    `WWW-Authenticate: Bearer realm="virtgate"`. The Caller it sets on the
 *    request is what the resolvers' guard then uses.
 * 2. CSRF: a browser sends a cross-site request without a CORS preflight
 *    only with a "simple" content type (form, multipart, text/plain) and
 *    simple headers. A POST must be `application/json` (or
 *    `application/graphql`): anything else is 415. A GET must carry the
 *    `Authorization` header, or `X-Requested-With` (neither is simple): 400
 *    otherwise. (Authorization is today the only credential GraphQL accepts,
 *    so this only matters if a credential a browser sends by itself, such
 *    as a cookie, is ever accepted.)
 * 3. Once the body is read, the document's size and token count
 *    (document-limits.ts): 413 PAYLOAD_TOO_LARGE.
 *
 * A WebSocket upgrade (GraphQL subscriptions) is checked for its Origin
 * instead of 1 and 2 (a browser can put no header on it; the socket
 * authenticates with its first message): see subscription-gate.ts.
 *
 * Refusals are answered in GraphQL's shape (`{ data: null, errors: [...] }`,
 * `extensions.code`), as formatted by graphql-errors.ts.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GraphQLError } from 'graphql';
import type { RequestAuthenticator } from '../common/auth/authenticator.js';
import { AppError, ErrorCode } from '../common/errors/app-error.js';
import { httpProblemFor } from '../common/errors/problem-details.js';
import { checkDocument, type DocumentLimits } from './document-limits.js';
import { formatGraphqlError } from './graphql-errors.js';
import type { SubscriptionGate } from './subscription-gate.js';

/** The content types a POST to /graphql may have (their parameters aside). */
export const GRAPHQL_POST_CONTENT_TYPES = ['application/json', 'application/graphql'] as const;

export interface GraphqlHttpGuardOptions {
  /** The authenticator, resolved when the first request arrives. */
  authenticator: () => RequestAuthenticator;
  document: DocumentLimits;
  /** What checks and then follows a WebSocket upgrade. */
  gate: SubscriptionGate;
}

type Hook = (request: FastifyRequest, reply: FastifyReply, payload?: unknown) => Promise<unknown>;

/** The hooks to add to the GraphQL routes (Mercurius's `additionalRouteOptions`). */
export function graphqlRouteHooks(options: GraphqlHttpGuardOptions): {
  preParsing: Hook;
  preValidation: Hook;
} {
  let authenticator: RequestAuthenticator | undefined;
  return {
    preParsing: async (request, reply, payload) => {
      // Set by @fastify/websocket on an upgrade request.
      if ((request as FastifyRequest & { ws?: boolean }).ws === true) {
        const refusal = options.gate.refuseUpgrade(request);
        if (refusal) return refuse(request, reply, refusal);
        options.gate.admitUpgrade(request);
        return payload;
      }
      authenticator ??= options.authenticator();
      try {
        await authenticator.authenticate(request);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        return refuse(request, reply, err);
      }
      const csrf = csrfRefusal(request);
      if (csrf) return refuse(request, reply, csrf.error, csrf.status);
      return payload;
    },
    preValidation: async (request, reply) => {
      const query = documentOf(request);
      if (query === undefined) return undefined; // Mercurius answers a request without a query
      const refusal = checkDocument(query, options.document);
      if (refusal) return refuse(request, reply, refusal.error, refusal.status);
      return undefined;
    },
  };
}

/** Why a request could be a cross-site forgery, and its status; null when it cannot. */
function csrfRefusal(request: FastifyRequest): { error: AppError; status: number } | null {
  if (request.method === 'POST') {
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if ((GRAPHQL_POST_CONTENT_TYPES as readonly string[]).includes(type)) return null;
    const message = `a GraphQL POST must be Content-Type: application/json (or application/graphql), not ${type === '' ? 'none' : JSON.stringify(type)}`;
    return { error: new AppError(ErrorCode.UNSUPPORTED, message), status: 415 };
  }
  if (request.method === 'GET') {
    const headers = request.headers;
    if (headers.authorization !== undefined || headers['x-requested-with'] !== undefined) {
      return null;
    }
    const message =
      'a GraphQL GET must carry the Authorization or X-Requested-With header (cross-site request protection)';
    return { error: new AppError(ErrorCode.INVALID_ARGUMENT, message), status: 400 };
  }
  return null;
}

/** The query text of a request, if it has one as a string. */
function documentOf(request: FastifyRequest): string | undefined {
  const from = request.method === 'GET' ? request.query : request.body;
  if (typeof from !== 'object' || from === null || Array.isArray(from)) return undefined;
  const query = (from as { query?: unknown }).query;
  return typeof query === 'string' ? query : undefined;
}

/** Answers the request with one error, in GraphQL's shape, and ends it. */
function refuse(
  request: FastifyRequest,
  reply: FastifyReply,
  error: AppError | GraphQLError,
  status?: number,
): FastifyReply {
  const graphqlError =
    error instanceof GraphQLError
      ? error
      : new GraphQLError(error.message, { originalError: error });
  const formatted = formatGraphqlError(graphqlError, request);
  if (error instanceof AppError) {
    for (const [name, value] of Object.entries(httpProblemFor(error).headers)) {
      void reply.header(name, value);
    }
  }
  void reply
    .code(status ?? formatted.status)
    .type('application/json; charset=utf-8')
    .send({ data: null, errors: [formatted.error] });
  return reply;
}
