/**
 * A GraphQL input as REST would have it: a field given as null is a field not
 * given (GraphQL clients send null for what they leave out; the services,
 * like REST's JSON bodies, tell a field apart by its absence). Deep, and
 * keeping each object's class. Iterative (an explicit stack), so no input,
 * however deep, can overflow the call stack.
 */
export function withoutNulls<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  const root = emptyLike(value as object);
  // Each entry: a source container and its copy, whose members are still to fill.
  const stack: Array<[object, Record<string | number, unknown>]> = [[value as object, root]];
  while (stack.length > 0) {
    const [source, copy] = stack.pop()!;
    if (Array.isArray(source)) {
      // An array keeps its nulls (as before): only objects' null fields are dropped.
      for (let i = 0; i < source.length; i++) copy[i] = member(source[i] as unknown);
    } else {
      for (const [k, v] of Object.entries(source)) {
        if (v !== null && v !== undefined) copy[k] = member(v);
      }
    }
  }
  return root as T;

  function member(v: unknown): unknown {
    if (v === null || typeof v !== 'object') return v;
    const child = emptyLike(v);
    stack.push([v, child]);
    return child;
  }
}

function emptyLike(value: object): Record<string | number, unknown> {
  if (Array.isArray(value)) return [] as unknown as Record<number, unknown>;
  return Object.create(Object.getPrototypeOf(value) as object | null) as Record<string, unknown>;
}
