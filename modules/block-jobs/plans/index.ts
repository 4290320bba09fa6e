/**
 * Every block job plan, by job type and by the request's `type`: the one
 * place where commit, copy and pull are told apart.
 */
import type { BlockJobType, JobParams } from '#jobs/job-types.js';
import type { ChainOutcome } from '../block-chain.js';
import type { BlockJobKind } from '../dto/start-block-job.dto.js';
import type { BlockJobPlan } from './block-job-plan.js';
import { commitPlan } from './commit.plan.js';
import { copyPlan } from './copy.plan.js';

export { confineCopy } from './copy.plan.js';
import { pullPlan } from './pull.plan.js';

export {
  BLOCK_JOB_DOMAIN_STATES,
  type BlockJobPlan,
  type RequestContext,
} from './block-job-plan.js';

const PLANS = {
  'block.commit': commitPlan,
  'block.copy': copyPlan,
  'block.pull': pullPlan,
} as const satisfies Record<BlockJobType, { readonly type: BlockJobType }>;

/** The plan of a job type. */
export function planOf<T extends BlockJobType>(type: T): BlockJobPlan<T> {
  return PLANS[type] as unknown as BlockJobPlan<T>;
}

/** The plan of a request's `type` (commit, copy, pull), or undefined for any other. */
export function planOfKind(kind: string): BlockJobPlan | undefined {
  return Object.values(PLANS).find((p) => p.kind === (kind as BlockJobKind)) as
    BlockJobPlan | undefined;
}

/** The requests' `type`s, in order. */
export const PLAN_KINDS: readonly BlockJobKind[] = Object.values(PLANS).map((p) => p.kind);

/** The chain (image paths, top first) a job leaves once libvirt has applied it, from the chain it started on. */
export function expectedChain<T extends BlockJobType>(
  type: T,
  params: JobParams[T],
  atStart: readonly string[],
): string[] | null {
  return planOf(type).expectedChain(params, atStart);
}

/** What the live chain says of a job: applied, unchanged (the chain it started on), or neither. */
export function classifyChain<T extends BlockJobType>(
  type: T,
  params: JobParams[T],
  atStart: readonly string[],
  live: readonly string[],
): ChainOutcome {
  return planOf(type).classify(params, atStart, live);
}
