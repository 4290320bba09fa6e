import { Module } from '@nestjs/common';
import { BlockJobReconciler } from './block-job-reconciler.js';
import { BlockJobsProcessor } from './block-jobs.processor.js';

/**
 * The worker side of block jobs: the jobs of queue `block-jobs`, followed to
 * their end, and the reconciler that adopts libvirt's block jobs the gateway
 * has no record of (exported: host reconnects and Redis-loss recovery call it).
 */
@Module({ providers: [BlockJobsProcessor, BlockJobReconciler], exports: [BlockJobReconciler] })
export class BlockJobsWorkerModule {}
