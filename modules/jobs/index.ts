/**
 * What other features use of the jobs feature: answering with a job over
 * REST (202 + Location, Prefer: wait) and GraphQL (idempotencyKey, wait),
 * the Job model, and the service that waits for jobs.
 */
export { ApiJobResponses } from './api-job-responses.decorator.js';
export {
  JobMutationArgs,
  JobWaitArgs,
  mutationIdempotencyKey,
  mutationJob,
} from './job-mutation.js';
export { idempotencyKeyOf, respondWithJob } from './job-response.js';
export { JobsModule } from './jobs.module.js';
export { JobsService } from './jobs.service.js';
export { JobModel } from './models/job.model.js';
