import { connectionTypes } from '#src/graphql/connection.js';
import { HostModel } from './host.model.js';

/**
 * A page of hosts in GraphQL. Named in the plural because `HostConnection`
 * is the connection state of a host (its REST schema name too).
 */
export const HostsConnection = connectionTypes(HostModel, 'Hosts');
export type HostsConnection = InstanceType<typeof HostsConnection>;
