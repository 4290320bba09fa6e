import { Logger } from '@nestjs/common';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisNode, RedisTopology } from '#src/config/config.js';
import { redactUri } from '#src/libvirt/uri.js';

export type { RedisNode, RedisTopology };

/**
 * A Redis connection of the gateway, whatever the topology: a `Redis` for a
 * single server or a Sentinel-managed master, a `Cluster` for Redis Cluster.
 * Both run the same commands (ioredis's Commander), so the product's code is
 * written against this type, never against one of the two; what differs
 * (making another connection) goes through `duplicateConnection`.
 */
export type RedisClient = Redis | Cluster;

/**
 * What a connection is for. `commands`: the shared connection of a process,
 * which fails a command after a few reconnect attempts and never waits more
 * than 5 s on a server that does not answer (requests then get a fast 503).
 * `bullmq`: BullMQ's, whose blocking commands must neither time out nor give
 * up after N retries (BullMQ requires `maxRetriesPerRequest: null`).
 */
export type ConnectionUse = 'commands' | 'bullmq';

function optionsFor(use: ConnectionUse, connectionName: string): RedisOptions {
  return use === 'commands'
    ? {
        connectionName,
        maxRetriesPerRequest: 3,
        commandTimeout: 5000,
        // Reconnect attempts at most half a second apart: requests are 503 only while
        // Redis is really away, not for a backoff after it is back.
        retryStrategy: (times: number) => Math.min(times * 50, 500),
      }
    : { connectionName, maxRetriesPerRequest: null };
}

/**
 * The one place the product opens a Redis connection (besides duplicating one
 * it has): every connection, the shared one and BullMQ's, follows the
 * configured topology the same way.
 */
export function createRedisConnection(
  topology: RedisTopology,
  connectionName: string,
  use: ConnectionUse,
): RedisClient {
  return logErrors(connect(topology, optionsFor(use, connectionName)), connectionName);
}

/**
 * Logs a connection's errors, each change once (ioredis repeats the error at
 * every reconnect attempt), and its recovery. Without a listener ioredis
 * prints every one of them to stderr as "Unhandled error event".
 */
function logErrors(client: RedisClient, connectionName: string): RedisClient {
  const logger = new Logger('Redis');
  let lastError = '';
  client.on('error', (err: Error) => {
    if (err.message !== lastError)
      logger.warn(`${connectionName}: connection error: ${err.message}`);
    lastError = err.message;
  });
  client.on('ready', () => {
    if (lastError) logger.log(`${connectionName}: connection restored`);
    lastError = '';
  });
  return client;
}

function connect(topology: RedisTopology, options: RedisOptions): RedisClient {
  switch (topology.kind) {
    case 'single':
      return new Redis(topology.url, options);
    case 'sentinel':
      return new Redis({
        ...options,
        sentinels: topology.sentinels.map((n) => ({ host: n.host, port: n.port })),
        name: topology.masterName,
        ...(topology.username === null ? {} : { username: topology.username }),
        ...(topology.password === null ? {} : { password: topology.password }),
        ...(topology.sentinelPassword === null
          ? {}
          : { sentinelPassword: topology.sentinelPassword }),
        // Hear Sentinel's +switch-master at once instead of waiting for the old master's socket to fail.
        failoverDetector: true,
      });
    case 'cluster': {
      const clusterOptions: ClusterOptions = {
        redisOptions: {
          ...options,
          ...(topology.username === null ? {} : { username: topology.username }),
          ...(topology.password === null ? {} : { password: topology.password }),
        },
        // While a master restarts (CLUSTERDOWN, or its slots moving), commands wait and retry.
        retryDelayOnClusterDown: 200,
        retryDelayOnFailover: 200,
        retryDelayOnTryAgain: 200,
        // Keep trying the startup nodes while the whole cluster is unreachable.
        clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      };
      return new Cluster(
        topology.nodes.map((n) => ({ host: n.host, port: n.port })),
        clusterOptions,
      );
    }
  }
}

/**
 * Another connection like `client`, for blocking readers (XREAD BLOCK,
 * SUBSCRIBE) that must not hold up the shared one. A Cluster's copy is a
 * Cluster of its own, routing by slot like the original.
 */
export function duplicateConnection(client: RedisClient, connectionName: string): RedisClient {
  // A blocking reader waits out a reconnect, whatever the original does (see failFastOnceUp).
  const copy =
    client instanceof Cluster
      ? client.duplicate(undefined, {
          enableOfflineQueue: true,
          redisOptions: { ...client.options.redisOptions, connectionName },
        })
      : client.duplicate({ connectionName, enableOfflineQueue: true });
  return logErrors(copy, connectionName);
}

/**
 * Once the connection is up, its commands fail at once while Redis is away
 * (ioredis's offline queue off) instead of waiting for reconnect attempts:
 * the api's requests get a 503 within milliseconds in an outage. Before the
 * first `ready` they wait, so the boot's own commands do not race the connect.
 */
export function failFastOnceUp(client: RedisClient): void {
  client.once('ready', () => {
    (client.options as { enableOfflineQueue?: boolean }).enableOfflineQueue = false;
  });
}

/**
 * The topology in words for logs and error messages, without any password
 * (a URL's is masked).
 */
export function describeRedis(topology: RedisTopology): string {
  const nodes = (list: readonly RedisNode[]): string =>
    list.map((n) => `${n.host}:${n.port}`).join(',');
  switch (topology.kind) {
    case 'single':
      return redactUri(topology.url);
    case 'sentinel':
      return `sentinel master '${topology.masterName}' via ${nodes(topology.sentinels)}`;
    case 'cluster':
      return `cluster via ${nodes(topology.nodes)}`;
  }
}

/** The servers holding data a check must read (every master of a Cluster; the one server otherwise). */
export function dataNodes(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** How long `closeConnection` waits for QUIT's reply before dropping the connection. */
const QUIT_WAIT_MS = 5000;

/**
 * Closes a connection: QUIT when it is up, at once otherwise (QUIT would wait
 * in the offline queue). A server that does not answer the QUIT (stopped, or a
 * connection without a command timeout) is not waited for longer than
 * QUIT_WAIT_MS: the connection is dropped then, so a shutdown always ends.
 */
export async function closeConnection(client: RedisClient): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.quit().then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, QUIT_WAIT_MS))),
  ]);
  clearTimeout(timer);
  client.disconnect();
}
