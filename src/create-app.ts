import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Server } from 'node:http';
import type { RedisClient } from '#src/redis/redis-connection.js';
import type { Logger } from 'pino';
import { AppModule, type AppModuleOptions } from './app.module.js';
import { AUDIT_LOG, type AuditLog } from './common/audit/audit-log.js';
import { registerDenialAudit } from './common/audit/denials.js';
import { AppError, ErrorCode } from './common/errors/app-error.js';
import { guardConnections } from './common/limits/connection-guard.js';
import { jsonDepthExceeds } from './common/limits/json-depth.js';
import { registerRateLimits, type RateLimitDeps } from './common/limits/rate-limit.js';
import { registerSecurityHeaders } from './common/limits/security-headers.js';
import { registerMethodNotAllowed } from './common/filters/method-not-allowed.js';
import { confineWebsocketUpgrades } from './common/limits/websocket-upgrades.js';
import { createLogger } from './common/logging/logger.js';
import { PinoLoggerService } from './common/logging/pino-logger.service.js';
import { sendProblem } from './common/filters/problem-details.filter.js';
import { RejectionLog, SampledLogController } from './common/logging/rejection-log.js';
import { registerRequestContext } from './common/logging/request-context.js';
import { requestIdFor } from './common/logging/request-id.js';
import type { AppConfig } from './config/config.js';
import { GRAPHQL_PATH } from './graphql/graphql-api.module.js';
import { setupDocs } from './openapi/docs.js';
import { REDIS, REDIS_KEYS } from './redis/redis.module.js';

export interface CreateAppOptions extends AppModuleOptions {
  /** The process's pino logger; default: a new one writing to stdout. */
  logger?: Logger;
}

/**
 * Builds and initialises the api role's application (not yet listening):
 * Fastify with the shared pino logger and request ids, Nest logging through
 * the same pino, and the limits that protect it (connections, timeouts,
 * bodies, request rates; see README "Limits"). Used by main.ts and by the e2e tests.
 *
 * One application per process at a time: passport's strategy registry is
 * process-wide, so close an application before creating the next one.
 */
export async function createApp(
  config: AppConfig,
  options: CreateAppOptions = {},
): Promise<NestFastifyApplication> {
  const logger = options.logger ?? createLogger(config);
  // A flood of rejected requests (bad tokens, over a limit) writes a line per address, not per request.
  const rejections = new RejectionLog(logger, config.rateLimitWindowMs);
  const adapter = new FastifyAdapter({
    loggerInstance: logger,
    genReqId: requestIdFor,
    logController: new SampledLogController(rejections, { requestIdLogLabel: 'requestId' }),
    bodyLimit: config.bodyLimitBytes,
    connectionTimeout: config.httpConnectionTimeoutMs,
    keepAliveTimeout: config.httpKeepAliveTimeoutMs,
    requestTimeout: config.httpRequestTimeoutMs,
    // Node checks the headers and request timeouts every this often (default 30 s).
    http: { headersTimeout: config.httpHeadersTimeoutMs, connectionsCheckingInterval: 1000 },
  });
  registerRequestContext(adapter.getInstance());
  const fastify = adapter.getInstance();
  fastify.addHook('onClose', (_instance, done) => {
    rejections.close();
    done();
  });
  guardConnections(fastify.server as Server, config.httpMaxConnections, logger);
  registerSecurityHeaders(fastify);
  // The Redis client exists once Nest has built the application (below).
  const limitDeps: { current?: RateLimitDeps } = {};
  registerRateLimits(fastify, config, logger, () => limitDeps.current);
  confineWebsocketUpgrades(fastify, [GRAPHQL_PATH]);
  registerMethodNotAllowed(fastify);
  // What fails before Nest sees the request (an unparsable body) is a problem document too.
  // Fastify binds a route to the error handler set when the route is added: this one,
  // for every route. Nest sets another once its routes exist; it would only draw
  // Fastify's FSTWRN004 warning, so it is not installed (errors inside Nest go
  // through its exception filters, which answer the same problem documents).
  fastify.setErrorHandler((err, request, reply) => sendProblem(err, request, reply));
  adapter.setErrorHandler = () => fastify;
  // An empty body with Content-Type: application/json (as many clients send on DELETE) is no body.
  // `__proto__` and `constructor.prototype` keys are refused (400), and so, before parsing, is
  // nesting deeper than JSON_MAX_DEPTH (413): what walks a body afterwards recurses.
  const json = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') done(null, undefined);
    else if (jsonDepthExceeds(text, config.jsonMaxDepth)) {
      done(
        new AppError(
          ErrorCode.PAYLOAD_TOO_LARGE,
          `the JSON body nests arrays and objects deeper than ${config.jsonMaxDepth} levels`,
        ),
        undefined,
      );
    } else {
      void json(request, text, (err, value) => {
        if (err && isPlainJson(text)) {
          // Valid JSON all the same: refused for a key that could reach an object's prototype.
          done(
            new AppError(
              ErrorCode.INVALID_ARGUMENT,
              'the JSON body has a "__proto__" or "constructor": {"prototype": …} key, which is refused',
            ),
            undefined,
          );
        } else done(err, value);
      });
    }
  });
  // Only JSON bodies (and GraphQL's own types): a text/plain body is answered 415 like any other.
  fastify.removeContentTypeParser('text/plain');
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, options),
    adapter,
    // bodyParser: false — the JSON parser is ours (above), not Nest's.
    { logger: new PinoLoggerService(logger), abortOnError: false, bodyParser: false },
  );
  limitDeps.current = { redis: app.get<RedisClient>(REDIS), keys: app.get(REDIS_KEYS) };
  if (config.corsOrigins.length > 0) {
    app.enableCors({
      origin: config.corsOrigins.includes('*') ? '*' : [...config.corsOrigins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: [
        'authorization',
        'content-type',
        'idempotency-key',
        'prefer',
        'x-request-id',
      ],
      exposedHeaders: [
        'x-request-id',
        'location',
        'retry-after',
        'preference-applied',
        'allow',
        'ratelimit-limit',
        'ratelimit-remaining',
        'ratelimit-reset',
      ],
      maxAge: 600,
    });
  }
  try {
    registerDenialAudit(fastify, app.get<AuditLog>(AUDIT_LOG));
    setupDocs(app);
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  return app;
}

/** Whether JSON.parse takes `text` (only asked about a body the safe parser refused). */
function isPlainJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
