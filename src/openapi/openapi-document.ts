import { readFileSync } from 'node:fs';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';

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
        '(schema: `/docs/schema.graphql`).',
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
  return SwaggerModule.createDocument(app, config.build(), {
    operationIdFactory: (_controller: string, method: string) => method,
  });
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
