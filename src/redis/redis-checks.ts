import type { Redis } from 'ioredis';
import { dataNodes, type RedisClient } from './redis-connection.js';

/**
 * Thrown at boot when Redis is set up in a way that loses jobs: the process
 * must not start (main.ts exits non-zero with this message).
 */
export class RedisSetupError extends Error {
  override readonly name = 'RedisSetupError';
}

/**
 * A server's `maxmemory-policy`: CONFIG GET where CONFIG is allowed, else
 * INFO memory (managed services often rename or disable CONFIG); null when
 * neither says.
 */
export async function evictionPolicyOf(node: Redis): Promise<string | null> {
  try {
    const reply = (await node.config('GET', 'maxmemory-policy')) as string[];
    const i = reply.indexOf('maxmemory-policy');
    if (i >= 0 && typeof reply[i + 1] === 'string') return reply[i + 1]!;
  } catch {
    // CONFIG disabled or renamed: INFO below.
  }
  const info = await node.info('memory');
  return /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? null;
}

/** Whether a server writes an append-only file (CONFIG GET appendonly, else INFO persistence); null: unknown. */
export async function appendOnlyOf(node: Redis): Promise<boolean | null> {
  try {
    const reply = (await node.config('GET', 'appendonly')) as string[];
    const i = reply.indexOf('appendonly');
    if (i >= 0) return reply[i + 1] === 'yes';
  } catch {
    // as above
  }
  const flag = /^aof_enabled:(\d)/m.exec(await node.info('persistence'))?.[1];
  return flag === undefined ? null : flag === '1';
}

function nodeName(node: Redis): string {
  return `${node.options.host ?? '?'}:${node.options.port ?? '?'}`;
}

/**
 * Refuses a Redis that may evict keys: under any policy but `noeviction`, a
 * full Redis deletes keys to make room, BullMQ's among them, and jobs vanish
 * without a trace (BullMQ's documentation requires noeviction). Every master
 * of a Cluster is checked. Returns the servers that run without AOF, for a
 * warning (a restart of those loses what was written since their last save).
 */
export async function checkRedisSetup(client: RedisClient): Promise<{ withoutAof: string[] }> {
  // A Cluster knows its masters once it is ready; a command waits for that.
  await client.ping();
  const nodes = dataNodes(client);
  const withoutAof: string[] = [];
  for (const node of nodes) {
    const policy = await evictionPolicyOf(node);
    if (policy !== 'noeviction') {
      throw new RedisSetupError(
        `Redis at ${nodeName(node)} has maxmemory-policy ${policy ?? '(unknown: neither CONFIG GET nor INFO memory tells)'}: ` +
          'the gateway needs noeviction, because under any other policy a full Redis deletes keys, ' +
          "BullMQ's queued jobs and the gateway's records among them, and jobs are lost. " +
          'Set `maxmemory-policy noeviction` in redis.conf (or `CONFIG SET maxmemory-policy noeviction`, ' +
          "or your provider's parameter group), and give Redis enough maxmemory.",
      );
    }
    if ((await appendOnlyOf(node)) === false) withoutAof.push(nodeName(node));
  }
  return { withoutAof };
}
