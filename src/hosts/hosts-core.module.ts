import { Global, Module } from '@nestjs/common';
import { HostCredentialStore } from './host-credentials.js';
import { HostConnections, WorkerConnections } from './host-connections.js';
import { HostEvents } from './host-events.js';
import { HostRegistry } from './host-registry.js';
import { PathConfinement } from './path-confinement.js';

/**
 * The registered hosts and what reaches them, for every feature and both
 * roles: the registry, the api's read-only connection pools, the worker's
 * read-write ones (opened only when a job needs them), and each host's
 * event source; the path confinement rule both roles check paths by.
 */
@Global()
@Module({
  providers: [
    HostRegistry,
    HostCredentialStore,
    HostConnections,
    WorkerConnections,
    HostEvents,
    PathConfinement,
  ],
  exports: [
    HostRegistry,
    HostCredentialStore,
    HostConnections,
    WorkerConnections,
    HostEvents,
    PathConfinement,
  ],
})
export class HostsCoreModule {}
