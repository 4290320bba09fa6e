import {
  DomainXmlFlags,
  type LibvirtClient,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import { parseDomainXml } from '#src/xml/domain-xml.js';
import { parseStorageVolumeXml } from '#src/xml/storage-xml.js';

/** A domain's disk that names an image. */
export interface ImageUser {
  domain: string;
  disk: string;
}

/**
 * The first domain (and disk) whose live chain or persistent definition names
 * the image `path` (or, given `volume`, that pool's volume by name), or null.
 * What guards an image from being deleted or overwritten under a domain.
 * A shut-off domain's definition names only the images it lists (libvirt
 * probes backing chains of running domains): its backing files are found
 * through the pool's volumes instead (`volumeBackedBy`).
 */
export async function domainUsing(
  c: LibvirtClient,
  path: string,
  options: { volume?: { pool: string; volume: string }; exceptDomainUuid?: Buffer } = {},
): Promise<ImageUser | null> {
  const { volume, exceptDomainUuid } = options;
  const { domains } = await c.rpc.connectListAllDomains({ needResults: 1, flags: 0 });
  for (const dom of domains) {
    if (exceptDomainUuid?.equals(dom.uuid)) continue;
    const xmls = await Promise.all(
      [0, DomainXmlFlags.INACTIVE].map((flags) =>
        c.rpc.domainGetXmlDesc({ dom, flags }).then(
          (r) => r.xml,
          () => null, // gone meanwhile, or transient (no inactive definition)
        ),
      ),
    );
    for (const xml of xmls) {
      if (xml === null) continue;
      for (const disk of parseDomainXml(xml).disks) {
        const uses = disk.chain.some(
          (img) =>
            img.source.path === path ||
            (volume !== undefined &&
              img.source.volume?.pool === volume.pool &&
              img.source.volume.volume === volume.volume),
        );
        if (uses) return { domain: dom.name, disk: disk.target };
      }
    }
  }
  return null;
}

/** The name of a volume of `pool` whose backing image is `path`, or null. */
export async function volumeBackedBy(
  c: LibvirtClient,
  pool: RemoteStoragePool,
  path: string,
): Promise<string | null> {
  const { vols } = await c.rpc.storagePoolListAllVolumes({ pool, needResults: 1, flags: 0 });
  const backings = await Promise.all(
    vols.map(async (vol) => {
      const xml = await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 }).catch(() => null);
      return xml && parseStorageVolumeXml(xml.xml).backingStore?.path === path ? vol.name : null;
    }),
  );
  return backings.find((n) => n !== null) ?? null;
}
