import { Module } from '@nestjs/common';
import { HostsModule } from '#modules/hosts/hosts.module.js';
import { JobsModule } from '#modules/jobs/jobs.module.js';
import { DomainActionsResolver } from './domain-actions.resolver.js';
import { DomainActionsService } from './domain-actions.service.js';
import { DomainInventory } from './domain-inventory.service.js';
import { DomainsController } from './domains.controller.js';
import { DomainsResolver, HostDomainsResolver } from './domains.resolver.js';
import { DomainsService } from './domains.service.js';

@Module({
  imports: [HostsModule, JobsModule],
  controllers: [DomainsController],
  providers: [
    DomainsService,
    DomainInventory,
    DomainActionsService,
    DomainActionsResolver,
    HostDomainsResolver,
    DomainsResolver,
  ],
  exports: [DomainsService],
})
export class DomainsModule {}
