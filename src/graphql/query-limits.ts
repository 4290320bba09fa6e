/**
 * Depth and cost limits of GraphQL operations, checked once an operation is
 * parsed and validated and before any resolver runs, with the request's
 * variables (a page size given as `$first` counts at its value).
 *
 * - Depth: fields nested in fields; the root fields are depth 1. Introspection
 *   fields (`__schema`, `__type`, `__typename`) and what they select do not
 *   count: they never reach libvirt, and tools' introspection queries are deep.
 * - Cost: every field costs 1 plus what it selects, and a connection field
 *   costs its selection once per item asked for (`first`, default page size):
 *   an estimate of the nodes the answer holds. Fields may declare their own
 *   estimate with `complexity` in their @Field/@ResolveField options.
 *
 * Over a limit, the operation is refused as a whole, before it runs, with
 * `extensions.code` INVALID_ARGUMENT (the caller must change the operation)
 * and `extensions.limit` naming which limit, its maximum and the operation's
 * value.
 */
import {
  GraphQLError,
  Kind,
  getOperationAST,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import { fieldExtensionsEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import { ErrorCode } from '../common/errors/app-error.js';

export interface QueryLimits {
  maxDepth: number;
  maxCost: number;
}

export interface OperationToCheck {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

/** The limit an operation exceeds, as a GraphQL error, or null when it is within both. */
export function checkQueryLimits(op: OperationToCheck, limits: QueryLimits): GraphQLError | null {
  const operation = getOperationAST(op.document, op.operationName ?? undefined);
  if (!operation) return null; // nothing will execute: graphql reports the missing operation itself
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of op.document.definitions) {
    if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  }
  const depth = selectionDepth(operation.selectionSet, fragments, new Set());
  if (depth > limits.maxDepth) {
    return limitError(
      'depth',
      limits.maxDepth,
      depth,
      `the operation nests fields ${depth} deep; the limit is ${limits.maxDepth} (GRAPHQL_MAX_DEPTH)`,
    );
  }
  let cost: number;
  try {
    cost = getComplexity({
      schema: op.schema,
      query: op.document,
      operationName: op.operationName ?? undefined,
      variables: op.variables ?? {},
      estimators: [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })],
    });
  } catch {
    // Variables that do not coerce: execution refuses them with a precise message.
    return null;
  }
  if (cost > limits.maxCost) {
    return limitError(
      'cost',
      limits.maxCost,
      cost,
      `the operation's estimated cost is ${cost}; the limit is ${limits.maxCost} (GRAPHQL_MAX_COST): ask for smaller pages (first) or fewer fields`,
    );
  }
  return null;
}

function selectionDepth(
  set: SelectionSetNode | undefined,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  visiting: Set<string>,
): number {
  if (!set) return 0;
  let max = 0;
  for (const s of set.selections) {
    let depth: number;
    if (s.kind === Kind.FIELD) {
      if (s.name.value.startsWith('__')) continue;
      depth = 1 + selectionDepth(s.selectionSet, fragments, visiting);
    } else if (s.kind === Kind.INLINE_FRAGMENT) {
      depth = selectionDepth(s.selectionSet, fragments, visiting);
    } else {
      const name = s.name.value;
      const fragment = fragments.get(name);
      if (!fragment || visiting.has(name)) continue; // validation refuses unknown and cyclic fragments
      visiting.add(name);
      depth = selectionDepth(fragment.selectionSet, fragments, visiting);
      visiting.delete(name);
    }
    if (depth > max) max = depth;
  }
  return max;
}

function limitError(
  limit: 'depth' | 'cost',
  maximum: number,
  actual: number,
  message: string,
): GraphQLError {
  return new GraphQLError(message, {
    extensions: {
      code: ErrorCode.INVALID_ARGUMENT,
      limit: { name: limit, maximum, actual },
    },
  });
}
