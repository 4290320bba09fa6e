/**
 * The one mapping from libvirt's storage shapes to the pool and volume views
 * both transports return, for reads and for job results alike.
 */
import {
  uuidString,
  type LibvirtClient,
  type RemoteStoragePool,
  type RemoteStorageVol,
} from '#src/libvirt/index.js';
import { parseStoragePoolXml, parseStorageVolumeXml } from '#src/xml/storage-xml.js';
import type { StoragePoolModel } from './models/storage-pool.model.js';
import type { StorageVolumeModel } from './models/storage-volume.model.js';
import {
  STORAGE_POOL_STATES,
  STORAGE_VOLUME_TYPES,
  type StoragePoolState,
  type StorageVolumeType,
} from './storage-states.js';

/** A pool's view: info (state, sizes), XML, autostart and persistence, asked for at once. */
export async function poolView(
  client: LibvirtClient,
  pool: RemoteStoragePool,
): Promise<StoragePoolModel> {
  const [info, { xml }, { autostart }, { persistent }] = await Promise.all([
    client.rpc.storagePoolGetInfo({ pool }),
    client.rpc.storagePoolGetXmlDesc({ pool, flags: 0 }),
    client.rpc.storagePoolGetAutostart({ pool }),
    client.rpc.storagePoolIsPersistent({ pool }),
  ]);
  const parsed = parseStoragePoolXml(xml);
  return {
    name: pool.name,
    uuid: uuidString(pool.uuid),
    type: parsed.type,
    state: poolState(info.state),
    persistent: persistent === 1,
    autostart: autostart === 1,
    path: parsed.path,
    source: parsed.source,
    capacityBytes: Number(info.capacity),
    allocationBytes: Number(info.allocation),
    availableBytes: Number(info.available),
  };
}

/** A volume's view, from its XML alone (it holds everything virStorageVolGetInfo would add). */
export async function volumeView(
  client: LibvirtClient,
  vol: RemoteStorageVol,
): Promise<StorageVolumeModel> {
  const { xml } = await client.rpc.storageVolGetXmlDesc({ vol, flags: 0 });
  const parsed = parseStorageVolumeXml(xml);
  return {
    name: vol.name,
    key: parsed.key ?? vol.key,
    path: parsed.path,
    type: volumeType(parsed.type),
    format: parsed.format,
    capacityBytes: parsed.capacityBytes ?? 0,
    allocationBytes: parsed.allocationBytes ?? 0,
    physicalBytes: parsed.physicalBytes,
    backingStore: parsed.backingStore,
  };
}

/** libvirt's virStoragePoolState number as a name; a state newer than this gateway reads as inaccessible. */
function poolState(state: number): StoragePoolState {
  return STORAGE_POOL_STATES[state] ?? 'inaccessible';
}

function volumeType(type: string): StorageVolumeType | null {
  return (STORAGE_VOLUME_TYPES as readonly string[]).includes(type)
    ? (type as StorageVolumeType)
    : null;
}
