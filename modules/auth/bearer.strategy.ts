import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import passport from 'passport';
import { Strategy } from 'passport-http-bearer';
import type { Caller } from '#src/common/auth/caller.js';
import { BEARER_STRATEGY } from '#src/common/guards/bearer-auth.guard.js';
import { TokenAuthenticator } from './request-authenticator.js';

type PassportRequest = Parameters<Strategy<never>['authenticate']>[0];

/** What the strategy hands to passport-http-bearer: the header only, and the request id. */
interface BearerInput {
  headers: { authorization?: string };
  id: string;
  ip: string;
}

/**
 * passport-http-bearer over our token store: `Authorization: Bearer <token>`
 * resolves to the token's Caller. Tokens in the query string or body (which
 * passport-http-bearer also accepts) are ignored: they end up in logs.
 */
@Injectable()
export class BearerStrategy
  extends PassportStrategy(Strategy, BEARER_STRATEGY)
  implements OnApplicationShutdown
{
  constructor(private readonly authenticator: TokenAuthenticator) {
    super({ realm: 'virtgate', passReqToCallback: true });
  }

  /** Called by passport with the Fastify request (typed for Express by @types/passport-http-bearer). */
  override authenticate(req: PassportRequest, options?: object): void {
    const { headers, id, ip } = req as unknown as FastifyRequest;
    const input: BearerInput = { headers: { authorization: headers.authorization }, id, ip };
    super.authenticate(input as unknown as PassportRequest, options);
  }

  async validate(req: BearerInput, token: string): Promise<Caller | false> {
    return (await this.authenticator.callerFor(token, req.id, req.ip)) ?? false;
  }

  /** passport's strategy registry is process-wide: leave it to the next app once this one closes. */
  onApplicationShutdown(): void {
    const registry = passport as unknown as { _strategy(name: string): unknown };
    if (registry._strategy(BEARER_STRATEGY) === this) passport.unuse(BEARER_STRATEGY);
  }
}
