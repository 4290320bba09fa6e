import type { Type } from '@nestjs/common';
import { createUnionType } from '@nestjs/graphql';
import { schemaVariants, type VariantProperty } from '#src/openapi/schema-variants.js';
import { JOB_TYPES, type JobType } from '#jobs/job-types.js';

/**
 * What each job type's `result` is, declared by the feature that runs it
 * (beside its other models): a model class per type, with @ApiProperty for
 * REST and @Field for GraphQL. REST's Job schema becomes the `oneOf` of one
 * Job variant per type (discriminator `type`), each with its own result (and,
 * where declared, its own request and resolved); GraphQL's Job.result is the
 * JobResult union of the classes.
 */
export interface JobTypeContract {
  /** The result's model (null until the job ended, and for a failed job other than a block job). */
  result: Type;
  /** The schema of `request` (the request as given), when typed more tightly than an object. */
  request?: VariantProperty;
  /** The schema of `resolved` (the request resolved against the live state), likewise. */
  resolved?: VariantProperty;
}

const contracts = new Map<JobType, JobTypeContract>();

/** `block.commit` → `BlockCommitJob`: the name of a type's Job variant. */
export function jobVariantName(type: JobType): string {
  return `${type
    .split('.')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('')}Job`;
}

/** Declares what jobs of `type` hold (once per type, by the feature that runs them). */
export function declareJobType(type: JobType, contract: JobTypeContract): void {
  if (contracts.has(type)) throw new Error(`job type ${type} is declared twice`);
  contracts.set(type, contract);
  schemaVariants.declare('Job', 'type', {
    value: type,
    name: jobVariantName(type),
    description: `A job of type \`${type}\``,
    properties: {
      result: { model: contract.result, nullable: true },
      ...(contract.request ? { request: contract.request } : {}),
      ...(contract.resolved ? { resolved: contract.resolved } : {}),
    },
  });
}

/** The job types no feature declared (none, once every feature is loaded). */
export function undeclaredJobTypes(): JobType[] {
  return (Object.keys(JOB_TYPES) as JobType[]).filter((t) => !contracts.has(t));
}

/** Which job type a result object belongs to, for the union's resolveType. */
const resultTypes = new WeakMap<object, JobType>();

/** `result` marked as the result of a job of `type` (GraphQL tells the union's member by it). */
export function typedResult<T extends object>(type: JobType, result: T): T {
  resultTypes.set(result, type);
  return result;
}

export const JobResultUnion = createUnionType({
  name: 'JobResult',
  description:
    'What a job did, one type per job type (Job.type): select the fields with `... on CommitResult { … }`; null until the job ended, and for a failed job other than a block job',
  types: () => {
    const missing = undeclaredJobTypes();
    if (missing.length > 0) throw new Error(`job types without a result: ${missing.join(', ')}`);
    return [...new Set([...contracts.values()].map((c) => c.result))];
  },
  resolveType: (value: object) => {
    const type = resultTypes.get(value);
    const contract = type === undefined ? undefined : contracts.get(type);
    if (!contract) throw new Error('a job result of no known job type');
    return contract.result;
  },
});
