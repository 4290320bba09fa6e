import type { Logger } from 'pino';
import type { AppConfig } from './config/config.js';

export interface Worker {
  close(): Promise<void>;
}

/**
 * The worker role. Job processing (BullMQ queues in jobs/) arrives in a later
 * issue; until then the worker only starts, says so, stays up until it is
 * stopped (SIGTERM/SIGINT, handled by main.ts), and stops cleanly.
 */
export function startWorker(config: AppConfig, logger: Logger): Worker {
  const log = logger.child({ component: 'worker' });
  // With no queue connection yet, nothing else keeps the event loop (and the process) alive.
  const keepAlive = setInterval(() => undefined, 2 ** 31 - 1);
  log.info(
    { redisPrefix: config.redisPrefix },
    'worker started; no queues are defined yet, so there is nothing to process',
  );
  return {
    close: () => {
      clearInterval(keepAlive);
      log.info('worker stopped');
      return Promise.resolve();
    },
  };
}
