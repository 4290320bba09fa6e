/**
 * What other features use of the storage feature. Plain functions only
 * (models are imported from ./models/): the worker imports this, and must
 * not load the HTTP and GraphQL layers.
 */
export { poolVolumeBackedBy } from './backed-volumes.js';
