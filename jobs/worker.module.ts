import { Module } from '@nestjs/common';
import { WorkerConnections } from '#modules/hosts/host-connections.service.js';
import { HostsModule } from '#modules/hosts/hosts.module.js';
import { BlockJobEvents } from './block-job-events.js';
import { BlockJobLedger } from './block-job-ledger.js';
import { JobRetention } from './job-retention.service.js';
import { JobSignals } from './job-signals.js';
import { JobRunner } from './job-runner.service.js';
import { jobStoreProvider } from './job-store.provider.js';
import { BlockJobsProcessor } from './processors/block-jobs.processor.js';
import { DefinitionsProcessor } from './processors/definitions.processor.js';
import { DomainOpsProcessor } from './processors/domain-ops.processor.js';
import { StorageProcessor } from './processors/storage.processor.js';

/** The worker role: the processors of every queue, over read-write libvirt connections. */
@Module({
  imports: [HostsModule],
  providers: [
    WorkerConnections,
    jobStoreProvider,
    DomainOpsProcessor,
    DefinitionsProcessor,
    StorageProcessor,
    BlockJobLedger,
    BlockJobEvents,
    BlockJobsProcessor,
    JobRunner,
    JobRetention,
    JobSignals,
  ],
})
export class WorkerModule {}
