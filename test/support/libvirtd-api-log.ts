/**
 * What the system libvirtd itself logs of the public API calls it serves
 * (its `libvirt.domain` debug messages: each call with its flags), turned on
 * for the length of a test through libvirtd's admin interface (virt-admin),
 * then set back as it was. For what no state or event of libvirt shows: the
 * flags a call was made with (destroy's GRACEFUL ends a QEMU that honours
 * SIGTERM exactly as a destroy without it does).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { holdExclusive } from './exclusive.js';

const run = promisify(execFile);
const ADMIN_URI = 'libvirtd:///system';

async function admin(...args: string[]): Promise<string> {
  return (await run('virt-admin', ['-c', ADMIN_URI, ...args])).stdout;
}

/** The value virt-admin prints after `Logging filters:` / `Logging outputs:`. */
const setting = (out: string): string => out.replace(/^[^:]*:/s, '').trim();

export interface ApiLog {
  /** The log lines so far that mention `needle` (a domain's UUID, say). */
  lines(needle: string): Promise<string[]>;
}

/** Runs `fn` with libvirtd logging its domain API calls to a file of its own. */
export async function withLibvirtdApiLog<T>(fn: (log: ApiLog) => Promise<T>): Promise<T> {
  const release = await holdExclusive('libvirtd-log-settings');
  const dir = await mkdtemp(join(tmpdir(), 'vg-libvirtd-api-'));
  const file = join(dir, 'api.log');
  const filters = setting(await admin('daemon-log-filters'));
  const outputs = setting(await admin('daemon-log-outputs'));
  try {
    await admin('daemon-log-filters', '1:libvirt.domain 4:*');
    await admin('daemon-log-outputs', `1:file:${file} ${outputs}`.trim());
    return await fn({
      async lines(needle) {
        const text = await readFile(file, 'utf8').catch(() => '');
        return text.split('\n').filter((l) => l.includes(needle));
      },
    });
  } finally {
    await admin('daemon-log-filters', filters).catch(() => undefined);
    await admin('daemon-log-outputs', outputs).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    release();
  }
}
