import {
  CANONICAL_UUID,
  findDomain,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import type { Caller } from './auth/caller.js';
import { domainInScope } from './auth/scope.js';
import { AppError, ErrorCode } from './errors/app-error.js';

/** Shaped like a UUID (8-4-4-4-12) whatever the characters: meant as one. */
const UUID_SHAPED = /^[^-]{8}-[^-]{4}-[^-]{4}-[^-]{4}-[^-]{12}$/;

/**
 * The domain a caller names by canonical UUID or by name: INVALID_ARGUMENT
 * for a malformed UUID, NOT_FOUND when the host has no such domain.
 */
export async function requireDomain(
  c: LibvirtClient,
  ref: string,
  visibleTo?: { caller: Caller; host: string },
): Promise<RemoteDomain> {
  if (UUID_SHAPED.test(ref) && !CANONICAL_UUID.test(ref)) {
    throw new AppError(ErrorCode.INVALID_ARGUMENT, `'${ref}' is a malformed UUID`, {
      fields: [
        { field: 'domain', message: 'a UUID must be 32 hexadecimal digits in the 8-4-4-4-12 form' },
      ],
    });
  }
  const dom = await findDomain(c, ref);
  if (!dom) throw domainNotFound(ref);
  // Outside the caller's scope: as if it did not exist (scope.ts).
  if (visibleTo && !domainInScope(visibleTo.caller, visibleTo.host, dom.name)) {
    throw domainNotFound(ref);
  }
  return dom;
}

/** NOT_FOUND for a domain the caller named. */
export function domainNotFound(ref: string): AppError {
  return new AppError(ErrorCode.NOT_FOUND, `no domain '${ref}' on this host`);
}
