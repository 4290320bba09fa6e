/**
 * What other features use of the block jobs feature: the reconciler of the
 * worker role (with its module), which the event publisher calls when a
 * host's link comes back and Redis-loss recovery calls for every host.
 * Worker-side only: nothing here loads the HTTP and GraphQL layers.
 */
export { ADOPTED_BY, BlockJobReconciler, type ReconcileReport } from './block-job-reconciler.js';
export { BlockJobsWorkerModule } from './block-jobs-worker.module.js';
