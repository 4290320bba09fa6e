import { HttpException, HttpStatus } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { sendProblem } from './problem-details.filter.js';

/** A route's path, as a pattern: `:name` one segment, a trailing `*` the rest. */
function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((part) => {
      if (part.startsWith(':')) return '[^/]+';
      if (part === '*') return '.*';
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${source}/?$`);
}

/**
 * Answers a request whose path has routes, but none for its method, with 405
 * and `Allow` (RFC 9110 §15.5.6) instead of the 404 an unknown path gets: a
 * problem document with code UNSUPPORTED, as every HTTP status Nest or Fastify
 * raises is translated (problem-details.ts codeForHttpStatus). Every route is
 * seen as it is added (onRoute, so this is registered before any route); a
 * request no route matched (`is404`) looks its path up among them.
 */
export function registerMethodNotAllowed(fastify: FastifyInstance): void {
  const routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];
  const byUrl = new Map<string, Set<string>>();
  fastify.addHook('onRoute', (route) => {
    // A catch-all (CORS preflights' `OPTIONS *`) says nothing of which paths exist.
    if (/^\/?\*$/.test(route.url)) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    let known = byUrl.get(route.url);
    if (known === undefined) {
      known = new Set();
      byUrl.set(route.url, known);
      routes.push({ pattern: patternOf(route.url), methods: known });
    }
    for (const method of methods) known.add(method.toUpperCase());
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    if (!request.is404) return done();
    const path = request.url.split('?')[0] ?? '/';
    const allowed = new Set<string>();
    for (const route of routes) {
      if (route.pattern.test(path)) for (const m of route.methods) allowed.add(m);
    }
    if (allowed.size === 0 || allowed.has(request.method)) return done();
    const allow = [...allowed].sort().join(', ');
    void reply.header('allow', allow);
    sendProblem(
      new HttpException(
        `${request.method} is not allowed on ${path}; it takes ${allow}`,
        HttpStatus.METHOD_NOT_ALLOWED,
      ),
      request,
      reply,
    );
  });
}
