import type { FastifyRequest } from 'fastify';
import type { Caller } from './caller.js';

/**
 * How code outside the auth feature (the GraphQL endpoint before it parses,
 * the docs) authenticates a request exactly as the global guard does. The
 * auth feature provides it. Throws AppError UNAUTHENTICATED (401 with
 * WWW-Authenticate) when the request carries no valid credentials.
 */
export interface RequestAuthenticator {
  authenticate(request: FastifyRequest): Promise<Caller>;
}

/**
 * The value of `Authorization: Bearer <value>`, or null: how every part of
 * the gateway that looks at a bearer value (the authenticator, the rate limit)
 * reads the header.
 */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  return /^bearer +(\S+) *$/i.exec(header)?.[1] ?? null;
}

/** Injection token of the RequestAuthenticator. */
export const REQUEST_AUTHENTICATOR = Symbol('REQUEST_AUTHENTICATOR');
