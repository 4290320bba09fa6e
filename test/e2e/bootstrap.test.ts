import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { waitFor } from '../support/wait.js';
import { deleteKeys, REDIS_URL, uniquePrefix } from './helpers.js';

const prefix = uniquePrefix(import.meta.url);
const MAIN = new URL('../../src/main.js', import.meta.url).pathname;

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs dist/src/main.js with only the given environment (plus PATH). */
function runMain(env: Record<string, string>): Run {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the main entry point', () => {
  const children: ChildProcess[] = [];
  after(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await deleteKeys(prefix);
  });

  it('refuses to start on a bad variable, naming it, with exit code 1', async () => {
    const run = runMain({ PORT: 'abc', ROLE: 'api' });
    children.push(run.child);
    const { code } = await run.exited;
    assert.equal(code, 1);
    assert.match(run.stderr(), /PORT must be an integer 1-65535, got "abc"/);
    assert.equal(run.stdout(), '');
  });

  it('ROLE=api serves HTTP and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const run = runMain({
      ROLE: 'api',
      PORT: String(port),
      REDIS_URL,
      VIRTGATE_REDIS_PREFIX: prefix,
      VIRTGATE_ADMIN_TOKEN: 'bootstrap-test-admin-token-123',
    });
    children.push(run.child);
    await waitFor(
      () => run.stdout().includes('Server listening at'),
      'the server to listen',
      10_000,
    );
    const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { status: string }).status, 'ok');
    assert.doesNotMatch(run.stdout(), /processing queues/, 'the api role processes no jobs');
    run.child.kill('SIGTERM');
    const { code } = await run.exited;
    assert.equal(code, 0, run.stderr());
    assert.match(run.stdout(), /"msg":"stopped"/);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health/live`));
  });

  it('ROLE=worker serves no HTTP, processes the queues, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const run = runMain({
      ROLE: 'worker',
      PORT: String(port),
      REDIS_URL,
      VIRTGATE_REDIS_PREFIX: prefix,
    });
    children.push(run.child);
    await waitFor(() => run.stdout().includes('processing queues'), 'the worker to start', 10_000);
    assert.match(run.stdout(), /processing queues: domain-ops/);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health/live`));
    run.child.kill('SIGTERM');
    const { code } = await run.exited;
    assert.equal(code, 0, run.stderr());
    assert.match(run.stdout(), /"msg":"stopped"/);
  });
});
