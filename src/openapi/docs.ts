import { readFileSync } from 'node:fs';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { SwaggerModule } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { RedisClient } from '#src/redis/redis-connection.js';
import { REQUEST_AUTHENTICATOR, type RequestAuthenticator } from '../common/auth/authenticator.js';
import { AppError, ErrorCode } from '../common/errors/app-error.js';
import type { AppConfig } from '../config/config.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { RedisKeys } from '../redis/keys.js';
import { REDIS, REDIS_KEYS } from '../redis/redis.module.js';
import { DocsSessions } from './docs-session.js';
import { buildOpenApiDocument } from './openapi-document.js';

export const DOCS_PATH = '/docs';
const GRAPHQL_SCHEMA_FILE = new URL('../../../openapi/schema.graphql', import.meta.url);
/** The committed AsyncAPI document of the event channels (ASYNCAPI_PATH). */
const ASYNCAPI_FILE = new URL('../../../openapi/asyncapi.yaml', import.meta.url);
/** The sign-in page's own files (src/openapi/docs-ui/; read from the checkout, as the schema is). */
const UI_DIR = new URL('../../../src/openapi/docs-ui/', import.meta.url);

/** The routes under /docs anyone may reach: the sign-in page, its files, signing in and out. */
const PUBLIC_ROUTES = new Set([
  `GET ${DOCS_PATH}/login`,
  `HEAD ${DOCS_PATH}/login`,
  `GET ${DOCS_PATH}/login.js`,
  `HEAD ${DOCS_PATH}/login.js`,
  `GET ${DOCS_PATH}/login.css`,
  `HEAD ${DOCS_PATH}/login.css`,
  `POST ${DOCS_PATH}/session`,
  `POST ${DOCS_PATH}/logout`,
]);
/** The Swagger UI page itself: a browser without a session is sent to the sign-in page. */
const PAGE_ROUTES = new Set([DOCS_PATH, `${DOCS_PATH}/`, `${DOCS_PATH}/index.html`]);

/**
 * Interactive API docs at /docs (Swagger UI, served from the swagger-ui-dist
 * package on this machine: no CDN), the OpenAPI document at
 * /docs/openapi.json, the GraphQL schema at /docs/schema.graphql and the
 * AsyncAPI document of the event channels at /docs/asyncapi.yaml.
 *
 * Like every endpoint but health, the docs need credentials, checked by the
 * same authenticator as every route, and attached to the routes themselves:
 * every route registered under /docs, by whoever registers it (Swagger's
 * static files included), gets the check as an onRequest hook when it is
 * added, so what decides is the route the router matched, never a comparison
 * of URL strings (which encodings would get around). Only the sign-in routes
 * are exempt.
 *
 * Credentials are a bearer token, or the docs session cookie a person gets at
 * /docs/login by giving an API token once (docs-session.ts). "Try it out"
 * calls the API itself, which takes bearer tokens only: the sign-in page
 * hands the token to Swagger UI in memory (never to any storage); after a
 * reload, the Authorize button asks for it again.
 *
 * Call once the app is created, before init.
 */
