import type { Caller } from '../common/auth/caller.js';
import { domainInScope, hostInScope, isUnscoped, poolInScope } from '../common/auth/scope.js';
import { invalidFields, type FieldError } from '../common/errors/app-error.js';
import type { GatewayEvent } from './event.js';
import { EVENT_TYPE_NAMES } from './event-types.js';

/**
 * The one filter language of every channel (SSE, JSON pages, GraphQL
 * subscriptions, webhooks): each list given narrows the events to those
 * matching one of its entries; a list left out (or empty) matches all.
 */
export interface EventFilter {
  /** Host names. */
  hosts?: readonly string[];
  /** Domain names or UUIDs. */
  domains?: readonly string[];
  /** Event types, or wildcards: `*`, `block-job.*`, `domain.*`. */
  types?: readonly string[];
  /** Gateway job ids (a job's own events and the block-job events correlated to it). */
  jobs?: readonly string[];
}

const MAX_ENTRIES = 100;
const MAX_ENTRY_LENGTH = 256;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks a filter: at most 100 entries per list, each a non-empty string of
 * at most 256 characters, and each type a known one or a wildcard that
 * matches some. INVALID_ARGUMENT naming every bad field (`types[1]`, or as `fieldName` names it).
 */
export function checkEventFilter(
  filter: EventFilter,
  fieldName: (key: keyof EventFilter) => string = (key) => key,
): EventFilter {
  const errors: FieldError[] = [];
  const check = (name: keyof EventFilter): readonly string[] | undefined => {
    const list = filter[name];
    const listField = fieldName(name);
    if (list === undefined || list === null) return undefined;
    if (!Array.isArray(list)) {
      errors.push({ field: listField, message: `${listField} must be a list` });
      return undefined;
    }
    if (list.length > MAX_ENTRIES) {
      errors.push({
        field: listField,
        message: `${listField} may hold at most ${MAX_ENTRIES} entries`,
      });
    }
    list.forEach((v: unknown, i) => {
      const field = `${listField}[${i}]`;
      if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ENTRY_LENGTH) {
        errors.push({
          field,
          message: `${field} must be a string of 1 to ${MAX_ENTRY_LENGTH} characters`,
        });
      } else if (name === 'types' && typeMatches(v).length === 0) {
        errors.push({
          field,
          message: `${field}: '${v}' is no event type, nor a wildcard ('*', 'block-job.*') matching one`,
        });
      }
    });
    return list.length === 0 ? undefined : list;
  };
  const out: EventFilter = {
    hosts: check('hosts'),
    domains: check('domains'),
    types: check('types'),
    jobs: check('jobs'),
  };
  if (errors.length > 0) throw invalidFields(errors);
  return out;
}

/** The event types a type pattern matches (`*`, `prefix.*`, or one type). */
export function typeMatches(pattern: string): string[] {
  if (pattern === '*') return [...EVENT_TYPE_NAMES];
  if (pattern.endsWith('.*')) {
    const prefix = pattern.slice(0, -1);
    return EVENT_TYPE_NAMES.filter((t) => t.startsWith(prefix));
  }
  return EVENT_TYPE_NAMES.filter((t) => t === pattern);
}

/** A matcher for a checked filter, built once per subscriber. */
export function eventMatcher(filter: EventFilter): (event: GatewayEvent) => boolean {
  const hosts = filter.hosts?.length ? new Set(filter.hosts) : null;
  const domains = filter.domains?.length
    ? new Set(filter.domains.map((d) => (UUID.test(d) ? d.toLowerCase() : d)))
    : null;
  const types = filter.types?.length ? new Set(filter.types.flatMap(typeMatches)) : null;
  const jobs = filter.jobs?.length ? new Set(filter.jobs) : null;
  return (e) =>
    (hosts === null || (e.host !== null && hosts.has(e.host))) &&
    (domains === null ||
      (e.domain !== null &&
        (domains.has(e.domain.name) || (e.domain.uuid !== null && domains.has(e.domain.uuid))))) &&
    (types === null || types.has(e.type)) &&
    (jobs === null ||
      (e.job !== null && jobs.has(e.job.id)) ||
      (e.blockJob?.jobId != null && jobs.has(e.blockJob.jobId)));
}

/**
 * Whether `caller` may see an event, by the scope rule of every resource:
 * an unscoped caller sees all; a scoped one sees the events of its hosts
 * whose domain (or, for a storage job, pool) is in its scope, the host's own
 * events, and the jobs it asked for. Events of no host (a webhook disabled)
 * are for unscoped callers only.
 */
export function eventVisibleTo(caller: Caller, e: GatewayEvent): boolean {
  if (isUnscoped(caller)) return true;
  if (e.type.startsWith('gateway.')) return true; // the gateway's own state concerns every caller
  if (e.job !== null && e.job.requestedBy === caller.id) return true;
  if (e.host === null || !hostInScope(caller, e.host)) return false;
  if (e.domain !== null) return domainInScope(caller, e.host, e.domain.name);
  if (e.job !== null) return e.job.pool !== null && poolInScope(caller, e.host, e.job.pool);
  return e.type.startsWith('host.');
}

/** Reads a filter from query parameters (`host`, `domain`, `type`, `job`): comma-separated, repeatable. */
export function filterFromQuery(query: Record<string, unknown>): EventFilter {
  const list = (name: string): string[] | undefined => {
    const raw = query[name];
    if (raw === undefined) return undefined;
    const values = Array.isArray(raw) ? raw : [raw];
    return values
      .flatMap((v) => String(v).split(','))
      .map((v) => v.trim())
      .filter(Boolean);
  };
  const filter: EventFilter = {
    hosts: list('host'),
    domains: list('domain'),
    types: list('type'),
    jobs: list('job'),
  };
  return checkEventFilter(filter, (key) => QUERY_NAMES[key]);
}

const QUERY_NAMES: Record<keyof EventFilter, string> = {
  hosts: 'host',
  domains: 'domain',
  types: 'type',
  jobs: 'job',
};
