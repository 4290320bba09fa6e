/**
 * Real redis-server processes of a test's own, on free loopback ports, each in
 * a temporary directory: a standalone server (AOF on or off, an eviction
 * policy), a three-master Cluster, and a master with one replica watched by a
 * Sentinel. The shared Redis on 6379 is never touched. Call `stopAll()` in
 * `after`: it kills every process started here and removes their directories.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from './wait.js';

const started = new Set<RedisServer>();
const dirs = new Set<string>();

/** A TCP port nothing listens on now (on 127.0.0.1). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `vg-redis-${label}-`));
  dirs.add(dir);
  return dir;
}

export interface RedisServerOptions {
  /** Append-only file with `appendfsync everysec` (default true). */
  aof?: boolean;
  /** maxmemory-policy (default noeviction). */
  maxmemoryPolicy?: string;
  /** More redis-server arguments. */
  args?: string[];
  /** Run as a Sentinel (`--sentinel`) on a config file written in the directory. */
  sentinelConfig?: string;
}

/** One redis-server process, restartable on its port and directory (its AOF, its nodes.conf). */
export class RedisServer {
  child: ChildProcess | null = null;
  private out = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly argv: string[],
  ) {}

  /** Starts a server in a new temporary directory on a free port. */
  static async start(label: string, options: RedisServerOptions = {}): Promise<RedisServer> {
    const port = await freePort();
    const dir = tempDir(label);
    const argv: string[] = [];
    if (options.sentinelConfig !== undefined) {
      const file = join(dir, 'sentinel.conf');
      writeFileSync(file, `port ${port}\nbind 127.0.0.1\ndir ${dir}\n${options.sentinelConfig}\n`);
      argv.push(file, '--sentinel');
    } else {
      const aof = options.aof ?? true;
      argv.push(
        ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''],
        ...['--appendonly', aof ? 'yes' : 'no', '--appendfsync', 'everysec'],
        ...['--maxmemory-policy', options.maxmemoryPolicy ?? 'noeviction'],
        ...(options.args ?? []),
      );
    }
    const server = new RedisServer(port, dir, argv);
    started.add(server);
    await server.run();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** (Re)starts the process with the same arguments (and `extraArgs`), port and directory; resolves once it accepts connections. */
  async run(extraArgs: string[] = []): Promise<void> {
    this.out = '';
    const child = spawn('redis-server', [...this.argv, ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (chunk) => (this.out += String(chunk)));
    child.stderr!.on('data', (chunk) => (this.out += String(chunk)));
    const state = await waitFor(
      () =>
        /Ready to accept connections|Sentinel ID is/.test(this.out)
          ? 'ready'
          : child.exitCode !== null || child.signalCode !== null
            ? 'exited'
            : null,
      `redis-server on ${this.port} to accept connections`,
      15_000,
      20,
    ).catch((err: Error) => {
      child.kill('SIGKILL');
      throw new Error(`${err.message}: ${this.out}`);
    });
    if (state === 'exited') throw new Error(`redis-server exited: ${this.out}`);
  }

  /** What the process printed since it was last started. */
  get output(): string {
    return this.out;
  }

  /** SIGKILL: the process dies at once (what the kernel has of its AOF stays). */
  async kill(): Promise<void> {
    if (!this.running) return;
    const exited = once(this.child!, 'exit');
    this.child!.kill('SIGKILL');
    await exited;
  }

  /**
   * SHUTDOWN: Redis flushes and fsyncs its AOF, then exits. With `nosave`
   * (SHUTDOWN NOSAVE) it saves nothing: without AOF it comes back empty.
   */
  async shutdown(nosave = false): Promise<void> {
    if (!this.running) return;
    const exited = once(this.child!, 'exit');
    const client = new Redis(this.port, '127.0.0.1', { maxRetriesPerRequest: 0 });
    client.on('error', () => undefined); // the server going away is the point
    const args = nosave ? ['NOSAVE'] : [];
    await client.call('SHUTDOWN', ...args).catch(() => undefined); // the connection closes with the server
    client.disconnect();
    await exited;
  }

  /** A plain client of this one server (the caller closes it). */
  client(): Redis {
    const client = new Redis(this.port, '127.0.0.1', {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
    });
    // Its errors reach the caller through its commands; without a listener
    // ioredis also prints each reconnect attempt once the server is stopped.
    client.on('error', () => undefined);
    return client;
  }
}

/** A standalone server. */
export function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  return RedisServer.start('single', options);
}

