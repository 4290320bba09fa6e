import type { FastifyReply } from 'fastify';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { TERMINAL_STATES } from '#jobs/job-types.js';
import type { Accepted } from '#jobs/job-submitter.js';
import { MAX_WAIT_SECONDS, type JobsService } from './jobs.service.js';
import type { JobModel } from './models/job.model.js';

/** `Prefer: wait=N` (RFC 7240), N seconds, at most MAX_WAIT_SECONDS; 0 when absent. */
export function preferredWait(prefer: string | undefined): number {
  if (!prefer) return 0;
  for (const part of prefer.split(',')) {
    const m = /^\s*wait\s*=\s*"?(\d+)"?\s*$/i.exec(part);
    if (m) return Math.min(Number(m[1]), MAX_WAIT_SECONDS);
  }
  return 0;
}

/** The Idempotency-Key header, checked: 1-200 printable characters. */
export function idempotencyKeyOf(header: string | string[] | null | undefined): string | undefined {
  // GraphQL passes an explicit null for an argument given as null: no key.
  if (header === undefined || header === null) return undefined;
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined || !/^[\x21-\x7e]{1,200}$/.test(key)) {
    throw new AppError(
      ErrorCode.INVALID_ARGUMENT,
      'Idempotency-Key must be 1-200 printable ASCII characters',
      {
        fields: [{ field: 'Idempotency-Key', message: 'must be 1-200 printable ASCII characters' }],
      },
    );
  }
  return key;
}

/**
 * How every POST that starts a job answers: 202 Accepted with the job and its
 * Location; with `Prefer: wait=N`, after waiting up to N seconds, 200 with the
 * job when it finished meanwhile.
 */
export async function respondWithJob(
  jobs: JobsService,
  reply: FastifyReply,
  accepted: Accepted,
  prefer: string | undefined,
): Promise<JobModel> {
  const wait = preferredWait(prefer);
  let record = accepted.record;
  if (wait > 0 && !TERMINAL_STATES.has(record.state)) record = await jobs.wait(record.id, wait);
  void reply
    .status(TERMINAL_STATES.has(record.state) && wait > 0 ? 200 : 202)
    .header('location', `/v1/jobs/${record.id}`);
  if (wait > 0) void reply.header('preference-applied', `wait=${wait}`);
  return record;
}
