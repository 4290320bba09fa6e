import {
  findStorageVolByPath,
  type LibvirtClient,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import { parseStorageVolumeXml } from '#src/xml/storage-xml.js';

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
  const vol = await findStorageVolByPath(c, path);
  if (!vol) return null;
  const { pool } = await c.rpc.storagePoolLookupByVolume({ vol });
  const volume = await volumeBackedBy(c, pool, path, exceptPaths);
  return volume === null ? null : { pool: pool.name, volume };
}
