/**
 * Regenerates openapi/openapi.json from the controllers and
 * openapi/schema.graphql from the resolvers (`npm run openapi`).
 * test/e2e/openapi.test.ts and test/e2e/graphql-schema.test.ts fail when the
 * committed files differ.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateGraphqlSchema, generateOpenApiDocument } from '#src/api-contract.js';
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
