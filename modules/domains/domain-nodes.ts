import type { DomainModel, DomainSummaryModel } from './models/domain.model.js';

/** A domain as GraphQL resolves it: a listing's summary, or a full view. */
export type DomainNode = DomainSummaryModel & Partial<DomainModel>;

/**
 * The host of each domain object a query returned, for its field resolvers
 * (this feature's and others', such as a domain's snapshots). Kept beside the
 * objects rather than copied into them: the service's objects are handed to
 * GraphQL as they are.
 */
const hostOf = new WeakMap<DomainNode, string>();

/** `domain`, noted as one of `host`'s. */
export function withHost<T extends DomainNode>(host: string, domain: T): T {
  hostOf.set(domain, host);
  return domain;
}

/** The host a domain object of this request came from. */
export function hostOfDomain(domain: DomainNode): string {
  const host = hostOf.get(domain);
  if (host === undefined) {
    throw new Error(`domain '${domain.name}' reached GraphQL without its host`);
  }
  return host;
}
