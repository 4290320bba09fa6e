/**
 * The gateway's worker role in a process of its own (dist/src/main.js with
 * ROLE=worker), for the tests that kill it: its stdout (the JSON log) is kept
 * to ask what it logged about a job.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export class WorkerProcess {
  private out = '';
  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk) => (this.out += String(chunk)));
  }

  /** Starts one with the given environment (beside the test's own) and waits until it processes queues. */
  static async start(env: Record<string, string>): Promise<WorkerProcess> {
    const child = spawn(process.execPath, ['dist/src/main.js'], {
      // Other test files' block jobs run on the same libvirtd: adopting them is opted into.
      env: { ...process.env, ROLE: 'worker', LOG_LEVEL: 'info', BLOCK_JOB_ADOPT: 'false', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const w = new WorkerProcess(child);
    const deadline = Date.now() + 20_000;
    while (!w.out.includes('processing queues')) {
      assert.ok(child.exitCode === null, `the worker exited: ${w.out}`);
      assert.ok(Date.now() < deadline, `the worker did not start: ${w.out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return w;
  }

  /** Everything it logged so far. */
  get log(): string {
    return this.out;
  }

  /** Log lines about job `id` (or any text). */
  linesOf(text: string): string[] {
    return this.out.split('\n').filter((l) => l.includes(text));
  }

  /** When (ms since the epoch) this worker logged `text` about job `id`, or null. */
  loggedAt(id: string, text: string): number | null {
    const line = this.linesOf(id).find((l) => l.includes(text));
    return line ? Date.parse((JSON.parse(line) as { time: string }).time) : null;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await once(this.child, 'exit');
  }
}
