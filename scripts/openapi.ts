/**
 * Regenerates openapi/openapi.json from the controllers (`npm run openapi`).
 * test/e2e/openapi.test.ts fails when the committed file differs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  generateOpenApiDocument,
  OPENAPI_PATH,
  serializeOpenApiDocument,
} from '#src/openapi/openapi-document.js';

// dist/scripts/ → repository root
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const target = resolve(root, OPENAPI_PATH);
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, serializeOpenApiDocument(await generateOpenApiDocument()));
console.log(`wrote ${OPENAPI_PATH}`);
