import { ArgsType, Field, Int } from '@nestjs/graphql';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { TERMINAL_STATES } from '#jobs/job-types.js';
import type { JobRecord } from '#jobs/job-store.js';
import { idempotencyKeyOf } from './job-response.js';
import type { Accepted } from '#jobs/job-submitter.js';
import { JobsService, MAX_WAIT_SECONDS } from './jobs.service.js';

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

  @Field(() => String, {
    nullable: true,
    description:
      "When the job ends, POST its final job.state-changed event here, signed as a webhook delivery with the gateway's WEBHOOK_CALLBACK_SECRET (REST: the callbackUrl query parameter)",
  })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  callbackUrl?: string | null;
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
