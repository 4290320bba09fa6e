import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Caller } from '#src/common/auth/caller.js';
import { bearerToken, type RequestAuthenticator } from '#src/common/auth/authenticator.js';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { JwtAuthenticator } from './jwt-authenticator.js';
import { TokensService } from './tokens.service.js';

/**
 * Turns presented credentials into a Caller: the one place a bearer value is
 * checked, used by the passport strategy (the global guard), by the GraphQL
 * endpoint before it parses, and by the docs.
 */
@Injectable()
export class TokenAuthenticator implements RequestAuthenticator {
  constructor(
    private readonly tokens: TokensService,
    private readonly jwt: JwtAuthenticator,
  ) {}

  /**
   * The Caller a bearer value stands for, or null when it stands for none.
   * When JWT is configured, a value shaped like a JWT is verified as one (and
   * a refused JWT throws AppError UNAUTHENTICATED saying why); anything else
   * is looked up among the API tokens.
   */
  async callerFor(token: string, requestId: string, address?: string): Promise<Caller | null> {
    if (this.jwt.handles(token)) return this.jwt.callerFor(token, requestId);
    const record = await this.tokens.findByToken(token);
    if (!record) return null;
    if (address !== undefined) this.tokens.noteUse(token, record.id, address);
    return { id: record.id, role: record.role, scopes: record.scopes, requestId };
  }

  async authenticate(request: FastifyRequest): Promise<Caller> {
    const existing = (request as FastifyRequest & { user?: Caller }).user;
    if (existing) return existing;
    const token = bearerToken(request.headers.authorization);
    if (token === null) {
      throw new AppError(
        ErrorCode.UNAUTHENTICATED,
        'this request needs a bearer token (Authorization: Bearer <token>)',
      );
    }
    const caller = await this.callerFor(token, request.id, request.ip);
    if (!caller) throw new AppError(ErrorCode.UNAUTHENTICATED, 'the bearer token is not valid');
    (request as FastifyRequest & { user?: Caller }).user = caller;
    return caller;
  }
}
