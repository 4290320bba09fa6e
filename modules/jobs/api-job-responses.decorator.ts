import { applyDecorators } from '@nestjs/common';
import { ApiAcceptedResponse, ApiHeader, ApiOkResponse, ApiQuery } from '@nestjs/swagger';
import { StartsJob } from './job-callback.interceptor.js';
import { JOB_EXAMPLES } from './job-examples.js';
import { MAX_WAIT_SECONDS } from './jobs.service.js';
import { JobModel } from './models/job.model.js';

/** One preference the gateway knows: `wait=N` with N from 0 to MAX_WAIT_SECONDS (60), or `respond-async`. */
const PREFERENCE = `(respond-async|wait=(${MAX_WAIT_SECONDS}|[1-5]?[0-9]))`;

/**
 * The `Prefer` request header (RFC 7240) of a route that answers with a job:
 * `wait=N` waits up to N seconds for the job to end; `respond-async` is what
 * the gateway does anyway (202 at once). preferredWait (job-response.ts) reads it.
 */
export function ApiPreferHeader(what = 'finish'): MethodDecorator & ClassDecorator {
  return ApiHeader({
    name: 'Prefer',
    required: false,
    description: `\`wait=N\`: wait up to N seconds (at most ${MAX_WAIT_SECONDS}) for the job to ${what}; \`respond-async\`: answer at once (the default). Comma-separated; other preferences are ignored.`,
    schema: {
      type: 'string',
      pattern: `^\\s*${PREFERENCE}(\\s*,\\s*${PREFERENCE})*\\s*$`,
      example: 'wait=30',
    },
  });
}

/** The headers respondWithJob (job-response.ts) sends with a job, accepted or waited for. */
const JOB_HEADERS = {
  Location: { $ref: '#/components/headers/Location' },
  'Preference-Applied': { $ref: '#/components/headers/Preference-Applied' },
};

/**
 * The answers of respondWithJob: 202 with the job not finished yet, or with
 * `Prefer: wait` 200 with the finished job; both with Location (and
 * Preference-Applied when a wait was honoured).
 */
export function ApiJobReplies(
  accepted: string,
  finished: string,
): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiAcceptedResponse({
      type: JobModel,
      description: accepted,
      headers: JOB_HEADERS,
      examples: { queued: JOB_EXAMPLES.queued },
    }),
    ApiOkResponse({
      type: JobModel,
      description: finished,
      headers: JOB_HEADERS,
      examples: { completed: JOB_EXAMPLES.completed, failed: JOB_EXAMPLES.failed },
    }),
  );
}

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
    ApiPreferHeader(),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        'Makes retries of this request safe: the same key and request give back the same job (for 24 h); the same key with another request is 422',
    }),
    ApiJobReplies(
      'The job, not finished yet (its URL is in Location)',
      'With Prefer: wait, the finished job',
    ),
  );
}
