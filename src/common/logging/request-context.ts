import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER } from './request-id.js';

export interface RequestContext {
  readonly requestId: string;
  /** Fastify's child logger of this request: its lines carry the requestId. */
  readonly log: FastifyBaseLogger;
  /** The client's address (Fastify's `request.ip`). */
  readonly address: string;
}

const storage = new AsyncLocalStorage<RequestContext>();
const scopes = new WeakMap<FastifyRequest, AsyncResource>();

/** The request being served by the current async call chain, if any. */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/**
 * Echoes the request id to the client and runs the rest of each request
 * inside an AsyncLocalStorage scope, so code that logs through Nest's Logger
 * writes with the request's logger. The scope is re-entered before validation
 * because Fastify resumes there from the body stream's events, which run in
 * another async context (the approach of @fastify/request-context).
 */
export function registerRequestContext(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    storage.run({ requestId: request.id, log: request.log, address: request.ip }, () => {
      const scope = new AsyncResource('virtgate.request');
      scopes.set(request, scope);
      scope.runInAsyncScope(done);
    });
  });
  fastify.addHook('preValidation', (request, _reply, done) => {
    const scope = scopes.get(request);
    if (scope) scope.runInAsyncScope(done);
    else done();
  });
}
