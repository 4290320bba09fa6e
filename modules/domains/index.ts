/**
 * What other features use of the domains feature. Plain functions and types
 * only (models are imported from ./models/): the worker imports this, and
 * must not load the HTTP and GraphQL layers.
 */
export { hostOfDomain, type DomainNode } from './domain-nodes.js';
export { disksView } from './domain-views.js';
export { domainUsing, type ImageUser } from './image-users.js';
