/**
 * A lock between test processes (node --test runs files two at a time) for a
 * shared service whose state a test reads as a whole: the sshd's process list,
 * say, where another file's sessions would count as this one's. mkdir is
 * atomic; the holder's pid inside lets a lock left by a killed process be taken.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

const LOCK_ROOT = join(tmpdir(), 'virtgate-test-locks');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryTake(dir: string): boolean {
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    let holder: number;
    try {
      holder = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    } catch {
      return false; // being taken right now: its pid file comes next
    }
    if (holder === process.pid || alive(holder)) return false;
    rmSync(dir, { recursive: true, force: true }); // its holder died with it
    return false;
  }
  writeFileSync(join(dir, 'pid'), String(process.pid));
  return true;
}

/** Waits (up to `timeoutMs`) to hold the lock `name`; resolves to its release. */
export async function holdExclusive(name: string, timeoutMs = 600_000): Promise<() => void> {
  mkdirSync(LOCK_ROOT, { recursive: true });
  const dir = join(LOCK_ROOT, name);
  await waitFor(
    () => tryTake(dir),
    `the '${name}' lock (held by another test file)`,
    timeoutMs,
    100,
  );
  return () => rmSync(dir, { recursive: true, force: true });
}
