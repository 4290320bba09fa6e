/**
 * The gateway's worker role in a process of its own (dist/src/main.js with
 * ROLE=worker), for the tests that kill it: its stdout (the JSON log) is kept
 * to ask what it logged about a job.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { waitFor } from './wait.js';

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
    const state = await waitFor(
      () => (w.out.includes('processing queues') ? 'ready' : w.exited ? 'exited' : null),
      'the worker to process queues',
      20_000,
      50,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; it logged: ${w.out}`);
    });
    if (state === 'exited') throw new Error(`the worker exited: ${w.out}`);
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

  private get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGKILL');
    await once(this.child, 'exit');
  }
}
