import { applyDecorators } from '@nestjs/common';
import { ApiAcceptedResponse, ApiHeader, ApiOkResponse } from '@nestjs/swagger';
import { JobModel } from './models/job.model.js';

/** What every route that starts a job documents: Prefer, Idempotency-Key, 202 (or 200 with Prefer: wait). */
export function ApiJobResponses(): MethodDecorator & ClassDecorator {
  return applyDecorators(
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
