import { DomainXmlFlags, type LibvirtClient, type RemoteDomain } from '#src/libvirt/index.js';
import { parseDomainXml } from '#src/xml/domain-xml.js';

/** A domain's disk that names an image. */
export interface ImageUser {
  domain: string;
  disk: string;
  /** The image it names (one of the paths asked about). */
  path: string;
}

/**
 * The first domain (and disk) whose live chain or persistent definition names
 * one of the images `paths` (or, given `volume`, that pool's volume by name), or null.
 * What guards an image from being deleted or overwritten under a domain;
 * the destination of a block copy a domain runs counts as its image.
 * A shut-off domain's definition names only the images it lists (libvirt
 * probes backing chains of running domains): its backing files are found
 * through the pool's volumes instead (storage pools' `volumeBackedBy`).
 */
export async function domainUsing(
  c: LibvirtClient,
  paths: readonly string[],
  options: { volume?: { pool: string; volume: string }; exceptDomainUuid?: Buffer } = {},
): Promise<ImageUser | null> {
  const { volume, exceptDomainUuid } = options;
  if (paths.length === 0 && volume === undefined) return null;
  const { domains } = await c.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
  const others = domains.filter((dom) => !exceptDomainUuid?.equals(dom.uuid));
  // Many domains' XML at once (the connection keeps up to 64 calls in flight), in order.
  for (let i = 0; i < others.length; i += USERS_BATCH) {
    const found = await Promise.all(
      others.slice(i, i + USERS_BATCH).map((dom) => userIn(c, dom, paths, volume)),
    );
    const user = found.find((u) => u !== null);
    if (user) return user;
  }
  return null;
}

/** Domains whose XML is read at a time when looking for an image's users. */
const USERS_BATCH = 32;

/** The disk of `dom` whose live chain, block job destination or definition names the image. */
async function userIn(
  c: LibvirtClient,
  dom: RemoteDomain,
  paths: readonly string[],
  volume: { pool: string; volume: string } | undefined,
): Promise<ImageUser | null> {
  // A running domain (id > 0) has a live XML and a definition; a shut-off one's XML is its definition.
  const xmls = await Promise.all(
    (dom.id > 0 ? [0, DomainXmlFlags.INACTIVE] : [0]).map((flags) =>
      c.rpc.domainGetXmlDesc({ dom, flags }).then(
        (r) => r.xml,
        () => null, // gone meanwhile, or transient (no inactive definition)
      ),
    ),
  );
  for (const xml of xmls) {
    if (xml === null) continue;
    for (const disk of parseDomainXml(xml).disks) {
      // A block job's destination is the disk's image-to-be: in use as much as the chain.
      for (const img of disk.mirror ? [...disk.chain, disk.mirror] : disk.chain) {
        const byPath = img.source.path !== null && paths.includes(img.source.path);
        const byVolume =
          volume !== undefined &&
          img.source.volume?.pool === volume.pool &&
          img.source.volume.volume === volume.volume;
        if (byPath || byVolume) {
          return { domain: dom.name, disk: disk.target, path: img.source.path ?? paths[0]! };
        }
      }
    }
  }
  return null;
}
