/**
 * Depth, cost, alias and directive limits of GraphQL operations, measured
 * in one walk over the document in which every fragment is measured once
 * (memoised), so the walk is linear in the document's size however often
 * fragments spread each other: 30 fragments that each spread the next one
 * twice describe 2^30 fields and are measured in 30 steps. A fragment that
 * spreads itself (directly or not) is an error, not skipped.
 *
 * The walk runs twice per request: before graphql-js validates the document
 * (some validation rules are superlinear: a bomb must not reach them), with
 * the request's variables taken as they come, and again just before
 * execution with the variables coerced (authoritative: Mercurius skips
 * validation, and the first walk, for a document it has cached).
 *
 * - Depth: fields nested in fields; the root fields are depth 1. Introspection
 *   fields (`__schema`, `__type`, `__typename`) and what they select do not
 *   count: tools' introspection queries are deep. (How deep any document may
 *   nest is bounded before parsing, see document-limits.ts.)
 * - Cost: every field costs 1 plus what it selects, and a connection field
 *   costs its selection once per item asked for (`first`, default page size):
 *   an estimate of the nodes the answer holds. Fields may declare their own
 *   estimate with `complexity` in their @Field/@ResolveField options. A field
 *   under @skip(if: true) / @include(if: false) costs nothing. Introspection
 *   counts too: a list of the schema's types, fields, arguments… costs its
 *   selection once per item the schema has (on average), so a query of the
 *   whole schema costs about the size of its answer.
 *   All the root fields of an operation share one budget, mutations included.
 * - Aliases and directives: how many the operation holds once its fragments
 *   are expanded (a fragment spread twice counts twice).
 * - One response name at most MAX_REPEATS times in one selection set (inline
 *   fragments included): graphql-js compares such fields pairwise, in
 *   quadratic time, and no client needs to ask for a field twenty times.
 * - Introspection (`__schema`, `__type`) is refused unless enabled.
 *
 * Over a limit, the operation is refused as a whole, before it runs, with
 * `extensions.code` INVALID_ARGUMENT (the caller must change the operation)
 * and `extensions.limit` naming which limit, its maximum and the operation's
 * value.
 */
