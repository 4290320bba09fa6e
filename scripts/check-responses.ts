/**
 * After the whole suite (scripts/test.sh runs it after the secrets check):
 * validates every HTTP response the tests recorded against the committed
 * OpenAPI document (test/support/response-check.ts says how, and which
 * explicit rules cover what the document does not describe). Prints the
 * counts; fails on any mismatch, and when the run recorded nothing.
 *
 *   node dist/scripts/check-responses.js <run dir> [openapi.json]
 */
import { readFileSync } from 'node:fs';
import { OPENAPI_PATH } from '../src/openapi/openapi-document.js';
import {
  type Mismatch,
  readResponseRecords,
  ResponseChecker,
} from '../test/support/response-check.js';

const [dir, specPath] = process.argv.slice(2);
if (!dir) {
  console.error('usage: check-responses <run dir> [openapi.json]');
  process.exit(2);
}
// dist/scripts/ → the repository root
const spec = specPath ?? new URL(`../../${OPENAPI_PATH}`, import.meta.url).pathname;
const document = JSON.parse(readFileSync(spec, 'utf8')) as Record<string, unknown>;
const result = new ResponseChecker(document).check(readResponseRecords(dir));

const list = (counts: Record<string, number>): string =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([rule, n]) => `${rule} ${n}`)
    .join(', ') || 'none';
const skipped = Object.values(result.skipped).reduce((a, b) => a + b, 0);
console.log(
  `responses check: ${result.read} responses read; ${result.validated} JSON bodies validated, ` +
    `${result.checked} without one checked (by rule: ${list(result.byRule)}); ` +
    `${skipped} skipped (${list(result.skipped)}); ${result.mismatches.length} mismatches`,
);
if (result.unexercised.length > 0) {
  console.log(
    `responses check: ${result.unexercised.length} operations no test called: ${result.unexercised.join('; ')}`,
  );
}
if (result.read === 0) {
  console.error('responses check: the run recorded no responses: is the recording broken?');
  process.exit(1);
}
if (result.mismatches.length > 0) {
  // The same mismatch of many responses (every item of a list, every call of a test) once:
  // by operation, status and errors, the values got and the items' indexes aside.
  const groups = new Map<string, { first: Mismatch; count: number; files: Set<string> }>();
  for (const m of result.mismatches) {
    const key = [m.operation, m.status, ...m.errors.map(shape)].join('\n');
    const group = groups.get(key) ?? { first: m, count: 0, files: new Set<string>() };
    group.count++;
    if (m.file !== undefined) group.files.add(m.file);
    groups.set(key, group);
  }
  console.error(
    `responses check: FAILED, ${result.mismatches.length} responses break ${spec} ` +
      `(${groups.size} different mismatches):`,
  );
  for (const { first, count, files } of groups.values()) {
    const times = count === 1 ? '1 time' : `${count} times`;
    console.error(
      `  ${first.operation} -> ${first.status} (${times}: ${first.where}, ${[...files].join(', ') || 'unknown test file'})`,
    );
    for (const e of first.errors.slice(0, 12)) console.error(`      ${e}`);
    if (first.errors.length > 12) console.error(`      … ${first.errors.length - 12} more`);
  }
  process.exit(1);
}
console.log('responses check: every response conforms');

/** An error without the value got and with list indexes as `*`: what groups mismatches. */
function shape(error: string): string {
  return error.replace(/; got .*\)$/, ')').replace(/\/\d+(?=[/ ])/g, '/*');
}
