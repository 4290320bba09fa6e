import { Module } from '@nestjs/common';
import { DomainsProcessor } from './domains.processor.js';

/** The worker side of domains: the jobs of queue `domain-ops`. */
@Module({ providers: [DomainsProcessor] })
export class DomainsWorkerModule {}
