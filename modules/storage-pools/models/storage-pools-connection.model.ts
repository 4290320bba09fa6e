import { connectionTypes } from '#src/graphql/connection.js';
import { StoragePoolModel } from './storage-pool.model.js';
import { StorageVolumeModel } from './storage-volume.model.js';

/** A page of a host's storage pools in GraphQL. */
export const StoragePoolsConnection = connectionTypes(StoragePoolModel, 'StoragePools');
export type StoragePoolsConnection = InstanceType<typeof StoragePoolsConnection>;

/** A page of a pool's volumes in GraphQL. */
export const StorageVolumesConnection = connectionTypes(StorageVolumeModel, 'StorageVolumes');
export type StorageVolumesConnection = InstanceType<typeof StorageVolumesConnection>;
