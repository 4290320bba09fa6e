import type { LoggerService, LogLevel as NestLogLevel } from '@nestjs/common';
import type { Logger as Pino } from 'pino';
import { currentRequest } from './request-context.js';

type PinoMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

const LEVELS: Record<NestLogLevel, PinoMethod> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
};

/**
 * Nest's LoggerService writing through the process's pino logger. Inside a
 * request it writes through that request's child logger, so the line carries
 * the requestId. Nest passes the logger's context (class name) as the last
 * argument, and for `error` a stack before it.
 */
export class PinoLoggerService implements LoggerService {
  constructor(private readonly pino: Pino) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('log', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('verbose', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(level: NestLogLevel, message: unknown, params: unknown[]): void {
    const fields: Record<string, unknown> = {};
    if (params.length > 0 && typeof params.at(-1) === 'string') {
      fields.context = params.pop();
    }
    if (level === 'error' && typeof params[0] === 'string' && params[0].includes('\n    at ')) {
      fields.stack = params.shift();
    }
    if (params.length > 0) fields.params = params;
    const log = currentRequest()?.log ?? this.pino;
    const method = LEVELS[level];
    if (message instanceof Error) {
      log[method]({ ...fields, err: message }, message.message);
    } else if (typeof message === 'object' && message !== null) {
      log[method]({ ...fields, ...message });
    } else {
      log[method](fields, String(message));
    }
  }
}
