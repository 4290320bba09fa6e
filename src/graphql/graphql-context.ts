import DataLoader from 'dataloader';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Caller } from '../common/auth/caller.js';

/**
 * The DataLoaders of one GraphQL request, created on first use and dropped
 * with the request: a loader batches the loads made while one level of the
 * query resolves, and caches each key for the rest of the request, so a
 * domain's XML is read once however many fields need it.
 */
export class RequestLoaders {
  private readonly loaders = new Map<string, DataLoader<unknown, unknown>>();

  /**
   * The loader named `name` of this request, created with `create` the first
   * time. Name loaders by what they load and for whom, e.g.
   * `domains.details:<host>`.
   */
  get<K, V, C = K>(name: string, create: () => DataLoader<K, V, C>): DataLoader<K, V, C> {
    let loader = this.loaders.get(name) as DataLoader<K, V, C> | undefined;
    if (!loader) {
      loader = create();
      this.loaders.set(name, loader as unknown as DataLoader<unknown, unknown>);
    }
    return loader;
  }
}

/** The context of every GraphQL operation. */
export interface GraphqlContext {
  /** The HTTP request: the bearer guard reads its headers and sets `user` (the Caller). */
  req: FastifyRequest & { user?: Caller };
  reply: FastifyReply;
  loaders: RequestLoaders;
}

/** Builds the context of one request from Fastify's request and reply. */
export function createGraphqlContext(req: FastifyRequest, reply: FastifyReply): GraphqlContext {
  return { req, reply, loaders: new RequestLoaders() };
}
