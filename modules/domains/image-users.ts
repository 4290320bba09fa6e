import {
  DomainXmlFlags,
  LibvirtError,
  type LibvirtClient,
  type RemoteDomain,
  type RemoteStoragePool,
  type RemoteStorageVol,
} from '#src/libvirt/index.js';
import { parseDomainXml } from '#src/xml/domain-xml.js';
import { parseStorageVolumeXml } from '#src/xml/storage-xml.js';

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
 * through the pool's volumes instead (`volumeBackedBy`).
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

/**
 * The name of a volume of `pool` whose backing image is `path` (other than the
 * volumes at `exceptPaths`), or null.
 */
export async function volumeBackedBy(
  c: LibvirtClient,
  pool: RemoteStoragePool,
  path: string,
  exceptPaths: readonly string[] = [],
): Promise<string | null> {
  const { vols } = await c.rpc.storagePoolListAllVolumes({ pool, needResults: 1, flags: 0 });
  const backings = await Promise.all(
    vols.map(async (vol) => {
      const xml = await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 }).catch(() => null);
      if (xml === null) return null;
      const parsed = parseStorageVolumeXml(xml.xml);
      const backed = parsed.backingStore?.path === path;
      return backed && !exceptPaths.includes(parsed.path ?? '') ? vol.name : null;
    }),
  );
  return backings.find((n) => n !== null) ?? null;
}

/**
 * The volume of the pool holding the file `path` that is backed by it (other
 * than `exceptPaths`), with that pool's name; null when none is, or when
 * `path` is in no pool.
 */
export async function poolVolumeBackedBy(
  c: LibvirtClient,
  path: string,
  exceptPaths: readonly string[] = [],
): Promise<{ pool: string; volume: string } | null> {
  let vol: RemoteStorageVol;
  try {
    ({ vol } = await c.rpc.storageVolLookupByPath({ path }));
  } catch (err) {
    if (err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_STORAGE_VOL') return null;
    throw err;
  }
  const { pool } = await c.rpc.storagePoolLookupByVolume({ vol });
  const volume = await volumeBackedBy(c, pool, path, exceptPaths);
  return volume === null ? null : { pool: pool.name, volume };
}
