import { Module } from '@nestjs/common';
import { JobsModule } from '#modules/jobs/index.js';
import { DomainInventory } from './domain-inventory.service.js';
import { DomainOperationsService } from './domain-operations.service.js';
import { DomainsController } from './domains.controller.js';
import { DomainsResolver, HostDomainsResolver } from './domains.resolver.js';
import { DomainsService } from './domains.service.js';
// Declares what this feature's jobs return (REST's Job variants, GraphQL's JobResult).
import './models/domain-job-results.model.js';

/** Domains over REST and GraphQL: reads, lifecycle actions, define and undefine (the api side). */
@Module({
  imports: [JobsModule],
  controllers: [DomainsController],
  providers: [
    DomainsService,
    DomainInventory,
    DomainOperationsService,
    HostDomainsResolver,
    DomainsResolver,
  ],
})
export class DomainsModule {}
