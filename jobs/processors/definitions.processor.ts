import { Injectable } from '@nestjs/common';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import {
  DomainDefineFlags,
  DomainState,
  DomainUndefineFlags,
  DomainXmlFlags,
  LibvirtError,
  type LibvirtClient,
  type RemoteDomain,
} from '#src/libvirt/index.js';
import { parseXml, path } from '#src/xml/xml.js';
import { uuidString } from '#modules/domains/domain-views.js';
import type { QueueProcessor } from '../processor.js';

/** The domain named `name`, or null. */
async function byName(client: LibvirtClient, name: string): Promise<RemoteDomain | null> {
  try {
    return (await client.rpc.domainLookupByName({ name })).dom;
  } catch (err) {
    if (err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_DOMAIN') return null;
    throw err;
  }
}

/**
 * Domain definitions: define, undefine. Each handler looks at the live state
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
  };
}
