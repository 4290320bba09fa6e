import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { GqlExecutionContext, type GqlContextType } from '@nestjs/graphql';
import type { FastifyRequest } from 'fastify';
import type { Caller } from '../auth/caller.js';
import { AppError, ErrorCode } from '../errors/app-error.js';

/**
 * The authenticated Caller of this request (set by the global BearerAuthGuard),
 * in controllers and in GraphQL resolvers alike.
 */
export const CurrentCaller = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): Caller => {
    const request =
      ctx.getType<GqlContextType>() === 'graphql'
        ? GqlExecutionContext.create(ctx).getContext<{ req: FastifyRequest }>().req
        : ctx.switchToHttp().getRequest<FastifyRequest>();
    const caller = (request as FastifyRequest & { user?: Caller }).user;
    if (!caller) {
      // Only reachable if the decorator is used on a @Public() route.
      throw new AppError(ErrorCode.UNAUTHENTICATED, 'this operation requires a bearer token');
    }
    return caller;
  },
);
