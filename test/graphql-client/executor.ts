/**
 * A small typed GraphQL executor: the document (a TypedDocumentNode generated
 * by @graphql-codegen from openapi/schema.graphql and the operations beside
 * this file) is printed and POSTed with its variables; the answer is typed by
 * the document. No casts: the one place where JSON becomes the document's
 * result type is a type guard that checks the answer holds every field the
 * operation selected (aliases included, through fragment spreads), so a
 * result the document does not describe is refused instead of trusted.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import {
  Kind,
  print,
  type DefinitionNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/** A GraphQL error as the gateway answers it: extensions.code is the REST problem code. */
export interface GatewayGraphqlError {
  message: string;
  code: string | null;
  path: string;
}

export class GraphqlRequestError extends Error {
  constructor(
    readonly operation: string,
    readonly errors: GatewayGraphqlError[],
    readonly status: number,
  ) {
    super(
      `${operation}: ${errors.map((e) => `${e.code ?? 'no code'} at ${e.path || '-'}: ${e.message}`).join('; ')} (HTTP ${status})`,
    );
  }
}

const isObject = (value: unknown): value is object => typeof value === 'object' && value !== null;

/** An object's own fields, read without asserting its type. */
const fieldsOf = (value: object): Map<string, unknown> => new Map(Object.entries(value));

/**
 * Whether `value` holds every field `set` selects. Null stands for any
 * nullable field (the schema's nullability is the generated types' business);
 * a list checks each item. Inline fragments with a type condition may not
 * apply to the object, so their fields are not required.
 */
function holdsSelection(
  value: unknown,
  set: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
): boolean {
  if (value === null) return true;
  if (Array.isArray(value)) return value.every((item) => holdsSelection(item, set, fragments));
  if (!isObject(value)) return false;
  const fields = fieldsOf(value);
  return set.selections.every((selection) => {
    switch (selection.kind) {
      case Kind.FIELD: {
        const key = selection.alias?.value ?? selection.name.value;
        if (!fields.has(key)) return false;
        return (
          selection.selectionSet === undefined ||
          holdsSelection(fields.get(key), selection.selectionSet, fragments)
        );
      }
      case Kind.FRAGMENT_SPREAD: {
        const fragment = fragments.get(selection.name.value);
        return fragment !== undefined && holdsSelection(value, fragment.selectionSet, fragments);
      }
      case Kind.INLINE_FRAGMENT:
        return (
          selection.typeCondition !== undefined ||
          holdsSelection(value, selection.selectionSet, fragments)
        );
    }
  });
}

const isOperation = (d: DefinitionNode): d is OperationDefinitionNode =>
  d.kind === Kind.OPERATION_DEFINITION;
const isFragment = (d: DefinitionNode): d is FragmentDefinitionNode =>
  d.kind === Kind.FRAGMENT_DEFINITION;

function gatewayErrors(value: unknown): GatewayGraphqlError[] {
  if (!Array.isArray(value)) return [];
  return value.filter(isObject).map((error) => {
    const fields = fieldsOf(error);
    const message = fields.get('message');
    const extensions = fields.get('extensions');
    const code = isObject(extensions) ? fieldsOf(extensions).get('code') : undefined;
    const path = fields.get('path');
    return {
      message: typeof message === 'string' ? message : JSON.stringify(error),
      code: typeof code === 'string' ? code : null,
      path: Array.isArray(path) ? path.join('.') : '',
    };
  });
}

export type Execute = <TResult, TVariables>(
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
) => Promise<TResult>;

/** An executor for the gateway at `url` (its /graphql), authenticated with `token`. */
export function graphqlExecutor(url: string, token: string): Execute {
  return async <TResult, TVariables>(
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
  ): Promise<TResult> => {
    const operation = document.definitions.find(isOperation);
    const name = operation?.name?.value ?? 'anonymous operation';
    if (operation === undefined) throw new Error(`${name}: the document holds no operation`);
    const fragments = new Map(
      document.definitions.filter(isFragment).map((f) => [f.name.value, f]),
    );
    const isResult = (data: unknown): data is TResult =>
      isObject(data) && holdsSelection(data, operation.selectionSet, fragments);

    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: print(document), variables, operationName: name }),
    });
    const body: unknown = await response.json();
    if (!isObject(body)) throw new Error(`${name}: HTTP ${response.status}, no JSON object`);
    const answer = fieldsOf(body);
    const errors = gatewayErrors(answer.get('errors'));
    if (errors.length > 0) throw new GraphqlRequestError(name, errors, response.status);
    const data = answer.get('data');
    if (!isResult(data)) {
      throw new Error(
        `${name}: the answer lacks fields the operation selected: ${JSON.stringify(body)}`,
      );
    }
    return data;
  };
}