import {
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  TypeNameMetaFieldDef,
  getArgumentValues,
  getDirectiveValues,
  getNamedType,
  getOperationAST,
  getVariableValues,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isUnionType,
  type DirectiveNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { ErrorCode } from '../common/errors/app-error.js';

export interface QueryLimits {
  /** GRAPHQL_MAX_DEPTH */
  maxDepth: number;
  /** GRAPHQL_MAX_COST */
  maxCost: number;
  /** GRAPHQL_MAX_ALIASES */
  maxAliases: number;
  /** GRAPHQL_MAX_DIRECTIVES */
  maxDirectives: number;
  /** GRAPHQL_INTROSPECTION: whether `__schema` and `__type` may be asked for. */
  introspection: boolean;
}

export interface OperationToCheck {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

/** What a selection set (or a whole operation) measures. */
interface Measure {
  depth: number;
  cost: number;
  aliases: number;
  directives: number;
}

const ZERO: Measure = { depth: 0, cost: 0, aliases: 0, directives: 0 };

/** How often one response name may appear in one selection set (see above). */
export const MAX_REPEATS = 20;

/**
 * The limit the operation that is about to run exceeds, as a GraphQL error,
 * or null when it is within all of them. Its variables must coerce: when they
 * do not, that is the error (execution would refuse them the same way).
 */
export function checkQueryLimits(op: OperationToCheck, limits: QueryLimits): GraphQLError | null {
  const operation = getOperationAST(op.document, op.operationName ?? undefined);
  if (!operation) return null; // nothing will execute: graphql reports the missing operation itself
  const coerced = getVariableValues(
    op.schema,
    operation.variableDefinitions ?? [],
    op.variables ?? {},
    { maxErrors: 1 },
  );
  if (coerced.errors) return coerced.errors[0] ?? null;
  const walk = new LimitWalk(op.schema, op.document, coerced.coerced, limits);
  return walk.check(operation);
}

/**
 * The same limits, checked on a document not yet validated, for every
 * operation it holds: the variables are the request's as given (a value
 * that does not coerce counts as absent; the check before execution is
 * exact). Unknown fields and fragments measure nothing here: validation
 * reports them.
 */
export function checkDocumentLimits(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: unknown,
  limits: QueryLimits,
): GraphQLError | null {
  const given =
    typeof variables === 'object' && variables !== null && !Array.isArray(variables)
      ? (variables as Record<string, unknown>)
      : {};
  const walk = new LimitWalk(schema, document, given, limits);
  for (const d of document.definitions) {
    if (d.kind !== Kind.OPERATION_DEFINITION) continue;
    const error = walk.check(d);
    if (error) return error;
  }
  return null;
}

/** An error that ends the walk: a limit, a cycle, introspection when it is off. */
class Refusal extends Error {
  constructor(readonly error: GraphQLError) {
    super(error.message);
  }
}

class LimitWalk {
  private readonly fragments = new Map<string, FragmentDefinitionNode>();
  private readonly measured = new Map<string, Measure>();
  /** The fragments being measured, outermost first: a spread of one of them is a cycle. */
  private readonly visiting: string[] = [];
  private readonly bounds: IntrospectionBounds;

  constructor(
    private readonly schema: GraphQLSchema,
    document: DocumentNode,
    private readonly variables: Record<string, unknown>,
    private readonly limits: QueryLimits,
  ) {
    for (const d of document.definitions) {
      if (d.kind === Kind.FRAGMENT_DEFINITION) this.fragments.set(d.name.value, d);
    }
    this.bounds = introspectionBounds(schema);
  }

  check(operation: OperationDefinitionNode): GraphQLError | null {
    let m: Measure;
    try {
      const root = this.schema.getRootType(operation.operation) ?? undefined;
      m = this.selectionSet(operation.selectionSet, root);
      m = { ...m, directives: m.directives + (operation.directives?.length ?? 0) };
    } catch (err) {
      if (err instanceof Refusal) return err.error;
      throw err;
    }
    const { maxDepth, maxCost, maxAliases, maxDirectives } = this.limits;
    if (m.depth > maxDepth) {
      return limitError(
        'depth',
        maxDepth,
        m.depth,
        `the operation nests fields ${m.depth} deep; the limit is ${maxDepth} (GRAPHQL_MAX_DEPTH)`,
      );
    }
    if (m.aliases > maxAliases) {
      return limitError(
        'aliases',
        maxAliases,
        m.aliases,
        `the operation has ${shown(m.aliases)} aliases (fragments expanded); the limit is ${maxAliases} (GRAPHQL_MAX_ALIASES)`,
      );
    }
    if (m.directives > maxDirectives) {
      return limitError(
        'directives',
        maxDirectives,
        m.directives,
        `the operation has ${shown(m.directives)} directives (fragments expanded); the limit is ${maxDirectives} (GRAPHQL_MAX_DIRECTIVES)`,
      );
    }
    if (m.cost > maxCost) {
      return limitError(
        'cost',
        maxCost,
        m.cost,
        `the operation's estimated cost is ${shown(m.cost)}; the limit is ${maxCost} (GRAPHQL_MAX_COST): ask for smaller pages (first) or fewer fields`,
      );
    }
    return null;
  }

  /**
   * `names` counts the response names of the selection set the fields land
   * in: an inline fragment's fields land in the enclosing one.
   */
  private selectionSet(
    set: SelectionSetNode | undefined,
    type: GraphQLNamedType | undefined,
    names = new Map<string, number>(),
  ): Measure {
    if (!set) return ZERO;
    let depth = 0;
    let cost = 0;
    let aliases = 0;
    let directives = 0;
    for (const s of set.selections) {
      directives += s.directives?.length ?? 0;
      const included = this.included(s.directives);
      let m: Measure;
      if (s.kind === Kind.FIELD) {
        const responseName = (s.alias ?? s.name).value;
        const seen = (names.get(responseName) ?? 0) + 1;
        if (seen > MAX_REPEATS) {
          throw new Refusal(
            limitError(
              'repeats',
              MAX_REPEATS,
              seen,
              `${responseName} is asked for more than ${MAX_REPEATS} times in one selection set`,
            ),
          );
        }
        names.set(responseName, seen);
        m = this.field(s, type);
        if (s.alias) aliases += 1;
      } else if (s.kind === Kind.INLINE_FRAGMENT) {
        const on = s.typeCondition ? this.schema.getType(s.typeCondition.name.value) : type;
        m = this.selectionSet(s.selectionSet, on ?? undefined, names);
      } else {
        m = this.fragment(s.name.value);
      }
      if (m.depth > depth) depth = m.depth;
      if (included) cost += m.cost;
      aliases += m.aliases;
      directives += m.directives;
    }
    return { depth, cost, aliases, directives };
  }

  private fragment(name: string): Measure {
    const known = this.measured.get(name);
    if (known) return known;
    const fragment = this.fragments.get(name);
    if (!fragment) return ZERO; // validation reports the unknown fragment
    if (this.visiting.includes(name)) {
      const cycle = [...this.visiting.slice(this.visiting.indexOf(name)), name].join(' → ');
      throw new Refusal(
        new GraphQLError(
          `fragment ${name} spreads itself (${cycle}): fragments may not form a cycle`,
          {
            nodes: [fragment],
            extensions: { code: ErrorCode.INVALID_ARGUMENT },
          },
        ),
      );
    }
    this.visiting.push(name);
    const inner = this.selectionSet(
      fragment.selectionSet,
      this.schema.getType(fragment.typeCondition.name.value) ?? undefined,
    );
    this.visiting.pop();
    const m = { ...inner, directives: inner.directives + (fragment.directives?.length ?? 0) };
    this.measured.set(name, m);
    return m;
  }

  private field(node: FieldNode, parent: GraphQLNamedType | undefined): Measure {
    const name = node.name.value;
    const introspection = name.startsWith('__');
    if ((name === '__schema' || name === '__type') && !this.limits.introspection) {
      throw new Refusal(
        new GraphQLError(
          `introspection (${name}) is off on this gateway (GRAPHQL_INTROSPECTION); the schema is published as openapi/schema.graphql and at /docs/schema.graphql`,
          { nodes: [node], extensions: { code: ErrorCode.INVALID_ARGUMENT } },
        ),
      );
    }
    const def = fieldDefinition(this.schema, parent, name);
    const child = this.selectionSet(node.selectionSet, def ? getNamedType(def.type) : undefined);
    return {
      // Introspection does not count in depth, nor does what it selects.
      depth: introspection ? 0 : 1 + child.depth,
      cost: def ? this.fieldCost(def, node, parent, child.cost) : 1 + child.cost,
      aliases: child.aliases,
      directives: child.directives,
    };
  }

  private fieldCost(
    def: GraphQLField<unknown, unknown>,
    node: FieldNode,
    parent: GraphQLNamedType | undefined,
    childComplexity: number,
  ): number {
    const items = parent ? this.bounds.get(`${parent.name}.${def.name}`) : undefined;
    if (items !== undefined) return 1 + items * childComplexity;
    const complexity = (def.extensions as { complexity?: unknown } | undefined)?.complexity;
    if (typeof complexity === 'number') return complexity + childComplexity;
    if (typeof complexity !== 'function') return 1 + childComplexity;
    let args: Record<string, unknown>;
    try {
      args = getArgumentValues(def, node, this.variables);
    } catch {
      args = {}; // only before validation: the check before execution has coerced values
    }
    const cost: unknown = (complexity as (a: object) => unknown)({
      args,
      childComplexity,
      field: def,
      node,
      type: parent,
    });
    if (typeof cost !== 'number' || Number.isNaN(cost)) {
      throw new Refusal(
        new GraphQLError(`the cost of ${parent?.name ?? '?'}.${def.name} could not be estimated`, {
          nodes: [node],
          extensions: { code: ErrorCode.INVALID_ARGUMENT },
        }),
      );
    }
    return cost;
  }

  /** False when @skip(if: true) or @include(if: false) leaves the selection out. */
  private included(directives: readonly DirectiveNode[] | undefined): boolean {
    if (!directives || directives.length === 0) return true;
    const node = { directives };
    try {
      if (getDirectiveValues(GraphQLSkipDirective, node, this.variables)?.if === true) return false;
      if (getDirectiveValues(GraphQLIncludeDirective, node, this.variables)?.if === false) {
        return false;
      }
    } catch {
      // A value that does not coerce (before validation): count the selection.
    }
    return true;
  }
}

function fieldDefinition(
  schema: GraphQLSchema,
  parent: GraphQLNamedType | undefined,
  name: string,
): GraphQLField<unknown, unknown> | undefined {
  if (name === SchemaMetaFieldDef.name && parent === schema.getQueryType()) {
    return SchemaMetaFieldDef;
  }
  if (name === TypeMetaFieldDef.name && parent === schema.getQueryType()) return TypeMetaFieldDef;
  if (name === TypeNameMetaFieldDef.name) return TypeNameMetaFieldDef;
  if (parent && (isObjectType(parent) || isInterfaceType(parent))) return parent.getFields()[name];
  return undefined;
}

/**
 * For each list field of the introspection types (`__Schema.types`,
 * `__Type.fields`…), how many items it holds in this schema per parent, on
 * average over the parents (`__Type.fields`: all types' fields ÷ types), so
 * that a query of the whole schema costs about as many nodes as its answer.
 */
type IntrospectionBounds = ReadonlyMap<string, number>;

const boundsBySchema = new WeakMap<GraphQLSchema, IntrospectionBounds>();

function introspectionBounds(schema: GraphQLSchema): IntrospectionBounds {
  const known = boundsBySchema.get(schema);
  if (known) return known;
  const types = Object.values(schema.getTypeMap());
  const directives = schema.getDirectives();
  let fields = 0;
  let fieldArgs = 0;
  let inputFields = 0;
  let enumValues = 0;
  let interfaces = 0;
  let possibleTypes = 0;
  for (const t of types) {
    if (isObjectType(t) || isInterfaceType(t)) {
      const own = Object.values(t.getFields());
      fields += own.length;
      for (const f of own) fieldArgs += f.args.length;
      interfaces += t.getInterfaces().length;
    }
    if (isInterfaceType(t) || isUnionType(t)) possibleTypes += schema.getPossibleTypes(t).length;
    if (isInputObjectType(t)) inputFields += Object.keys(t.getFields()).length;
    if (isEnumType(t)) enumValues += t.getValues().length;
  }
  let directiveArgs = 0;
  for (const d of directives) directiveArgs += d.args.length;
  const per = (items: number, parents: number) =>
    Math.max(1, Math.ceil(items / Math.max(1, parents)));
  const bounds = new Map<string, number>([
    ['__Schema.types', types.length],
    ['__Schema.directives', directives.length],
    ['__Type.fields', per(fields, types.length)],
    ['__Type.interfaces', per(interfaces, types.length)],
    ['__Type.possibleTypes', per(possibleTypes, types.length)],
    ['__Type.enumValues', per(enumValues, types.length)],
    ['__Type.inputFields', per(inputFields, types.length)],
    ['__Field.args', per(fieldArgs, fields)],
    ['__Directive.args', per(directiveArgs, directives.length)],
  ]);
  boundsBySchema.set(schema, bounds);
  return bounds;
}

/** A count as shown in a message: astronomically large ones as "more than 10^15". */
function shown(n: number): string {
  return n > 1e15 ? 'more than 10^15' : String(n);
}

function limitError(
  limit: 'depth' | 'cost' | 'aliases' | 'directives' | 'repeats',
  maximum: number,
  actual: number,
  message: string,
): GraphQLError {
  return new GraphQLError(message, {
    extensions: {
      code: ErrorCode.INVALID_ARGUMENT,
      limit: { name: limit, maximum, actual: Math.min(actual, Number.MAX_SAFE_INTEGER) },
    },
  });
}
