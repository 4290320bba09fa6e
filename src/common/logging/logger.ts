import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { AppConfig } from '#src/config/config.js';

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
];

/** Query parameters whose values are removed from logged URLs. */
const SECRET_QUERY_PARAMS = /([?&](?:access_token|token)=)[^&#]*/gi;

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
      serializers: {
        // Fastify's own serializer logs the URL as is; a client may put a token in the query.
        req: (req: LoggedRequest) => ({
          method: req.method,
          url: req.url?.replace(SECRET_QUERY_PARAMS, '$1[redacted]'),
          remoteAddress: req.ip,
        }),
      },
    },
    destination,
  );
}
