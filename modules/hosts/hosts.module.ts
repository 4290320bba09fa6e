import { Module } from '@nestjs/common';
import { HostConnections } from './host-connections.service.js';
import { HostRegistry } from './host-registry.service.js';
import { HostsController } from './hosts.controller.js';
import { HostsResolver } from './hosts.resolver.js';
import { HostsService } from './hosts.service.js';

@Module({
  controllers: [HostsController],
  providers: [HostRegistry, HostConnections, HostsService, HostsResolver],
  exports: [HostsService, HostConnections, HostRegistry],
})
export class HostsModule {}
