/**
 * Regenerates openapi/openapi.json from the controllers,
 * openapi/schema.graphql from the resolvers and openapi/asyncapi.yaml from
 * the event declarations (`npm run openapi`). test/e2e/openapi.test.ts,
 * test/e2e/graphql-schema.test.ts and test/unit/asyncapi.test.ts fail when
 * the committed files differ.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateGraphqlSchema, generateOpenApiDocument } from '#src/api-contract.js';
import {
  ASYNCAPI_PATH,
  buildAsyncApiDocument,
  serializeAsyncApiDocument,
} from '#src/openapi/asyncapi-document.js';
import { OPENAPI_PATH, serializeOpenApiDocument } from '#src/openapi/openapi-document.js';
import { GRAPHQL_SCHEMA_PATH, serializeGraphqlSchema } from '#src/graphql/graphql-schema-file.js';

// dist/scripts/ → repository root
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const target = resolve(root, OPENAPI_PATH);
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, serializeOpenApiDocument(await generateOpenApiDocument()));
console.log(`wrote ${OPENAPI_PATH}`);
const schemaTarget = resolve(root, GRAPHQL_SCHEMA_PATH);
writeFileSync(schemaTarget, serializeGraphqlSchema(await generateGraphqlSchema()));
console.log(`wrote ${GRAPHQL_SCHEMA_PATH}`);
writeFileSync(resolve(root, ASYNCAPI_PATH), serializeAsyncApiDocument(buildAsyncApiDocument()));
console.log(`wrote ${ASYNCAPI_PATH}`);
