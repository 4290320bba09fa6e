/**
 * The roles, weakest first; each holds everything the ones before it hold.
 * - viewer: reads and events;
 * - operator: lifecycle, snapshots and block jobs on domains in scope, volumes in pools in scope;
 * - admin: hosts, tokens, webhooks, raw XML, pool definitions, arbitrary paths.
 * Here, below everything, because configuration names them too (JWT_ROLE_MAP);
 * src/common/auth/caller.ts is where the rest of the code takes them from.
 */
export const CALLER_ROLES = ['viewer', 'operator', 'admin'] as const;
export type CallerRole = (typeof CALLER_ROLES)[number];
