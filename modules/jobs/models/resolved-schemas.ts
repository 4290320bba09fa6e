/**
 * Pieces of the `resolved` schemas the features declare for their job types
 * (what the request meant against the live state when it was accepted).
 */
import type { SchemaObject } from '@nestjs/swagger';
import { S } from '#src/openapi/schema-variants.js';

/** Every job's `resolved` carries the domain's UUID (null for a host's job: storage). */
export function resolvedOf(
  properties: Record<string, SchemaObject>,
  options: { optional?: readonly string[]; hostJob?: boolean } = {},
): SchemaObject {
  return S.object(
    {
      ...properties,
      // A host job's is null, typed `string | null` all the same: openapi-fetch drops a
      // property whose type is null alone, and a client annotating a Job would not compile.
      domainUuid: options.hostJob
        ? S.nullable(S.string('A job on a host object: null (no domain)'))
        : S.string("The domain's UUID: the worker finds it by it, whatever its name by then"),
    },
    { optional: options.optional ?? [] },
  );
}

/** One image of a disk's chain as a request named it, and what that meant then. */
export const CHAIN_MEMBER_REF: SchemaObject = S.object(
  {
    given: S.nullable(
      S.string('As the request gave it (`vda[3]` or a path); null when the gateway chose it'),
    ),
    path: S.string("The image's path: what identifies it whatever libvirt's indexes become"),
    index: S.nullable(S.integer("libvirt's index of the image then")),
    depth: S.integer('Its depth then (0: the image the guest writes to)'),
  },
  { description: 'An image of the chain as the request named it, resolved at request time' },
);
