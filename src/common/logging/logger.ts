import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { AppConfig } from '#src/config/config.js';
import { redactText, redactUri } from '../redact.js';

/** Where a bearer token or other secret could appear in a log object; pino replaces them. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'token',
  'adminToken',
  'config.adminToken',
  '*.token',
  '*.adminToken',
  'password',
  '*.password',
  'passwd',
  '*.passwd',
  'secret',
  '*.secret',
];

interface LoggedRequest {
  id?: string;
  method?: string;
  url?: string;
  ip?: string;
  headers?: Record<string, unknown>;
}

/**
 * The process's one pino logger: JSON lines, ISO time, level names, secrets
 * redacted. Fastify uses it as `loggerInstance` (each request gets a child
 * with its requestId) and Nest writes through it (PinoLoggerService).
 */
export function createLogger(
  config: Pick<AppConfig, 'logLevel' | 'role'>,
  destination: DestinationStream = pino.destination({ sync: false }),
): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'virtgate', role: config.role, hostname: hostname(), pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // Messages quote URIs, libvirt's errors and XML: their credentials go (src/common/redact.ts).
      hooks: {
        logMethod(args, method) {
          const redacted = args.map((a: unknown) => (typeof a === 'string' ? redactText(a) : a));
          method.apply(this, redacted as Parameters<typeof method>);
        },
      },
      serializers: {
        err: (err: Error) => {
          const out = pino.stdSerializers.err(err);
          return { ...out, message: redactText(out.message), stack: redactText(out.stack) };
        },
        // Fastify's own serializer logs the URL as is; a client may put a token or password in the query.
        req: (req: LoggedRequest) => ({
          method: req.method,
          url: req.url === undefined ? undefined : redactUri(req.url, '[redacted]'),
          remoteAddress: req.ip,
        }),
      },
    },
    destination,
  );
}