export function setupDocs(app: NestFastifyApplication): void {
  const config = app.get<AppConfig>(APP_CONFIG);
  const authenticator = app.get<RequestAuthenticator>(REQUEST_AUTHENTICATOR);
  const sessions = new DocsSessions(
    app.get<RedisClient>(REDIS),
    app.get<RedisKeys>(REDIS_KEYS),
    authenticator,
    config.docsSessionTtlSeconds,
  );
  const guard = docsGuard(authenticator, sessions);
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRoute', (route: RouteOptions) => {
    if (route.url !== DOCS_PATH && !route.url.startsWith(`${DOCS_PATH}/`)) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.every((m) => PUBLIC_ROUTES.has(`${m} ${route.url}`))) return;
    const existing = route.onRequest;
    route.onRequest = [guard, ...(existing === undefined ? [] : [existing].flat())];
  });

  SwaggerModule.setup(DOCS_PATH, app, () => buildOpenApiDocument(app), {
    jsonDocumentUrl: `${DOCS_PATH}/openapi.json`,
    yamlDocumentUrl: `${DOCS_PATH}/openapi.yaml`,
    customSiteTitle: 'virtgate API',
    customJs: `${DOCS_PATH}/login.js`,
    customCssUrl: `${DOCS_PATH}/login.css`,
    swaggerOptions: { persistAuthorization: false, displayOperationId: true },
  });
  fastify.get(`${DOCS_PATH}/schema.graphql`, async (_request, reply) => {
    await reply
      .header('content-type', 'text/plain; charset=utf-8')
      .send(readFileSync(GRAPHQL_SCHEMA_FILE, 'utf8'));
  });
  fastify.get(`${DOCS_PATH}/asyncapi.yaml`, async (_request, reply) => {
    await reply
      .header('content-type', 'text/yaml; charset=utf-8')
      .send(readFileSync(ASYNCAPI_FILE, 'utf8'));
  });

  const files = {
    login: readFileSync(new URL('login.html', UI_DIR), 'utf8'),
    js: readFileSync(new URL('login.js', UI_DIR), 'utf8'),
    css: readFileSync(new URL('login.css', UI_DIR), 'utf8'),
  };
  fastify.get(`${DOCS_PATH}/login`, async (_request, reply) => {
    await reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(files.login);
  });
  fastify.get(`${DOCS_PATH}/login.js`, async (_request, reply) => {
    await reply.header('content-type', 'text/javascript; charset=utf-8').send(files.js);
  });
  fastify.get(`${DOCS_PATH}/login.css`, async (_request, reply) => {
    await reply.header('content-type', 'text/css; charset=utf-8').send(files.css);
  });
  // Sign in: JSON only (a cross-site form cannot send it without a preflight).
  fastify.post(`${DOCS_PATH}/session`, async (request, reply) => {
    const token = tokenOf(request.body);
    const { id, caller } = await sessions.open(token, request.id);
    request.log.info({ callerId: caller.id }, 'docs session opened');
    await reply
      .header('set-cookie', sessions.setCookie(id, request.protocol === 'https'))
      .header('cache-control', 'no-store')
      .status(204)
      .send();
  });
  fastify.post(`${DOCS_PATH}/logout`, async (request, reply) => {
    const id = DocsSessions.idOf(request);
    if (id !== null) await sessions.close(id);
    await reply
      .header('set-cookie', sessions.setCookie(null, request.protocol === 'https'))
      .status(204)
      .send();
  });
}

/**
 * The check of every non-public docs route: the request's bearer token when
 * it has an Authorization header, else its docs session cookie. Throws the
 * authenticator's UNAUTHENTICATED (a 401 problem document with
 * WWW-Authenticate), except that a browser asking for the docs page is sent
 * to the sign-in page.
 */
function docsGuard(authenticator: RequestAuthenticator, sessions: DocsSessions) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      const sessionId = DocsSessions.idOf(request);
      if (request.headers.authorization !== undefined || sessionId === null) {
        await authenticator.authenticate(request);
      } else {
        await sessions.authenticate(request, sessionId);
      }
    } catch (err) {
      const page = request.method === 'GET' && PAGE_ROUTES.has(request.routeOptions.url ?? '');
      const browser = (request.headers.accept ?? '').includes('text/html');
      if (!(page && browser && err instanceof AppError && err.code === ErrorCode.UNAUTHENTICATED)) {
        throw err;
      }
      await reply.redirect(`${DOCS_PATH}/login`, 303);
    }
  };
}

function tokenOf(body: unknown): string {
  const token = (body as { token?: unknown } | null | undefined)?.token;
  if (typeof token !== 'string' || token.trim() === '' || token.length > 4096) {
    const message = 'give the API token as {"token": "…"} (application/json)';
    throw new AppError(ErrorCode.INVALID_ARGUMENT, message, {
      fields: [{ field: 'token', message }],
    });
  }
  return token.trim();
}
