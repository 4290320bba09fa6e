import type { Logger } from 'pino';
import { createLogger } from './common/logging/logger.js';
import { ConfigError, loadConfig, type AppConfig } from './config/config.js';

/** How long shutdown may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 15_000;

/**
 * The gateway's entry point: ROLE=api serves HTTP, ROLE=worker runs the
 * worker, ROLE=all (default) both in one process. SIGTERM or SIGINT closes
 * the HTTP server (in-flight requests finish), Redis and libvirt connections.
 */
async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`virtgate: ${err.message}\n`);
    process.exit(1);
  }
  const logger = createLogger(config);
  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  installSignalHandlers(logger, stops);
  try {
    // Each role loads only its own code: a worker has no HTTP or GraphQL layer to load.
    if (config.role === 'api' || config.role === 'all') {
      const { createApp } = await import('./create-app.js');
      const app = await createApp(config, { logger });
      await app.listen(config.port, config.host);
      stops.push({ name: 'api', stop: () => app.close() });
    }
    if (config.role === 'worker') {
      const { startWorker } = await import('./worker.js');
      const worker = await startWorker(config, logger);
      stops.push({ name: 'worker', stop: () => worker.close() });
    }
  } catch (err) {
    logger.fatal({ err }, 'cannot start');
    await stopAll(logger, stops);
    process.exit(1);
  }
}

function installSignalHandlers(
  logger: Logger,
  stops: Array<{ name: string; stop: () => Promise<void> }>,
): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    // Supervisors may signal twice (the process and its group): the deadline below bounds the wait.
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error(`shutdown took longer than ${SHUTDOWN_DEADLINE_MS} ms: exiting`);
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    void stopAll(logger, stops).then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function stopAll(
  logger: Logger,
  stops: Array<{ name: string; stop: () => Promise<void> }>,
): Promise<void> {
  for (const { name, stop } of stops.reverse()) {
    try {
      await stop();
    } catch (err) {
      logger.error({ err }, `error while stopping ${name}`);
    }
  }
}

await main();
