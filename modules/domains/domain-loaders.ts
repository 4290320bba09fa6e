/**
 * Per-request DataLoaders of domain data for GraphQL: the fields of every
 * domain a query reaches at one level are gathered into one batch per host,
 * read with the service's bulk methods, and kept for the rest of the request.
 * A domain's XML is thus read once per request however many of its fields
 * (disks, chains, interfaces…) the query asks for, and however many domains.
 */
import DataLoader from 'dataloader';
import { AppError, ErrorCode } from '#src/common/errors/app-error.js';
import type { RequestLoaders } from '#src/graphql/graphql-context.js';
import type { HostRegistry } from '#src/hosts/host-registry.js';
import { uuidBytes, type RemoteDomain } from '#src/libvirt/index.js';
import type { DomainsService } from './domains.service.js';
import type { DiskModel, InterfaceModel } from './models/domain.model.js';

/** What a loader needs to know of a domain: what a listing already gave. */
export interface DomainRef {
  uuid: string;
  name: string;
  id: number | null;
}

export interface DomainDetails {
  disks: DiskModel[];
  interfaces: InterfaceModel[];
}

function remoteDomain(ref: DomainRef): RemoteDomain {
  return { name: ref.name, uuid: uuidBytes(ref.uuid), id: ref.id ?? -1 };
}

/** Disks (with chains) and interfaces of domains of `host`: one bulk read per batch. */
export function domainDetailsLoader(
  loaders: RequestLoaders,
  host: string,
  registry: HostRegistry,
  domains: DomainsService,
): DataLoader<DomainRef, DomainDetails, string> {
  return loaders.get(
    `domains.details:${host}`,
    () =>
      new DataLoader<DomainRef, DomainDetails, string>(
        async (refs) => {
          const record = await registry.get(host);
          try {
            return await domains.detailsOf(record, refs.map(remoteDomain));
          } catch (err) {
            // A domain undefined since the listing fails the bulk read; read the batch
            // one by one so that only the vanished domain's fields fail.
            if (
              refs.length === 1 ||
              !(err instanceof AppError) ||
              err.code !== ErrorCode.NOT_FOUND
            ) {
              throw err;
            }
            return Promise.all(
              refs.map((ref) =>
                domains.detailsOf(record, [remoteDomain(ref)]).then(
                  ([details]) => details!,
                  (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
                ),
              ),
            );
          }
        },
        { cacheKeyFn: (ref) => ref.uuid },
      ),
  );
}
