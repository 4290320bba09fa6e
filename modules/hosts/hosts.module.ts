import { Module } from '@nestjs/common';
import { HostsController } from './hosts.controller.js';
import { HostsResolver } from './hosts.resolver.js';
import { HostsService } from './hosts.service.js';

/** Hosts over REST and GraphQL (the registry and connections are src/hosts/, HostsCoreModule). */
@Module({
  controllers: [HostsController],
  providers: [HostsService, HostsResolver],
})
export class HostsModule {}
