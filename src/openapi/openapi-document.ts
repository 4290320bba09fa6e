import { readFileSync } from 'node:fs';
import type { INestApplication } from '@nestjs/common';
import {
  BODY_PROBLEM_STATUSES,
  NOT_FOUND_EXAMPLES,
  PROBLEM_EXAMPLES,
  problemExampleName,
  problemResponse,
} from '../common/decorators/api-problem-responses.decorator.js';
import { withPreciseRequestBodies } from './request-schemas.js';
import {
  DocumentBuilder,
  SwaggerModule,
  type HeaderObject,
  type OpenAPIObject,
  type ReferenceObject,
  type ResponseObject,
} from '@nestjs/swagger';
import { schemaVariants } from './schema-variants.js';

/** The committed spec, relative to the repository root. */
export const OPENAPI_PATH = 'openapi/openapi.json';

/**
 * The tags operations are grouped by (each controller's @ApiTags), described
 * once at the top level. `npm run lint:openapi` fails on a tag missing here.
 */
export const OPENAPI_TAGS: ReadonlyArray<{ name: string; description: string }> = [
  { name: 'health', description: 'Liveness and readiness probes (no credentials, no rate limit)' },
  { name: 'auth', description: 'Who the caller is, and the API tokens (admin)' },
  { name: 'hosts', description: 'The libvirt hosts the gateway talks to, and their capabilities' },
  { name: 'domains', description: 'Domains (virtual machines): definitions, lifecycle, snapshots' },
  { name: 'storage', description: 'Storage pools and their volumes' },
  {
    name: 'block-jobs',
    description: "Block jobs on a running domain's disks: commit, copy, pull, and their chains",
  },
  {
    name: 'jobs',
    description: 'Gateway jobs: every long operation runs as one, polled or waited for',
  },
  { name: 'events', description: 'The event feed, as JSON pages or server-sent events' },
  { name: 'webhooks', description: 'Webhooks: where events are POSTed, and their delivery logs' },
  { name: 'audit', description: 'The audit log of what was asked and who was refused (admin)' },
];

/** The OpenAPI 3.1 document of an application's controllers (the served /docs and the committed file alike). */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setOpenAPIVersion('3.1.0')
    .setTitle('virtgate')
    .setDescription(
      'An HTTP gateway to libvirt. Every operation needs `Authorization: Bearer <token>` ' +
        'except the health checks. Errors are RFC 9457 `application/problem+json` documents ' +
        'with a stable `code` and the `requestId`. The same data is served as GraphQL at `/graphql` ' +
        '(schema: `/docs/schema.graphql`). Every answer carries `X-Request-Id`; a known path asked ' +
        'with a method it does not take is answered 405 (code `UNSUPPORTED`) with `Allow`.',
    )
    .setVersion(packageVersion())
    .setLicense('Apache-2.0', 'https://www.apache.org/licenses/LICENSE-2.0')
    .addServer('/', 'The gateway serving this document (its own origin)')
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', bearerFormat: 'opaque', description: 'An API token (vg_…)' },
      'bearer',
    )
    .addSecurityRequirements('bearer');
  for (const tag of OPENAPI_TAGS) config.addTag(tag.name, tag.description);
  const document = SwaggerModule.createDocument(app, config.build(), {
    operationIdFactory: (_controller: string, method: string) => method,
    extraModels: schemaVariants.models(),
  });
  schemaVariants.apply(document);
  return withResponseHeaders(withPreciseRequestBodies(document));
}

const integer = { type: 'integer', minimum: 0 } as const;

/** Where a tag's 404 example is, under components.examples. */
function notFoundExampleName(tag: string): string {
  return `Problem404${tag
    .split('-')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('')}`;
}

/**
 * The response headers, once, as components; operations refer to them
 * (problem answers: api-problem-responses.decorator.ts; job answers:
 * modules/jobs/api-job-responses.decorator.ts).
 */
