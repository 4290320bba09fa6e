import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import { jobAccess, mayUseAnyPath, PathConfinement } from '#src/hosts/path-confinement.js';
import {
  DomainSnapshotCreateFlags,
  DomainXmlFlags,
  isConfigUnsupported,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { buildDiskSnapshotXml } from '#src/xml/define-snapshot.js';
import { parseDomainXml } from '#src/xml/domain-xml.js';
import { JobProcessor, type QueueProcessor } from '#jobs/processor.js';
import { disksView } from '#modules/domains/index.js';
import type { SnapshotResult } from './models/snapshot-result.model.js';

function snapshotResult(
  params: { name: string; metadata: boolean; disks: { target: string; overlay: string }[] },
  views: ReturnType<typeof disksView>,
  changed: boolean,
): SnapshotResult {
  return {
    name: params.name,
    metadata: params.metadata,
    changed,
    overlays: params.disks.map(({ target, overlay }) => ({ target, path: overlay })),
    disks: views.filter((v) => params.disks.some((d) => d.target === v.target)),
  };
}

/** The disks of `dom` as the API shows them, read back from libvirt (live chain, persistent definition). */
async function disksNow(client: LibvirtClient, dom: RemoteDomain) {
  const [{ xml }, { persistent }] = await Promise.all([
    client.rpc.domainGetXmlDesc({ dom, flags: 0 }),
    client.rpc.domainIsPersistent({ dom }),
  ]);
  const live = parseDomainXml(xml);
  const def =
    live.id === null
      ? live // not running: its XML is the persistent definition
      : persistent === 1
        ? parseDomainXml(
            (await client.rpc.domainGetXmlDesc({ dom, flags: DomainXmlFlags.INACTIVE })).xml,
          )
        : null;
  return { live, views: disksView(live, def, null) };
}

/**
 * The worker side of SnapshotOperationsService: external disk-only
 * snapshots, atomic across the disks. A re-run after a crash finds the
 * overlays an earlier attempt put on top and reports them, taking nothing twice.
 */
@Injectable()
@JobProcessor()
export class SnapshotsProcessor implements QueueProcessor<'snapshots'> {
  readonly queue = 'snapshots' as const;
  readonly concurrency = 8;

  constructor(private readonly confinement: PathConfinement) {}

  readonly handlers: QueueProcessor<'snapshots'>['handlers'] = {
    'domain.snapshot': async ({ client, dom, job, host }) => {
      const { name, description, metadata, disks } = job.params;
      const before = await disksNow(client, dom);
      const topOf = (target: string): string | null =>
        before.live.disks.find((d) => d.target === target)?.chain[0]?.source.path ?? null;
      const done = disks.filter((d) => topOf(d.target) === d.overlay);
      if (done.length === disks.length) {
        // An earlier attempt took it (ATOMIC: all disks or none).
        return snapshotResult(job.params, before.views, false);
      }
      for (const d of disks) {
        const top = topOf(d.target);
        if (top !== d.top) {
          throw new AppError(
            ErrorCode.CONFLICT,
            top === null
              ? `disk '${d.target}' is gone since the request`
              : `the top image of disk '${d.target}' changed since the request ('${d.top}' then, '${top}' now): ask again`,
          );
        }
      }
      // Where the overlays lead now, for the requester (an old job: the least privileged).
      const access = jobAccess(job.access);
      const overlays = disks.map((d, i) => ({ field: `disks.${i}.path`, path: d.overlay }));
      await this.confinement.requireAllowed(client, host, access, overlays);
      if (!mayUseAnyPath(access)) {
        for (const o of overlays) await this.confinement.requireAbsent(client, host, o);
      }
      const xml = buildDiskSnapshotXml({
        name,
        description,
        disks: before.live.disks.map((d) => ({
          target: d.target,
          overlay: disks.find((x) => x.target === d.target)?.overlay ?? null,
        })),
      });
      const flags =
        DomainSnapshotCreateFlags.DISK_ONLY |
        DomainSnapshotCreateFlags.ATOMIC |
        (metadata ? 0 : DomainSnapshotCreateFlags.NO_METADATA);
      try {
        await client.rpc.domainSnapshotCreateXml({ dom, xmlDesc: xml, flags });
      } catch (err) {
        // libvirt will not overwrite a file: say so with the code a caller can act on.
        if (isConfigUnsupported(err) && /already exists/.test(err.message)) {
          throw new AppError(ErrorCode.ALREADY_EXISTS, `libvirt: ${err.message}`, { cause: err });
        }
        throw err;
      }
      return snapshotResult(job.params, (await disksNow(client, dom)).views, true);
    },
  };
}
