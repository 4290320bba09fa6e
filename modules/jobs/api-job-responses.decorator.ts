import { applyDecorators } from '@nestjs/common';
import { ApiAcceptedResponse, ApiHeader, ApiOkResponse, ApiQuery } from '@nestjs/swagger';
import { StartsJob } from './job-callback.interceptor.js';
import { JobModel } from './models/job.model.js';

/**
 * What every route that starts a job documents: Prefer, Idempotency-Key,
 * callbackUrl, 202 (or 200 with Prefer: wait). It also marks the route as
 * one that takes `callbackUrl` (JobCallbackInterceptor).
 */
export function ApiJobResponses(): MethodDecorator & ClassDecorator {
  return applyDecorators(
    StartsJob(),
    ApiQuery({
      name: 'callbackUrl',
      required: false,
      schema: { type: 'string', format: 'uri', maxLength: 2048 },
      description:
        "When the job ends, its final job.state-changed event is POSTed here, signed as a webhook delivery (Standard Webhooks) with the gateway's WEBHOOK_CALLBACK_SECRET; checked as a webhook URL is (400 when refused, 409 when the gateway has no callback secret)",
    }),
    ApiHeader({
      name: 'Prefer',
      required: false,
      description: 'wait=N: wait up to N seconds (at most 60) for the job to finish',
    }),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        'Makes retries of this request safe: the same key and request give back the same job (for 24 h); the same key with another request is 422',
    }),
    ApiAcceptedResponse({
      type: JobModel,
      description: 'The job, not finished yet (its URL is in Location)',
    }),
    ApiOkResponse({ type: JobModel, description: 'With Prefer: wait, the finished job' }),
  );
}
