import { posix } from 'node:path';
import { Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { requireDomain } from '#src/common/domain-ref.js';
import {
  AppError,
  ErrorCode,
  invalidFields,
  type FieldError,
} from '#src/common/errors/app-error.js';
import { HostConnections } from '#src/hosts/host-connections.js';
import { HostRegistry } from '#src/hosts/host-registry.js';
import { accessOf, mayUseAnyPath, PathConfinement } from '#src/hosts/path-confinement.js';
import {
  findStorageVolByPath,
  isNoDomainSnapshot,
  isOperationInvalid,
  orNull,
  uuidString,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { parseDomainXml, type DiskXml } from '#src/xml/domain-xml.js';
import { JobSubmitter, type Accepted } from '#jobs/job-submitter.js';
import type { CreateSnapshotDto } from './dto/create-snapshot.dto.js';

/** A disk can take an external overlay: a writable disk whose top image is a file or block device. */
export function snapshottable(d: DiskXml): string | null {
  const top = d.chain[0];
  if (d.device !== 'disk') return `disk '${d.target}' is a ${d.device}`;
  if (d.readOnly) return `disk '${d.target}' is read-only`;
  if (!top || top.source.path === null) return `disk '${d.target}' has no image`;
  if (top.source.type !== 'file' && top.source.type !== 'block') {
    return `disk '${d.target}' is a ${top.source.type} disk: only file and block disks take an overlay file`;
  }
  return null;
}

/** `<dir>/<image-base>.<snapshot>.qcow2` beside the current top image `top`. */
export function defaultOverlay(top: string, snapshot: string): string {
  const base = posix.basename(top, posix.extname(top));
  return posix.join(posix.dirname(top), `${base}.${snapshot}.qcow2`);
}

/** The default snapshot name: the UTC time, YYYYMMDD-HHMMSS. */
function timeName(now: Date): string {
  return now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replaceAll('-', '')
    .replaceAll(':', '')
    .replace('T', '-');
}

/**
 * External disk-only snapshots: checked against the live state at request
 * time (the disks exist and can take an overlay; no overlay path is an image
 * in use, a known volume, or given twice; no block job runs on the disks),
 * then taken by the worker, atomically across the disks.
 */
@Injectable()
export class SnapshotOperationsService {
  constructor(
    private readonly registry: HostRegistry,
    private readonly connections: HostConnections,
    private readonly jobs: JobSubmitter,
    private readonly confinement: PathConfinement,
  ) {}

  async create(
    caller: Caller,
    hostName: string,
    ref: string,
    input: CreateSnapshotDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    const host = await this.registry.getFor(caller, hostName);
    const name = input.name ?? timeName(new Date());
    const metadata = input.metadata ?? false;
    const { dom, disks } = await this.connections.withClient(host, async (c) => {
      const d = await requireDomain(c, ref, { caller, host: host.name });
      return {
        dom: d,
        disks: parseDomainXml((await c.rpc.domainGetXmlDesc({ dom: d, flags: 0 })).xml).disks,
      };
    });
    const wanted =
      input.disks ??
      disks
        .filter((d) => snapshottable(d) === null)
        .map((d) => ({ target: d.target, path: undefined }));
    if (wanted.length === 0) {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        `domain '${dom.name}' has no disk that can take an overlay (writable, with a file or block image)`,
      );
    }
    const fields: FieldError[] = [];
    const planned = wanted.flatMap((w, i) => {
      const disk = disks.find((d) => d.target === w.target);
      const field = input.disks ? `disks.${i}` : 'disks';
      if (!disk) {
        fields.push({
          field: `${field}.target`,
          message: `domain '${dom.name}' has no disk '${w.target}'`,
        });
        return [];
      }
      if (wanted.findIndex((x) => x.target === w.target) !== i) {
        fields.push({ field: `${field}.target`, message: `disk '${w.target}' is given twice` });
        return [];
      }
      const why = snapshottable(disk);
      if (why !== null) {
        fields.push({ field: `${field}.target`, message: why });
        return [];
      }
      const top = disk.chain[0]!;
      if (w.path === undefined && top.source.type === 'block') {
        fields.push({
          field: `${field}.path`,
          message: `disk '${w.target}' is a block device: give the overlay file's path`,
        });
        return [];
      }
      return [
        {
          target: w.target,
          top: top.source.path!,
          overlay:
            w.path !== undefined ? posix.normalize(w.path) : defaultOverlay(top.source.path!, name),
          given: w.path,
          field,
        },
      ];
    });
    planned.forEach((p, i) => {
      if (planned.findIndex((q) => q.overlay === p.overlay) !== i) {
        fields.push({
          field: `${p.field}.path`,
          message: `overlay '${p.overlay}' is given for two disks`,
        });
      }
    });
    if (fields.length > 0) throw invalidFields(fields);

    const inUse = new Map(
      disks.flatMap((d) => d.chain.map((img) => [img.source.path, d.target] as const)),
    );
    const precheck = (): Promise<void> =>
      this.connections.withClient(host, async (c) => {
        // Each overlay, given or beside its top image, where the caller may write;
        // never over a file (libvirt refuses one too, but only once the job runs).
        const overlays = planned.map((p) => ({
          field: `${p.field}.path`,
          path: p.given ?? p.overlay,
        }));
        await this.confinement.requireAllowed(c, host, accessOf(caller), overlays);
        if (!mayUseAnyPath(accessOf(caller))) {
          for (const [i, p] of planned.entries()) {
            await this.confinement.requireAbsent(c, host, { ...overlays[i]!, path: p.overlay });
          }
        }
        for (const p of planned) {
          const user = inUse.get(p.overlay);
          if (user !== undefined) {
            throw new AppError(
              ErrorCode.ALREADY_EXISTS,
              `overlay '${p.overlay}' is an image of disk '${user}' of this domain`,
            );
          }
          if (await findStorageVolByPath(c, p.overlay)) {
            throw new AppError(
              ErrorCode.ALREADY_EXISTS,
              `a file exists at '${p.overlay}' (a storage volume): choose another path or snapshot name`,
            );
          }
          if (await hasBlockJob(c, dom, p.target)) {
            throw new AppError(
              ErrorCode.CONFLICT,
              `disk '${p.target}' has a block job running: wait for it to end`,
            );
          }
        }
        if (metadata && (await hasSnapshot(c, dom, name))) {
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            `domain '${dom.name}' has a snapshot named '${name}' already`,
          );
        }
      });
    return this.jobs.submit(
      caller,
      {
        type: 'domain.snapshot',
        target: { host: host.name, uuid: uuidString(dom.uuid), name: dom.name },
        disk: planned.length === 1 ? planned[0]!.target : null,
        params: {
          name,
          description: input.description ?? null,
          metadata,
          disks: planned.map(({ target, top, overlay }) => ({ target, top, overlay })),
        },
        request: { domain: ref, ...input },
        precheck,
      },
      idempotencyKey,
    );
  }
}

async function hasBlockJob(c: LibvirtClient, dom: RemoteDomain, disk: string): Promise<boolean> {
  // A domain that is not running has no block job.
  const info = await orNull(
    c.rpc.domainGetBlockJobInfo({ dom, path: disk, flags: 0 }),
    isOperationInvalid,
  );
  return info?.found === 1;
}

async function hasSnapshot(c: LibvirtClient, dom: RemoteDomain, name: string): Promise<boolean> {
  const snap = await orNull(
    c.rpc.domainSnapshotLookupByName({ dom, name, flags: 0 }),
    isNoDomainSnapshot,
  );
  return snap !== null;
}
