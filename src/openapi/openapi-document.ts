import { readFileSync } from 'node:fs';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';

/** The committed spec, relative to the repository root. */
export const OPENAPI_PATH = 'openapi/openapi.json';

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
    .addBearerAuth(
      { type: 'http', scheme: 'bearer', bearerFormat: 'opaque', description: 'An API token (vg_…)' },
      'bearer',
    )
    .addSecurityRequirements('bearer')
    .build();
  return SwaggerModule.createDocument(app, config, {
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
