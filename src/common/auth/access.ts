import { SetMetadata } from '@nestjs/common';
import type { CallerRole } from './caller.js';

/** Metadata key of a handler's declared access. */
export const ACCESS_KEY = 'virtgate:access';

/**
 * What a REST route or a GraphQL query, mutation or subscription field needs:
 * the least role that may call it. Declared on every handler (or its class);
 * `@Public()` marks the few that need no token. The app refuses to start when
 * a handler declares neither (access-declarations.ts). Scope (which hosts,
 * domains and pools) is checked where the target is known: scope.ts.
 */
export function Access(role: CallerRole): ClassDecorator & MethodDecorator {
  return SetMetadata(ACCESS_KEY, role);
}
