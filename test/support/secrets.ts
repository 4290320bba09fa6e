/**
 * What the "Secrets in logs" check reads after the whole suite (issue #9):
 * every secret the tests use, and what the gateway let out while they ran.
 *
 * scripts/test.sh sets VIRTGATE_TEST_RUN_DIR to a fresh directory; each test
 * process appends there, one JSON object a line, to files named by kind and
 * pid:
 * - `secrets-<pid>.jsonl`: `{ what, value }`, every registered secret
 *   (admin tokens given in test configurations or printed at first start, URI
 *   and VNC passwords, keys: `registerSecret`);
 * - `logs-<pid>.jsonl`: every log line the apps wrote (LogCapture);
 * - `responses-<pid>.jsonl`: every HTTP response the apps sent (method,
 *   path, status, headers, body, the test file), which scripts/check-responses.ts
 *   also validates against openapi/openapi.json;
 * - `redis-<pid>.jsonl`: every Redis key of a test prefix with its value, as
 *   it was when the test deleted its keys (job records included);
 * - `prefixes-<pid>.txt`: the Redis prefixes the tests used, so the check
 *   also reads what a test left behind.
 * scripts/check-secrets.ts then looks for each secret in everything else.
 * Without the variable (a single test run by hand) nothing is written.
 */
import { appendFileSync } from 'node:fs';
import type { Server, ServerResponse } from 'node:http';
import { join, relative } from 'node:path';
import type { Redis } from 'ioredis';

/** The run directory of the whole suite, or undefined (nothing is recorded). */
export const TEST_RUN_DIR: string | undefined = process.env.VIRTGATE_TEST_RUN_DIR || undefined;

/** Kinds of record files; the checker reads them by these names. */
export type RunFile = 'secrets' | 'logs' | 'responses' | 'redis' | 'prefixes';

export function runFile(kind: RunFile, pid = process.pid): string {
  return `${kind}-${pid}.${kind === 'prefixes' ? 'txt' : 'jsonl'}`;
}

function append(kind: RunFile, line: string): void {
  if (TEST_RUN_DIR === undefined) return;
  appendFileSync(join(TEST_RUN_DIR, runFile(kind)), `${line}\n`);
}

const registered = new Set<string>();

/**
 * Registers a value the gateway must never let out (in logs, responses, job
 * records); returns it, so a test can write `const PW = registerSecret(…)`.
 * Values shorter than 6 characters are refused: they would match by chance.
 */
export function registerSecret(value: string, what: string): string {
  if (value.length < 6) throw new Error(`a secret to look for needs 6+ characters: ${what}`);
  if (!registered.has(value)) {
    registered.add(value);
    append('secrets', JSON.stringify({ what, value }));
  }
  return value;
}

/** The secrets registered in this process. */
export function registeredSecrets(): readonly string[] {
  return [...registered];
}

/** Records a Redis prefix a test uses. */
export function recordPrefix(prefix: string): void {
  append('prefixes', prefix);
}

/** Records one log line as written (JSON text). */
export function recordLogLine(line: string): void {
  append('logs', line);
}

/** The test file this process runs (node --test runs each in its own process). */
const TEST_FILE =
  process.argv[1] === undefined ? undefined : relative(process.cwd(), process.argv[1]);

/** Most of one response body that is kept (the Swagger UI bundle is not worth more). */
const MAX_BODY_BYTES = 1 << 20;

/**
 * Records every response `server` sends: status, headers and body (the
 * first MiB). Installed before the app's own listener, so it sees each
 * response from its first byte.
 */
export function recordResponses(server: Server): void {
  if (TEST_RUN_DIR === undefined) return;
  server.prependListener('request', (req, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const keep = (chunk: unknown, encoding?: unknown): void => {
      if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
      const buffer = Buffer.isBuffer(chunk)
        ? chunk
        : Buffer.from(
            String(chunk),
            typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8',
          );
      if (size < MAX_BODY_BYTES) chunks.push(buffer.subarray(0, MAX_BODY_BYTES - size));
      size += buffer.length;
    };
    // Fastify hands its headers to writeHead, not setHeader: getHeaders() alone misses them.
    const headed: Record<string, unknown> = {};
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = ((...args: unknown[]) => {
      const given = args.find((a, i): a is object => i > 0 && typeof a === 'object' && a !== null);
      if (Array.isArray(given)) {
        for (let i = 0; i + 1 < given.length; i += 2) {
          headed[String(given[i]).toLowerCase()] = given[i + 1];
        }
      } else if (given !== undefined) {
        for (const [name, value] of Object.entries(given)) headed[name.toLowerCase()] = value;
      }
      return writeHead(...args);
    }) as ServerResponse['writeHead'];
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.write = ((...args: unknown[]) => {
      keep(args[0], args[1]);
      return write(...args);
    }) as ServerResponse['write'];
    res.end = ((...args: unknown[]) => {
      keep(args[0], args[1]);
      return end(...args);
    }) as ServerResponse['end'];
    // 'close', not 'finish': a stream the client ends (an event stream) never finishes.
    res.once('close', () => {
      append(
        'responses',
        JSON.stringify({
          // What the client asked for (its query may hold what a test sent on purpose):
          // the path only; what is checked is what the gateway sent back.
          method: req.method,
          path: (req.url ?? '').split('?')[0],
          status: res.statusCode,
          headers: { ...res.getHeaders(), ...headed },
          body: Buffer.concat(chunks).toString('utf8'),
          // For the responses check (scripts/check-responses.ts): a body cut at the
          // limit is no JSON to validate, and a mismatch names its test file.
          truncated: size > MAX_BODY_BYTES,
          // false: the connection closed before the response ended (its body is partial).
          finished: res.writableFinished,
          file: TEST_FILE,
        }),
      );
    });
  });
}

/** Records every key of `keys` with its value (any Redis type), before a test deletes them. */
export async function recordRedisKeys(redis: Redis, keys: readonly string[]): Promise<void> {
  if (TEST_RUN_DIR === undefined) return;
  for (const key of keys) {
    const entry = await keyValue(redis, key);
    if (entry) append('redis', JSON.stringify({ key, ...entry }));
  }
}

/** Every key under `prefix`. */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

/** A key's type and value, whatever its type; null when it is gone. */
export async function keyValue(
  redis: Redis,
  key: string,
): Promise<{ type: string; value: unknown } | null> {
  const type = await redis.type(key);
  switch (type) {
    case 'string':
      return { type, value: await redis.get(key) };
    case 'hash':
      return { type, value: await redis.hgetall(key) };
    case 'list':
      return { type, value: await redis.lrange(key, 0, -1) };
    case 'set':
      return { type, value: await redis.smembers(key) };
    case 'zset':
      return { type, value: await redis.zrange(key, 0, -1) };
    case 'stream':
      return { type, value: await redis.xrange(key, '-', '+') };
    default:
      return null;
  }
}
