/** The scope rule's matching: patterns, the "names one, reaches only what it names" rule, and containment. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Caller, HostScope } from '#src/common/auth/caller.js';
import {
  domainInScope,
  domainMatcher,
  matchesPattern,
  poolInScope,
  scopesWithin,
} from '#src/common/auth/scope.js';

const caller = (scopes: HostScope[] | null): Caller => ({
  id: 't',
  role: 'operator',
  scopes,
  requestId: 'r',
});

describe('scope', () => {
  it('matches shell-style patterns against the whole name', () => {
    const cases: [string, string, boolean][] = [
      ['web-*', 'web-1', true],
      ['web-*', 'web-', true],
      ['web-*', 'db-web-1', false],
      ['*-db', 'a-db', true],
      ['*-db', 'a-db-2', false],
      ['w?b', 'web', true],
      ['w?b', 'wb', false],
      ['*', '', true],
      ['a*b*c', 'aXXbYYc', true],
      ['a*b*c', 'aXXbYY', false],
      ['exact', 'exact', true],
      ['exact', 'exact2', false],
    ];
    for (const [p, name, expected] of cases) {
      assert.equal(matchesPattern(p, name), expected, `${p} ~ ${name}`);
    }
    // Backtracking stays linear on a hostile pattern.
    assert.equal(matchesPattern('*a*a*a*a*a*b', 'a'.repeat(5000)), false);
  });

  it('reaches everything on a host given alone, and only what it names once it names any', () => {
    const all = caller([{ host: 'h' }]);
    assert.ok(domainInScope(all, 'h', 'x') && poolInScope(all, 'h', 'p'));
    assert.ok(!domainInScope(all, 'other', 'x'));
    const web = caller([{ host: 'h', domains: ['web-*'] }]);
    assert.ok(domainInScope(web, 'h', 'web-1') && !domainInScope(web, 'h', 'db-1'));
    assert.ok(!poolInScope(web, 'h', 'default'), 'a domain scope reaches no pool');
    const pools = caller([{ host: 'h', pools: ['default'] }]);
    assert.ok(poolInScope(pools, 'h', 'default') && !domainInScope(pools, 'h', 'web-1'));
    assert.ok(domainInScope(caller(null), 'any', 'thing'));
  });

  it('decides as domainInScope does, name by name', () => {
    const scopes: (HostScope[] | null)[] = [
      null,
      [],
      [{ host: 'h' }],
      [{ host: 'h', domains: ['web-*', 'db-?', '*-x*'] }],
      [{ host: 'h', pools: ['p'] }],
      [{ host: 'other', domains: ['*'] }],
    ];
    const names = ['web-1', 'web-', 'db-1', 'db-12', 'a-xb', 'ax', '', 'web'];
    for (const s of scopes) {
      const c = caller(s);
      const matcher = domainMatcher(c, 'h');
      for (const n of names)
        assert.equal(matcher(n), domainInScope(c, 'h', n), `${JSON.stringify(s)} ${n}`);
    }
  });

  it('lets a token make only tokens within its own scopes', () => {
    const outer: HostScope[] = [{ host: 'h', domains: ['web-*'], pools: ['p'] }];
    assert.ok(scopesWithin([{ host: 'h', domains: ['web-1'] }], outer));
    assert.ok(scopesWithin([{ host: 'h', domains: ['web-*'], pools: ['p'] }], outer));
    assert.ok(!scopesWithin([{ host: 'h' }], outer), 'the whole host is more');
    assert.ok(!scopesWithin([{ host: 'h', domains: ['*'] }], outer));
    assert.ok(!scopesWithin([{ host: 'g', domains: ['web-1'] }], outer));
    assert.ok(!scopesWithin(null, outer), 'everything is more');
    assert.ok(scopesWithin(null, null) && scopesWithin(outer, null));
  });
});
