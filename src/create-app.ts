import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { LogController } from 'fastify';
import type { Logger } from 'pino';
import { AppModule, type AppModuleOptions } from './app.module.js';
import { AUDIT_LOG, type AuditLog } from './common/audit/audit-log.js';
import { registerDenialAudit } from './common/audit/denials.js';
import { createLogger } from './common/logging/logger.js';
import { PinoLoggerService } from './common/logging/pino-logger.service.js';
import { sendProblem } from './common/filters/problem-details.filter.js';
import { registerRequestContext } from './common/logging/request-context.js';
import { requestIdFor } from './common/logging/request-id.js';
import type { AppConfig } from './config/config.js';
import { setupDocs } from './openapi/docs.js';

export interface CreateAppOptions extends AppModuleOptions {
  /** The process's pino logger; default: a new one writing to stdout. */
  logger?: Logger;
}

/**
 * Builds and initialises the api role's application (not yet listening):
 * Fastify with the shared pino logger and request ids, Nest logging through
 * the same pino. Used by main.ts and by the e2e tests.
 *
 * One application per process at a time: passport's strategy registry is
 * process-wide, so close an application before creating the next one.
 */
export async function createApp(
  config: AppConfig,
  options: CreateAppOptions = {},
): Promise<NestFastifyApplication> {
  const logger = options.logger ?? createLogger(config);
  const adapter = new FastifyAdapter({
    loggerInstance: logger,
    genReqId: requestIdFor,
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
  });
  registerRequestContext(adapter.getInstance());
  const fastify = adapter.getInstance();
  // What fails before Nest sees the request (an unparsable body) is a problem document too.
  // Fastify binds a route to the error handler set when the route is added: this one,
  // for every route. Nest sets another once its routes exist; it would only draw
  // Fastify's FSTWRN004 warning, so it is not installed (errors inside Nest go
  // through its exception filters, which answer the same problem documents).
  fastify.setErrorHandler((err, request, reply) => sendProblem(err, request, reply));
  adapter.setErrorHandler = () => fastify;
  // An empty body with Content-Type: application/json (as many clients send on DELETE) is no body.
  const json = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') done(null, undefined);
    else void json(request, text, done);
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, options),
    adapter,
    // bodyParser: false — the JSON parser is ours (above), not Nest's.
    { logger: new PinoLoggerService(logger), abortOnError: false, bodyParser: false },
  );
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