export const RESPONSE_HEADERS: Readonly<Record<string, HeaderObject>> = {
  'X-Request-Id': {
    description:
      "The request's id, on every answer: the client's own X-Request-Id when it is 1-128 of `A-Za-z0-9._:-`, else a new UUID (also the `requestId` of a problem, and in every log line of the request)",
    schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
  },
  Location: {
    description: 'The URL of the job (`/v1/jobs/{id}`)',
    schema: { type: 'string', example: '/v1/jobs/0b9c2f7e-6a51-4a55-9a8e-2f0f4b1c9d11' },
  },
  'Preference-Applied': {
    description: 'When `Prefer: wait=N` was honoured: `wait=N`, N as applied (at most 60)',
    schema: { type: 'string', pattern: '^wait=[0-9]+$', example: 'wait=30' },
  },
  'Retry-After': {
    description: 'Seconds after which a retry may succeed',
    schema: { ...integer, example: 5 },
  },
  'WWW-Authenticate': {
    description: 'The challenge: `Bearer realm="virtgate"`',
    schema: { type: 'string', example: 'Bearer realm="virtgate"' },
  },
  'RateLimit-Limit': {
    description:
      'The requests the tightest limit allows per window (rate-limited paths send the RateLimit-* headers on every answer when rate limits are configured and Redis answers)',
    schema: integer,
  },
  'RateLimit-Remaining': {
    description: 'The requests left in the window',
    schema: integer,
  },
  'RateLimit-Reset': {
    description: 'Seconds until the window ends',
    schema: integer,
  },
};

/**
 * Adds the problems of a request body (BODY_PROBLEM_STATUSES) to each
 * operation that takes one, the header every answer carries, X-Request-Id (request-context.ts),
 * and declares the headers once under components.headers, with the others the
 * decorators refer to, and the problem examples under components.examples.
 */
function withResponseHeaders(document: OpenAPIObject): OpenAPIObject {
  const ref = (name: string): ReferenceObject => ({ $ref: `#/components/headers/${name}` });
  for (const item of Object.values(document.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const) {
      const operation = item[method];
      if (!operation) continue;
      if (operation.requestBody !== undefined) {
        // Refused before any handler runs (Fastify's body parsing): a body too large or not JSON.
        for (const status of BODY_PROBLEM_STATUSES) {
          if (operation.responses[status] !== undefined) continue;
          const { description, headers, content } = problemResponse(status);
          operation.responses[status] = {
            description: description ?? '',
            ...(headers ? { headers } : {}),
            content,
          } as ResponseObject;
        }
      }
      const tag = operation.tags?.[0];
      const notFound = operation.responses['404'] as ResponseObject | undefined;
      const problem = notFound?.content?.['application/problem+json'];
      if (problem && tag !== undefined && NOT_FOUND_EXAMPLES[tag]) {
        problem.examples = {
          NOT_FOUND: { $ref: `#/components/examples/${notFoundExampleName(tag)}` },
        };
      }
      for (const response of Object.values(operation.responses) as ResponseObject[]) {
        const headers: Record<string, HeaderObject | ReferenceObject> = {
          'X-Request-Id': ref('X-Request-Id'),
          ...response.headers,
        };
        response.headers = headers;
      }
    }
  }
  const candidates = Object.fromEntries([
    ...Object.entries(PROBLEM_EXAMPLES).map(([status, value]) => [
      problemExampleName(Number(status)),
      { summary: `${status} ${value.code}`, value },
    ]),
    ...Object.entries(NOT_FOUND_EXAMPLES).map(([tag, value]) => [
      notFoundExampleName(tag),
      { summary: `404 NOT_FOUND (${tag})`, value },
    ]),
  ]) as Record<string, { summary: string; value: unknown }>;
  // Only those some answer shows (an unused component is a lint warning).
  const used = new Set(
    [...JSON.stringify(document.paths).matchAll(/"#\/components\/examples\/([^"]+)"/g)].map(
      (m) => m[1]!,
    ),
  );
  const examples = Object.fromEntries(
    Object.entries(candidates).filter(([name]) => used.has(name)),
  );
  document.components = {
    ...document.components,
    headers: { ...RESPONSE_HEADERS },
    examples,
  };
  return document;
}

/** The spec as written to OPENAPI_PATH. */
export function serializeOpenApiDocument(document: OpenAPIObject): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** The version in package.json (the documents carry it). */
export function packageVersion(): string {
  // dist/src/openapi/ → repository root
  const pkg = JSON.parse(
    readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  return pkg.version;
}
