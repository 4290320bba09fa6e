import { Module } from '@nestjs/common';
import { BlockJobsProcessor } from './block-jobs.processor.js';

/** The worker side of block jobs: the jobs of queue `block-jobs`, followed to their end. */
@Module({ providers: [BlockJobsProcessor] })
export class BlockJobsWorkerModule {}
