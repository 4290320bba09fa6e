import { Module } from '@nestjs/common';
import { HostsModule } from '#modules/hosts/hosts.module.js';
import { JobsModule } from '#modules/jobs/jobs.module.js';
import { DomainActionsResolver } from './domain-actions.resolver.js';
import { DomainActionsService } from './domain-actions.service.js';
import { DomainDefinitionsController } from './domain-definitions.controller.js';
import { DomainDefinitionsResolver } from './domain-definitions.resolver.js';
import { DomainDefinitionsService } from './domain-definitions.service.js';
import { DomainInventory } from './domain-inventory.service.js';
import { DomainSnapshotsService } from './domain-snapshots.service.js';
import { DomainsController } from './domains.controller.js';
import { DomainsResolver, HostDomainsResolver } from './domains.resolver.js';
import { DomainsService } from './domains.service.js';

@Module({
  imports: [HostsModule, JobsModule],
  controllers: [DomainsController, DomainDefinitionsController],
  providers: [
    DomainsService,
    DomainInventory,
    DomainActionsService,
    DomainDefinitionsService,
    DomainSnapshotsService,
    DomainActionsResolver,
    DomainDefinitionsResolver,
    HostDomainsResolver,
    DomainsResolver,
  ],
  exports: [DomainsService],
})
export class DomainsModule {}
