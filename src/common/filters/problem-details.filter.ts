import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { GqlArgumentsHost } from '@nestjs/graphql';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GraphQLResolveInfo } from 'graphql';
import { noteDenial } from '../audit/denials.js';
import {
  httpProblemFor,
  problemType,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
} from '../errors/problem-details.js';

/**
 * The one translation of errors into HTTP answers: every exception becomes an
 * RFC 9457 application/problem+json body with a stable `code` and the request
 * id. Unexpected errors are logged once, with the request id, and answered 500
 * without internals.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType<string>() === 'graphql') noteGraphqlDenial(exception, host);
    if (host.getType() !== 'http') throw exception;
    const http = host.switchToHttp();
    sendProblem(exception, http.getRequest<FastifyRequest>(), http.getResponse<FastifyReply>());
  }
}

/**
 * Answers any error as a problem document. Also Fastify's own error handler
 * (installed in createApp), for what fails before a request reaches Nest: a
 * body that is not JSON, an empty JSON body.
 */
export function sendProblem(
  exception: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const problem = httpProblemFor(exception);
  if (problem.status === 401 || problem.status === 403) noteDenial(request, problem.code);
  if (problem.logAsError) {
    request.log.error({ err: exception }, 'internal error, answered 500');
  }
  if (reply.sent) return;
  const body: ProblemDetails = {
    type: problemType(problem.code),
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    instance: request.url.split('?')[0] ?? '/',
    code: problem.code,
    requestId: request.id,
    ...(problem.fields.length > 0 ? { errors: [...problem.fields] } : {}),
    ...(problem.oldestEventId !== undefined ? { oldestEventId: problem.oldestEventId } : {}),
  };
  void reply
    .status(problem.status)
    .headers(problem.headers)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .send(body);
}

/**
 * A GraphQL field refused for who the caller is: noted for the audit (the
 * answer may be 200 as a whole), with the field as target. Its error is
 * answered by the GraphQL error formatter.
 */
function noteGraphqlDenial(exception: unknown, host: ArgumentsHost): void {
  const problem = httpProblemFor(exception);
  if (problem.status !== 401 && problem.status !== 403) return;
  const gql = GqlArgumentsHost.create(host);
  const request = gql.getContext<{ req?: FastifyRequest }>().req;
  const info = gql.getInfo<GraphQLResolveInfo | undefined>();
  if (!request) return;
  const field = info ? `${info.parentType.name}.${info.fieldName}` : 'operation';
  noteDenial(request, problem.code, `graphql ${field}`);
}
