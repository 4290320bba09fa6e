import { readFileSync } from 'node:fs';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { SwaggerModule } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TOKEN_VERIFIER, type TokenVerifier } from '../common/auth/token-verifier.js';
import { buildOpenApiDocument } from './openapi-document.js';

export const DOCS_PATH = '/docs';
const GRAPHQL_SCHEMA_FILE = new URL('../../../openapi/schema.graphql', import.meta.url);

/**
 * Interactive API docs at /docs (Swagger UI, served from the swagger-ui-dist
 * package on this machine: no CDN), the OpenAPI document at
 * /docs/openapi.json and the GraphQL schema at /docs/schema.graphql.
 *
 * Like every endpoint but health, the docs need credentials. A browser cannot
 * send a bearer token on its own, so here an API token is also accepted as
 * the password of HTTP Basic authentication (any user name): the browser asks
 * for it. Call once the app is created, before init.
 */
export function setupDocs(app: NestFastifyApplication): void {
  const tokens = app.get<TokenVerifier>(TOKEN_VERIFIER);
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '';
    if (path !== DOCS_PATH && !path.startsWith(`${DOCS_PATH}/`)) return;
    const token = presentedToken(request.headers.authorization);
    if (token && (await tokens.isValid(token))) return;
    await reply
      .status(401)
      .header('www-authenticate', 'Basic realm="virtgate docs", charset="UTF-8"')
      .header('content-type', 'text/plain; charset=utf-8')
      .send('The API docs need an API token: give it as the password (any user name).\n');
  });
  SwaggerModule.setup(DOCS_PATH, app, () => buildOpenApiDocument(app), {
    jsonDocumentUrl: `${DOCS_PATH}/openapi.json`,
    yamlDocumentUrl: `${DOCS_PATH}/openapi.yaml`,
    customSiteTitle: 'virtgate API',
    swaggerOptions: { persistAuthorization: false, displayOperationId: true },
  });
  fastify.get(`${DOCS_PATH}/schema.graphql`, async (_request, reply) => {
    await reply.header('content-type', 'text/plain; charset=utf-8').send(readFileSync(GRAPHQL_SCHEMA_FILE, 'utf8'));
  });
}

/** The token of `Authorization: Bearer <token>` or of `Basic base64(user:token)`. */
function presentedToken(header: string | undefined): string | null {
  if (!header) return null;
  const [scheme, value] = header.split(' ', 2);
  if (!value) return null;
  if (scheme?.toLowerCase() === 'bearer') return value;
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) : null;
  }
  return null;
}
