import type { AppError } from '#src/common/errors/app-error.js';

/**
 * Thrown by a handler to end its job as canceled (or as failed) with a result
 * all the same: a block job that was canceled, or that libvirt ended without
 * applying it, still reports the chain it left.
 */
export class JobEnd extends Error {
  override readonly name = 'JobEnd';

  constructor(
    readonly state: 'canceled' | 'failed',
    readonly result: object,
    /** Why it failed (state failed only). */
    readonly error: AppError | null = null,
  ) {
    super(error?.message ?? state);
  }
}

/**
 * Thrown by a handler that stops following its job because the worker is
 * shutting down: the job is handed back to the queue, unchanged, for another
 * worker (or this one, restarted) to re-attach to. Its record keeps its state.
 */
export class HandBack extends Error {
  override readonly name = 'HandBack';

  constructor() {
    super('the worker is shutting down: handed back to the queue');
  }
}