/** A Redis Cluster of `masters` masters (no replicas), every slot assigned, its state ok. */
export class RedisClusterSet {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(masters = 3): Promise<RedisClusterSet> {
    const nodes: RedisServer[] = [];
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await RedisServer.start(`cluster${i}`, {
          args: [
            ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
            ...['--cluster-node-timeout', '2000'],
          ],
        }),
      );
    }
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0) {
      throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    }
    const set = new RedisClusterSet(nodes);
    await set.waitHealthy();
    return set;
  }

  /** REDIS_CLUSTER_NODES for these nodes. */
  get nodesEnv(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  /** Resolves once every node says cluster_state:ok. */
  async waitHealthy(ms = 20_000): Promise<void> {
    await waitFor(
      async () => {
        for (const node of this.nodes) {
          const c = node.client();
          try {
            if (!/cluster_state:ok/.test(String(await c.call('CLUSTER', 'INFO')))) return false;
          } finally {
            c.disconnect();
          }
        }
        return true;
      },
      'every cluster node to say cluster_state:ok',
      ms,
      100,
    );
  }

  /** The node whose slots hold `key` (by asking any node CLUSTER KEYSLOT and the slot map). */
  async nodeOf(key: string): Promise<RedisServer> {
    const c = this.nodes[0]!.client();
    try {
      const slot = Number(await c.call('CLUSTER', 'KEYSLOT', key));
      const ranges = (await c.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      const port = range?.[2][1];
      const node = this.nodes.find((n) => n.port === port);
      if (!node) throw new Error(`no node holds slot ${slot}`);
      return node;
    } finally {
      c.disconnect();
    }
  }
}

/** A master, one replica, and a Sentinel (quorum 1) that fails over within about a second. */
export class RedisSentinelSet {
  static readonly MASTER_NAME = 'vgmaster';

  private constructor(
    readonly master: RedisServer,
    readonly replica: RedisServer,
    readonly sentinel: RedisServer,
  ) {}

  static async start(): Promise<RedisSentinelSet> {
    const master = await RedisServer.start('master');
    const replica = await RedisServer.start('replica', {
      args: ['--replicaof', '127.0.0.1', String(master.port)],
    });
    const name = RedisSentinelSet.MASTER_NAME;
    const sentinel = await RedisServer.start('sentinel', {
      sentinelConfig: [
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
      ].join('\n'),
    });
    const set = new RedisSentinelSet(master, replica, sentinel);
    await set.waitReplicaInSync();
    return set;
  }

  /** REDIS_SENTINELS for this set. */
  get sentinelsEnv(): string {
    return `127.0.0.1:${this.sentinel.port}`;
  }

  /** The port of the master Sentinel names now. */
  async masterPort(): Promise<number> {
    const c = this.sentinel.client();
    try {
      const [, port] = (await c.call(
        'SENTINEL',
        'get-master-addr-by-name',
        RedisSentinelSet.MASTER_NAME,
      )) as [string, string];
      return Number(port);
    } finally {
      c.disconnect();
    }
  }

  /** Resolves once `server` replicates the master on `masterPort`, its link up. */
  async waitReplicaOf(masterPort: number, server: RedisServer, ms = 20_000): Promise<void> {
    await waitFor(
      async () => {
        const c = server.client();
        try {
          const info = String(await c.info('replication'));
          return info.includes(`master_port:${masterPort}`) && /master_link_status:up/.test(info);
        } finally {
          c.disconnect();
        }
      },
      `${server.port} to replicate ${masterPort}, its link up`,
      ms,
      100,
    );
  }

  /** Resolves once the replica is linked and Sentinel knows it (a failover needs both). */
  async waitReplicaInSync(ms = 20_000): Promise<void> {
    await waitFor(
      async () => {
        const r = this.replica.client();
        const s = this.sentinel.client();
        try {
          const info = String(await r.info('replication'));
          const replicas = (await s.call(
            'SENTINEL',
            'replicas',
            RedisSentinelSet.MASTER_NAME,
          )) as unknown[];
          return /master_link_status:up/.test(info) && replicas.length > 0;
        } finally {
          r.disconnect();
          s.disconnect();
        }
      },
      'the replica to sync and Sentinel to know it',
      ms,
      100,
    );
  }
}

/** Kills every server started here and removes their directories (call in `after`). */
export async function stopAllRedisServers(): Promise<void> {
  for (const server of started) await server.kill();
  started.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}
