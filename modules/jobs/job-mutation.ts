import { ArgsType, Field, Int } from '@nestjs/graphql';
import { IsInt, IsOptional, IsString, Max, Min } from 'class-validator';
import { TERMINAL_STATES } from '#jobs/job-types.js';
import type { JobRecord } from '#jobs/job-store.js';
import { idempotencyKeyOf } from './job-response.js';
import { JobsService, MAX_WAIT_SECONDS, type Accepted } from './jobs.service.js';

/** `wait` of a GraphQL mutation that answers a job: REST's Prefer: wait, as an argument. */
@ArgsType()
export class JobWaitArgs {
  @Field(() => Int, {
    nullable: true,
    description: `Wait up to this many seconds (at most ${MAX_WAIT_SECONDS}) for the job to finish`,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_WAIT_SECONDS)
  wait?: number | null;
}

/**
 * The arguments every GraphQL mutation that starts a job takes besides its
 * own: REST's Idempotency-Key header and Prefer: wait, as arguments.
 */
@ArgsType()
export class JobMutationArgs extends JobWaitArgs {
  @Field(() => String, { nullable: true, description: 'Same key and request: the same job back' })
  @IsOptional()
  @IsString()
  idempotencyKey?: string | null;
}

/** The Idempotency-Key of a mutation, checked as REST checks the header (null: none). */
export function mutationIdempotencyKey(args: JobMutationArgs): string | undefined {
  return idempotencyKeyOf(args.idempotencyKey ?? undefined);
}

/** What a job mutation answers: the job, once finished if `wait` asks for it (as REST's Prefer: wait). */
export async function mutationJob(
  jobs: JobsService,
  accepted: Accepted | JobRecord,
  args: JobWaitArgs,
): Promise<JobRecord> {
  const wait = args.wait ?? 0;
  const record = 'record' in accepted ? accepted.record : accepted;
  return wait > 0 && !TERMINAL_STATES.has(record.state) ? jobs.wait(record.id, wait) : record;
}

/**
 * A GraphQL input as REST would have it: a field given as null is a field not
 * given (GraphQL clients send null for what they leave out; the services,
 * like REST's JSON bodies, tell a field apart by its absence). Deep, and
 * keeping each object's class.
 */
export function withoutNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => withoutNulls(v)) as T;
  if (value === null || typeof value !== 'object') return value;
  const copy = Object.create(Object.getPrototypeOf(value) as object | null) as Record<
    string,
    unknown
  >;
  for (const [k, v] of Object.entries(value)) {
    if (v !== null && v !== undefined) copy[k] = withoutNulls(v);
  }
  return copy as T;
}
