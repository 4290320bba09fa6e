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
