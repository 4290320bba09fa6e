import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import {
  DomainDefineFlags,
  DomainSnapshotCreateFlags,
  DomainState,
  DomainUndefineFlags,
  DomainXmlFlags,
  LibvirtError,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { buildDiskSnapshotXml } from '#src/xml/define-snapshot.js';
import { parseDomainXml } from '#src/xml/domain-xml.js';
import { parseXml, path } from '#src/xml/xml.js';
import { disksView, uuidString } from '#modules/domains/domain-views.js';
import type { QueueProcessor } from '../processor.js';

function snapshotResult(
  params: { name: string; metadata: boolean; disks: { target: string; overlay: string }[] },
  views: ReturnType<typeof disksView>,
  changed: boolean,
): Record<string, unknown> {
  return {
    name: params.name,
    metadata: params.metadata,
    changed,
    overlays: params.disks.map(({ target, overlay }) => ({ target, path: overlay })),
    disks: views.filter((v) => params.disks.some((d) => d.target === v.target)),
  };
}

/** The domain named `name`, or null. */
async function byName(client: LibvirtClient, name: string): Promise<RemoteDomain | null> {
  try {
    return (await client.rpc.domainLookupByName({ name })).dom;
  } catch (err) {
    if (err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_DOMAIN') return null;
    throw err;
  }
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
 * Domain definitions: define, undefine, external disk-only snapshots. Each handler looks at the live state
 * first: a define whose domain (its UUID, given at request time) exists under
 * its name was done by an earlier attempt; an undefine whose domain is gone
 * is done.
 */
@Injectable()
export class DefinitionsProcessor implements QueueProcessor<'definitions'> {
  readonly queue = 'definitions' as const;
  readonly concurrency = 8;

  readonly handlers: QueueProcessor<'definitions'>['handlers'] = {
    'domain.define': async ({ client, dom, job }) => {
      const { uuid, name } = job.target;
      if (dom) {
        if (dom.name !== name) {
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            `a domain with UUID ${uuid} exists already, named '${dom.name}'`,
          );
        }
        return { uuid, name, changed: false };
      }
      const other = await byName(client, name);
      if (other) {
        throw new AppError(
          ErrorCode.ALREADY_EXISTS,
          `a domain named '${name}' exists already (UUID ${uuidString(other.uuid)})`,
        );
      }
      const defined = await client.rpc.domainDefineXmlFlags({
        xml: job.params.xml,
        flags: DomainDefineFlags.VALIDATE,
      });
      return { uuid: uuidString(defined.dom.uuid), name: defined.dom.name, changed: true };
    },

    'domain.undefine': async ({ client, dom, job }) => {
      const { uuid, name } = job.target;
      if (!dom || (await client.rpc.domainIsPersistent({ dom })).persistent !== 1) {
        return { uuid, name, changed: false }; // undefined already (an earlier attempt, or someone else)
      }
      const { state } = await client.rpc.domainGetState({ dom, flags: 0 });
      if (state !== DomainState.SHUTOFF && state !== DomainState.NOSTATE) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `domain '${name}' was started since the request: stop it first (libvirt would leave it running as a transient domain)`,
        );
      }
      const { snapshotsMetadata, managedSave, nvram } = job.params;
      let flags =
        (snapshotsMetadata ? DomainUndefineFlags.SNAPSHOTS_METADATA : 0) |
        (managedSave ? DomainUndefineFlags.MANAGED_SAVE : 0);
      if (nvram) {
        flags |= DomainUndefineFlags.NVRAM;
      } else {
        // libvirt refuses a domain with NVRAM unless told to keep or delete it: keep it.
        const { xml } = await client.rpc.domainGetXmlDesc({ dom, flags: DomainXmlFlags.INACTIVE });
        if (path(parseXml(xml), 'os', 'nvram') !== null) flags |= DomainUndefineFlags.KEEP_NVRAM;
      }
      await client.rpc.domainUndefineFlags({ dom, flags });
      return { uuid, name, changed: true };
    },

    'domain.snapshot': async ({ client, dom, job }) => {
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
        if (
          err instanceof LibvirtError &&
          err.codeName === 'VIR_ERR_CONFIG_UNSUPPORTED' &&
          /already exists/.test(err.message)
        ) {
          throw new AppError(ErrorCode.ALREADY_EXISTS, `libvirt: ${err.message}`, { cause: err });
        }
        throw err;
      }
      return snapshotResult(job.params, (await disksNow(client, dom)).views, true);
    },
  };
}
