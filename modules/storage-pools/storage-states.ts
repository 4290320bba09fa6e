/** libvirt's storage vocabularies, as the views and models name them. */

/** libvirt's virStoragePoolState, lower-cased, in the order of its numbers. */
export const STORAGE_POOL_STATES = [
  'inactive',
  'building',
  'running',
  'degraded',
  'inaccessible',
] as const;
export type StoragePoolState = (typeof STORAGE_POOL_STATES)[number];

/** libvirt's virStorageVolType, lower-cased, as volume XML names them. */
export const STORAGE_VOLUME_TYPES = ['file', 'block', 'dir', 'network', 'netdir', 'ploop'] as const;
export type StorageVolumeType = (typeof STORAGE_VOLUME_TYPES)[number];
