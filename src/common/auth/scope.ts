import { AppError, ErrorCode } from '../errors/app-error.js';
import type { Caller, HostScope } from './caller.js';

/**
 * The scope rule, the same on REST and GraphQL:
 * - what is outside the caller's scope does not exist for it: reads and
 *   actions on it answer 404 NOT_FOUND, exactly as for a name that exists
 *   nowhere, so a scoped token learns nothing of what it may not see;
 * - what the caller sees but its role may not change answers 403 FORBIDDEN;
 * - a new name (a domain to define, a volume to create) outside the scope's
 *   patterns answers 403 FORBIDDEN: there is nothing to hide yet.
 * Lists are filtered to the scope.
 */

/** Whether the caller reaches everything (no scope). */
export function isUnscoped(caller: Caller): boolean {
  return caller.scopes === null;
}

function hostScope(caller: Caller, host: string): HostScope | null | undefined {
  if (caller.scopes === null) return undefined; // everything
  return caller.scopes.find((s) => s.host === host) ?? null;
}

/** Whether the caller's scope covers host `host`. */
export function hostInScope(caller: Caller, host: string): boolean {
  return hostScope(caller, host) !== null;
}

/**
 * The patterns a host scope reaches, each list undefined for "all". A host
 * scope that names neither domains nor pools reaches everything on the host;
 * once it names either, what it does not name it does not reach: a token
 * scoped to `web-*` domains reaches no pool (and so no disk image other
 * domains may use), unless its scope names pools too.
 */
export function effectivePatterns(scope: HostScope): {
  domains: readonly string[] | undefined;
  pools: readonly string[] | undefined;
} {
  if (scope.domains === undefined && scope.pools === undefined) {
    return { domains: undefined, pools: undefined };
  }
  return { domains: scope.domains ?? [], pools: scope.pools ?? [] };
}

/** Whether the caller's scope covers domain `name` on `host`. */
export function domainInScope(caller: Caller, host: string, name: string): boolean {
  const scope = hostScope(caller, host);
  if (scope === undefined) return true;
  if (scope === null) return false;
  const { domains } = effectivePatterns(scope);
  return domains === undefined || domains.some((p) => matchesPattern(p, name));
}

/**
 * domainInScope for many names of one host: the scope is looked up once, and
 * a pattern that is a literal prefix followed by `*` (`web-*`) is a prefix test.
 */
export function domainMatcher(caller: Caller, host: string): (name: string) => boolean {
  const scope = hostScope(caller, host);
  if (scope === undefined) return () => true;
  if (scope === null) return () => false;
  const { domains } = effectivePatterns(scope);
  if (domains === undefined) return () => true;
  const tests = domains.map((p): ((name: string) => boolean) => {
    const star = p.indexOf('*');
    if (star === p.length - 1 && !p.includes('?')) {
      const literal = p.slice(0, -1);
      return (name) => name.startsWith(literal);
    }
    return (name) => matchesPattern(p, name);
  });
  return (name) => tests.some((t) => t(name));
}

/** Whether the caller's scope covers storage pool `name` on `host`. */
export function poolInScope(caller: Caller, host: string, name: string): boolean {
  const scope = hostScope(caller, host);
  if (scope === undefined) return true;
  if (scope === null) return false;
  const { pools } = effectivePatterns(scope);
  return pools === undefined || pools.some((p) => matchesPattern(p, name));
}

/** NOT_FOUND for a host the caller's scope does not cover (the message of an unknown host). */
export function requireHostInScope(caller: Caller, host: string): void {
  if (!hostInScope(caller, host)) {
    throw new AppError(ErrorCode.NOT_FOUND, `no host named '${host}' is registered`);
  }
}

/** FORBIDDEN for a new domain name outside the caller's patterns. */
export function requireNewDomainInScope(caller: Caller, host: string, name: string): void {
  if (!domainInScope(caller, host, name)) {
    throw new AppError(
      ErrorCode.FORBIDDEN,
      `the token's scope does not cover a domain named "${name}" on host "${host}"`,
    );
  }
}

/** A shell-style pattern (`*` any run, `?` one character) matched against the whole of `name`. */
export function matchesPattern(pattern: string, name: string): boolean {
  // Iterative glob match with backtracking on the last `*`: linear in practice, no regex.
  let p = 0;
  let n = 0;
  let star = -1;
  let mark = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === name[n])) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = n;
    } else if (star !== -1) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Whether scope list `inner` reaches nothing `outer` does not (null: everything). */
export function scopesWithin(
  inner: readonly HostScope[] | null,
  outer: readonly HostScope[] | null,
): boolean {
  if (outer === null) return true;
  if (inner === null) return false;
  return inner.every((i) => {
    const o = outer.find((s) => s.host === i.host);
    if (!o) return false;
    const [ie, oe] = [effectivePatterns(i), effectivePatterns(o)];
    return patternsWithin(ie.domains, oe.domains) && patternsWithin(ie.pools, oe.pools);
  });
}

/**
 * Whether every name `inner` matches is matched by `outer` (undefined: all).
 * Decided conservatively: an inner pattern is within when some outer pattern
 * matches it read as a literal name, which holds for `web-*` within `web-*`
 * or `*`, and for `web-1` within `web-*`.
 */
function patternsWithin(
  inner: readonly string[] | undefined,
  outer: readonly string[] | undefined,
): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return inner.every((i) => outer.some((o) => o === i || matchesPattern(o, i)));
}
