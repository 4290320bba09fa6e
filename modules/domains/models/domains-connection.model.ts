import { connectionTypes } from '#src/graphql/connection.js';
import { DomainModel } from './domain.model.js';

/** A page of a host's domains in GraphQL, with how many match the filter over all pages. */
export const DomainsConnection = connectionTypes(DomainModel, 'Domains', { totalCount: true });
export type DomainsConnection = InstanceType<typeof DomainsConnection>;
