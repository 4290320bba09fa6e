import { Injectable, Logger, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { GqlExecutionContext, type GqlContextType } from '@nestjs/graphql';
import { AuthGuard } from '@nestjs/passport';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { lastValueFrom, type Observable } from 'rxjs';
import { ACCESS_KEY } from '../auth/access.js';
import { requireRole, type Caller, type CallerRole } from '../auth/caller.js';
import { requireHostInScope } from '../auth/scope.js';
import { IS_PUBLIC_KEY } from '../decorators/public.decorator.js';
import { AppError, ErrorCode } from '../errors/app-error.js';
import { shouldLogRejection } from '../logging/rejection-log.js';

/** Passport strategy name of the bearer token strategy (modules/auth/bearer.strategy.ts). */
export const BEARER_STRATEGY = 'bearer';

/**
 * The global guard: every route needs a valid bearer token unless it, or its
 * controller, is @Public(). On success passport sets `request.user` to the Caller.
 * GraphQL operations are guarded the same way, per query and mutation field,
 * with the HTTP request taken from the GraphQL context.
 */
@Injectable()
export class BearerAuthGuard extends AuthGuard(BEARER_STRATEGY) {
  private readonly logger = new Logger(BearerAuthGuard.name);

  constructor(private readonly reflector: Reflector) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    const isPublic = this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC_KEY, targets);
    if (isPublic === true) return true;
    const request = this.getRequest(context) as FastifyRequest & { user?: Caller };
    // Already authenticated for this request (GraphQL authenticates once, before parsing).
    if (!request.user) {
      const passed = super.canActivate(context) as boolean | Promise<boolean> | Observable<boolean>;
      if (!(await lastValue(passed))) return false;
    }
    const caller = request.user;
    if (!caller) return false;
    const needed = this.reflector.getAllAndOverride<CallerRole | undefined>(ACCESS_KEY, targets);
    if (needed !== undefined) requireRole(caller, needed, 'this operation');
    // A route under /v1/hosts/{host}, or a GraphQL field with a `host` argument: a host
    // outside the scope is unknown (404), before any other input is read.
    const host =
      context.getType<GqlContextType>() === 'graphql'
        ? GqlExecutionContext.create(context).getArgs<Record<string, unknown>>().host
        : (request.params as Record<string, unknown> | undefined)?.host;
    if (typeof host === 'string') requireHostInScope(caller, host);
    return true;
  }

  override getRequest(context: ExecutionContext): FastifyRequest {
    if (context.getType<GqlContextType>() === 'graphql') {
      return GqlExecutionContext.create(context).getContext<{ req: FastifyRequest }>().req;
    }
    return context.switchToHttp().getRequest<FastifyRequest>();
  }

  getResponse(context: ExecutionContext): FastifyReply {
    if (context.getType<GqlContextType>() === 'graphql') {
      return GqlExecutionContext.create(context).getContext<{ reply: FastifyReply }>().reply;
    }
    return context.switchToHttp().getResponse<FastifyReply>();
  }

  /**
   * Called by AuthGuard with passport's outcome: the Caller, or false and the
   * challenge passport-http-bearer built (it names `invalid_token` when a token
   * was given but matched none).
   */
  override handleRequest<TUser = Caller>(
    err: unknown,
    caller: TUser | false,
    info: unknown,
    context?: ExecutionContext,
  ): TUser {
    if (err) throw err;
    if (!caller) {
      const invalid = typeof info === 'string' && info.includes('invalid_token');
      // Noted, for the failed-authentication limit (GraphQL answers 200 all the same), and
      // sampled: a flood of bad tokens logs its first few, then a count per address.
      const request = context ? this.getRequest(context) : undefined;
      const logIt = request ? shouldLogRejection(request, 'unauthenticated') : true;
      if (invalid && logIt) this.logger.log('rejected a bearer token that matches no token');
      throw new AppError(
        ErrorCode.UNAUTHENTICATED,
        invalid
          ? 'the bearer token is not valid'
          : 'this request needs a bearer token (Authorization: Bearer <token>)',
      );
    }
    return caller;
  }
}

async function lastValue(
  value: boolean | Promise<boolean> | Observable<boolean>,
): Promise<boolean> {
  if (typeof value === 'boolean') return value;
  if (value instanceof Promise) return value;
  return lastValueFrom(value);
}
