/**
 * GraphQL enums over the gateway's closed sets of names, shared with REST.
 *
 * A GraphQL enum value is a name (`[_A-Za-z][_0-9A-Za-z]*`), so a REST value
 * holding '.' or '-' (`domain.start`, `block-job.ready`, `active-commit`) is
 * written with '_' in their place (`domain_start`, `block_job_ready`,
 * `active_commit`); every other value is the same in both (lower case, as
 * BlockJobKind, DomainAction and JobState have always been). The enum maps
 * both ways: resolvers return, and arguments reach services as, the REST
 * value; only the GraphQL document spells the name.
 */
import { registerEnumType } from '@nestjs/graphql';

/** The GraphQL name of a REST value: '.' and '-' become '_'. */
export function graphqlEnumName(value: string): string {
  return value.replace(/[.-]/g, '_');
}

/** The sentence each such enum's description ends with, so a reader of the schema knows the rule. */
export const enumNameRule = (example: string): string =>
  `GraphQL names are the REST values with '.' and '-' written '_' (${example} is ${graphqlEnumName(example)})`;

/**
 * Registers a GraphQL enum `name` whose values are `values` as REST names
 * them (each under its GraphQL name) and returns it for `@Field(() => …)`.
 * Two values that would get the same name are a bug in the list: refused.
 */
export function registerValueEnum<T extends string>(
  values: readonly T[],
  name: string,
  description?: string,
): Record<string, T> {
  const byName: Record<string, T> = {};
  for (const value of values) {
    const key = graphqlEnumName(value);
    if (!/^[_A-Za-z][_0-9A-Za-z]*$/.test(key))
      throw new Error(`${name}: ${value} has no GraphQL name`);
    if (key in byName) throw new Error(`${name}: ${value} and ${byName[key]} are both ${key}`);
    byName[key] = value;
  }
  const renamed = values.find((v) => graphqlEnumName(v) !== v);
  const text = [description, renamed === undefined ? undefined : enumNameRule(renamed)]
    .filter(Boolean)
    .join('. ');
  registerEnumType(byName, { name, ...(text ? { description: text } : {}) });
  return byName;
}
