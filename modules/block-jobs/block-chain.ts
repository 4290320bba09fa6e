/**
 * The rules every block job follows over a disk's backing chain, pure:
 * references (`vda[3]` or a path) resolved against a live chain, then
 * resolved again when the job starts, and how a chain read back compares to
 * the one a job leaves. The plans (plans/) build each job type on these; the
 * api uses them at request time, the worker at start and to decide how a job
 * ended from the chain libvirt reports.
 */
import path from 'node:path';
import { AppError, ErrorCode, invalidField } from '#src/common/errors/app-error.js';
import type { ChainImageXml, DiskXml } from '#src/xml/domain-xml.js';
import type { ChainMemberRef } from '#jobs/job-types.js';

/** A chain member reference as a caller writes it. */
export type MemberSpec =
  { kind: 'index'; index: number; given: string } | { kind: 'path'; path: string; given: string };

const INDEX_REF = /^([A-Za-z0-9_-]{1,32})\[(\d{1,9})\]$/;

/** A member of a live chain: its depth (0: the image the guest writes to) and the image. */
export interface ChainMember {
  depth: number;
  image: ChainImageXml;
}

/** CONFLICT: the chain is not (or no longer) what the job needs. */
export function conflict(message: string): AppError {
  return new AppError(ErrorCode.CONFLICT, message);
}

/** Parses `vda[N]` (for disk `target`) or an absolute path; INVALID_ARGUMENT naming `field` otherwise. */
export function parseMemberRef(value: string, target: string, field: string): MemberSpec {
  const m = INDEX_REF.exec(value);
  if (m) {
    if (m[1] !== target) {
      throw invalidField(field, `'${value}' names disk '${m[1]}', not '${target}'`);
    }
    return { kind: 'index', index: Number(m[2]), given: value };
  }
  if (value.startsWith('/') && !value.includes('\0')) {
    return { kind: 'path', path: path.posix.normalize(value), given: value };
  }
  throw invalidField(
    field,
    `'${value}' is neither ${target}[N] (libvirt's index of an image of this disk's live chain) nor an absolute path`,
  );
}

/** A disk's chain as the gateway can run block jobs on it: complete, every image a local file or device. */
export function usableChain(disk: DiskXml): ChainImageXml[] {
  if (disk.chain.length === 0) {
    throw new AppError(ErrorCode.INVALID_STATE, `disk '${disk.target}' has no image`);
  }
  if (!disk.chainComplete) {
    throw new AppError(
      ErrorCode.INVALID_STATE,
      `the backing chain of disk '${disk.target}' is not known (libvirt probes it only while the domain runs)`,
    );
  }
  if (disk.chain.some((i) => i.source.path === null)) {
    throw new AppError(
      ErrorCode.UNSUPPORTED,
      `disk '${disk.target}' has images that are not local files or block devices; block jobs on them are not supported`,
    );
  }
  return disk.chain;
}

export function chainPaths(disk: DiskXml): string[] {
  return disk.chain.map((i) => i.source.path ?? '');
}

function describeChain(disk: DiskXml): string {
  return disk.chain
    .map((i) => `${i.index === null ? '?' : `${disk.target}[${i.index}]`} ${i.source.path ?? ''}`)
    .join(', ');
}

/** The member `spec` names in `disk`'s live chain; INVALID_STATE (409) naming `field` when none. */
export function memberAt(disk: DiskXml, spec: MemberSpec, field: string): ChainMember {
  const depth = disk.chain.findIndex((i) =>
    spec.kind === 'index'
      ? i.index === spec.index
      : i.source.path !== null && path.posix.normalize(i.source.path) === spec.path,
  );
  if (depth < 0) {
    const message = `'${spec.given}' names no image of the live chain of disk '${disk.target}' (now: ${describeChain(disk)})`;
    throw new AppError(ErrorCode.INVALID_STATE, `${field}: ${message}`, {
      fields: [{ field, message }],
    });
  }
  return { depth, image: disk.chain[depth]! };
}

export function refOf(member: ChainMember, given: string | null): ChainMemberRef {
  return { given, path: member.image.source.path!, index: member.image.index, depth: member.depth };
}

/** How libvirt is told about a member: its index in the live XML just read, else its path. */
export function libvirtRef(target: string, member: { image: ChainImageXml }): string {
  return member.image.index !== null
    ? `${target}[${member.image.index}]`
    : member.image.source.path!;
}

/**
 * Resolves `ref` again in the live chain (when the job starts): what the
 * caller named must still name the image it named when the job was
 * accepted. CONFLICT otherwise: the chain changed under the job.
 */
export function recheck(disk: DiskXml, ref: ChainMemberRef, field: string): ChainMember {
  const spec: MemberSpec =
    ref.given !== null && INDEX_REF.test(ref.given)
      ? parseMemberRef(ref.given, disk.target, field)
      : { kind: 'path', path: ref.path, given: ref.given ?? ref.path };
  let member: ChainMember;
  try {
    member = memberAt(disk, spec, field);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    throw new AppError(
      ErrorCode.CONFLICT,
      `the chain of disk '${disk.target}' changed since the job was accepted: ${err.message}`,
    );
  }
  if (member.image.source.path !== ref.path) {
    throw new AppError(
      ErrorCode.CONFLICT,
      `the chain of disk '${disk.target}' changed since the job was accepted: ${field} '${spec.given}' now names ${member.image.source.path}, not ${ref.path}`,
    );
  }
  return member;
}

export type ChainOutcome = 'applied' | 'unchanged' | 'unexpected';

export function sameChain(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

/**
 * What the live chain says of a job, from the chain it leaves once applied:
 * applied (it is that chain), unchanged (the chain it started on), or neither.
 */
export function outcomeOf(
  expected: readonly string[] | null,
  atStart: readonly string[],
  live: readonly string[],
): ChainOutcome {
  if (expected && sameChain(live, expected)) return 'applied';
  return sameChain(live, atStart) ? 'unchanged' : 'unexpected';
}
