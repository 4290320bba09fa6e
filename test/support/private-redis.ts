/**
 * A redis-server of a test's own, on a free loopback port, for the tests that
 * stop, kill or empty it (the shared one on 6379 must stay up for the others).
 * Persistence is off unless asked for: a restart then comes back empty, as a
 * Redis run without AOF does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

export class PrivateRedis {
  private child: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts one; `args` are extra redis-server options (`--appendonly yes`, …). */
  static async start(args: string[] = ['--save', '', '--appendonly', 'no']): Promise<PrivateRedis> {
    const dir = await mkdtemp(path.join(tmpdir(), 'vg-redis-'));
    const redis = new PrivateRedis(await freePort(), dir, args);
    await redis.restart();
    return redis;
  }

  /** (Re)starts the server on the same port and directory. */
  async restart(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, ...this.args],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    try {
      for await (const chunk of child.stdout!) {
        out += String(chunk);
        if (out.includes('Ready to accept connections')) {
          this.child = child;
          child.stdout!.resume(); // keep draining its log
          return;
        }
      }
    } finally {
      clearTimeout(timer);
    }
    throw new Error(`redis-server on ${this.port} did not start within 10 s: ${out}`);
  }

  /** Whether the server process is gone. */
  get stopped(): boolean {
    return this.child === null || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Waits for the process to exit (after a SHUTDOWN sent by the test). */
  async exited(): Promise<void> {
    if (this.stopped) return;
    await once(this.child!, 'exit');
  }

  async kill(): Promise<void> {
    if (!this.stopped) {
      this.child!.kill('SIGKILL');
      await once(this.child!, 'exit');
    }
  }

  /** Kills it and removes its directory. */
  async remove(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}
