/**
 * qemu-img and qemu-io, the independent witnesses: chains are checked against
 * `qemu-img info --backing-chain`, data against patterns written into layers.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function qemuImg(...args: string[]): Promise<string> {
  return (await run('qemu-img', args)).stdout;
}

export async function makeImageDir(
  prefix: string,
): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Creates qcow2 images, each backed by the previous one; returns their paths, base first. */
export async function createChain(dir: string, names: string[], sizeMiB = 16): Promise<string[]> {
  const paths: string[] = [];
  for (const name of names) {
    const p = path.join(dir, `${name}.qcow2`);
    const backing = paths.at(-1);
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      ...(backing ? ['-b', backing, '-F', 'qcow2'] : []),
      p,
      `${sizeMiB}M`,
    );
    paths.push(p);
  }
  return paths;
}

/** Writes 1 MiB of byte `pattern` at `offsetMiB` into one layer (the image must not be in use). */
export async function writePattern(
  image: string,
  pattern: number,
  offsetMiB: number,
): Promise<void> {
  const out = await run('qemu-io', [
    '-f',
    'qcow2',
    '-c',
    `write -P ${pattern} ${offsetMiB}M 1M`,
    image,
  ]);
  if (!/wrote 1048576\/1048576 bytes/.test(out.stdout))
    throw new Error(`qemu-io write failed: ${out.stdout}${out.stderr}`);
}

/**
 * Reads 1 MiB at `offsetMiB` through `image` (and so through its backing chain),
 * read-only and sharing the image with a running QEMU; true if every byte is `pattern`.
 * A running QEMU caches qcow2 metadata: pause the domain first (pausing flushes
 * every image) or the file on disk may not show what the guest sees yet.
 */
export async function hasPattern(
  image: string,
  pattern: number,
  offsetMiB: number,
): Promise<boolean> {
  let out: { stdout: string; stderr: string };
  try {
    out = await run('qemu-io', [
      '-r',
      '-U',
      '-f',
      'qcow2',
      '-c',
      `read -P ${pattern} ${offsetMiB}M 1M`,
      image,
    ]);
  } catch (err) {
    // qemu-io exits 1 when the pattern does not match
    out = err as { stdout: string; stderr: string };
  }
  if (/Pattern verification failed/.test(out.stdout + out.stderr)) return false;
  if (/read 1048576\/1048576 bytes/.test(out.stdout)) return true;
  throw new Error(`qemu-io read gave no verdict: ${out.stdout}${out.stderr}`);
}

export interface ImageInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'backing-filename'?: string;
}

/** `qemu-img info --backing-chain`, top first. */
export async function backingChain(image: string): Promise<ImageInfo[]> {
  return JSON.parse(
    await qemuImg('info', '-U', '--backing-chain', '--output=json', image),
  ) as ImageInfo[];
}
