import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Caller } from '../auth/caller.js';
import type { AuditLog } from './audit-log.js';

/** What answered a request with a denial, noted where the error was turned into an answer. */
interface Denial {
  readonly code: string;
  /** What was refused, when more precise than the request's method and path (a GraphQL field). */
  readonly target: string | null;
}

const denials = new WeakMap<FastifyRequest, Denial>();

/** Longest target kept from a request path. */
const MAX_TARGET_LENGTH = 256;

/**
 * Notes that `request` was refused with `code` (UNAUTHENTICATED, FORBIDDEN,
 * PATH_NOT_ALLOWED…). Called where errors become answers (the problem-details
 * filter, for REST and for each GraphQL field). The first denial of a request
 * is the one recorded: a GraphQL operation whose fields are all refused is one
 * entry, not one per field.
 */
export function noteDenial(
  request: FastifyRequest,
  code: string,
  target: string | null = null,
): void {
  if (!denials.has(request)) denials.set(request, { code, target });
}

/**
 * Records every denied request once, when its answer has gone: any 401 or 403
 * answer (whoever sent it: the guard, a service, the docs' check, a Fastify
 * hook), and any request a denial was noted for (a GraphQL field refused inside
 * an answer that is 200 as a whole). Answers are never held up by the audit.
 */
export function registerDenialAudit(fastify: FastifyInstance, audit: AuditLog): void {
  fastify.addHook('onResponse', async (request, reply) => {
    const noted = denials.get(request);
    const status = reply.statusCode;
    if (noted === undefined && status !== 401 && status !== 403) return;
    const code = noted?.code ?? (status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN');
    const unauthenticated = code === 'UNAUTHENTICATED';
    const caller = (request as FastifyRequest & { user?: Caller }).user;
    const path = (request.url.split('?')[0] ?? '/').slice(0, MAX_TARGET_LENGTH);
    await audit.record({
      actor: unauthenticated || !caller ? null : { id: caller.id, role: caller.role },
      action: unauthenticated ? 'auth.denied' : 'access.denied',
      target: noted?.target ?? `${request.method} ${path}`,
      host: null,
      requestId: request.id,
      address: request.ip,
      result: 'denied',
      code,
      ...(unauthenticated
        ? { detail: { credentials: request.headers.authorization ? 'invalid' : 'none' } }
        : {}),
    });
  });
}
