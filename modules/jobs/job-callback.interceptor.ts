import {
  Injectable,
  SetMetadata,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { GqlExecutionContext, type GqlContextType } from '@nestjs/graphql';
import type { FastifyRequest } from 'fastify';
import type { Observable } from 'rxjs';
import { withJobCallback } from '#jobs/job-callback.js';
import { invalidField } from '#src/common/errors/app-error.js';

/** Metadata of a REST route that starts a job (set by ApiJobResponses). */
export const STARTS_JOB = 'virtgate:starts-job';

/** Marks a REST route as starting a job: it takes `callbackUrl`. */
export const StartsJob = (): MethodDecorator & ClassDecorator => SetMetadata(STARTS_JOB, true);

/**
 * Carries the `callbackUrl` of a job request to JobSubmitter (jobs/job-callback.ts)
 * without the features passing it along: on a REST route that starts a job it
 * takes the `callbackUrl` query parameter out of the query (before the query's
 * DTO is validated), on a GraphQL mutation the `callbackUrl` argument of
 * JobMutationArgs, and runs the handler with it. The URL is checked when the
 * job is submitted.
 */
@Injectable()
export class JobCallbackInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const type = context.getType<GqlContextType>();
    if (type === 'graphql') {
      const args = GqlExecutionContext.create(context).getArgs<Record<string, unknown>>();
      if (!Object.hasOwn(args, 'callbackUrl')) return next.handle();
      const url = args.callbackUrl;
      if (url !== null && url !== undefined && typeof url !== 'string') {
        throw invalidField('callbackUrl', 'must be a URL');
      }
      return withJobCallback(url ?? undefined, () => next.handle());
    }
    if (type !== 'http' || this.reflector.get(STARTS_JOB, context.getHandler()) !== true) {
      return next.handle();
    }
    const query = context.switchToHttp().getRequest<FastifyRequest>().query as
      Record<string, unknown> | undefined;
    if (!query || !Object.hasOwn(query, 'callbackUrl')) return next.handle();
    const raw = query.callbackUrl;
    delete query.callbackUrl;
    if (typeof raw !== 'string') throw invalidField('callbackUrl', 'must be given once, a URL');
    return withJobCallback(raw, () => next.handle());
  }
}
