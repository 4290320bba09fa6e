import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Caller } from '../auth/caller.js';
import { AppError, ErrorCode } from '../errors/app-error.js';

/** The authenticated Caller of this request (set by the global BearerAuthGuard). */
export const CurrentCaller = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): Caller => {
    const caller = ctx.switchToHttp().getRequest<FastifyRequest & { user?: Caller }>().user;
    if (!caller) {
      // Only reachable if the decorator is used on a @Public() route.
      throw new AppError(ErrorCode.UNAUTHENTICATED, 'this operation requires a bearer token');
    }
    return caller;
  },
);
