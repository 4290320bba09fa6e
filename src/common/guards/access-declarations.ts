import { Injectable, RequestMethod, type OnModuleInit } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { RESOLVER_NAME_METADATA, RESOLVER_TYPE_METADATA } from '@nestjs/graphql';
import { IS_PUBLIC_KEY } from '../decorators/public.decorator.js';
import { ACCESS_KEY } from '../auth/access.js';
import { CALLER_ROLES, type CallerRole } from '../auth/caller.js';

/** The root GraphQL types whose fields must each declare their access. */
const ROOT_TYPES = new Set(['Query', 'Mutation', 'Subscription']);

/** One REST route or root GraphQL field and what it declares. */
export interface DeclaredHandler {
  kind: 'rest' | 'graphql';
  /** `ClassName.method` */
  name: string;
  /** The declared role, 'public' for @Public(), null when it declares nothing. */
  access: CallerRole | 'public' | null;
  /** For a REST route: its method and path (`/v1/hosts/:host`). */
  route?: { method: string; path: string };
  /** For a GraphQL field: its name in the schema. */
  field?: string;
}

/**
 * Every REST route and every GraphQL query, mutation and subscription field
 * declares what it needs, with @Access(role) or @Public(), on itself or on
 * its class. At start-up this walks the live controllers and resolvers and
 * refuses to start the app when one declares nothing: a new route cannot be
 * forgotten open.
 */
@Injectable()
export class AccessDeclarations implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  onModuleInit(): void {
    const missing = this.handlers().filter((h) => h.access === null);
    if (missing.length > 0) {
      throw new Error(
        `these handlers declare no access (add @Access(${CALLER_ROLES.map((r) => `'${r}'`).join('|')}) or @Public()): ${missing.map((h) => h.name).join(', ')}`,
      );
    }
  }

  /** Every REST route handler and root GraphQL field resolver of the app. */
  handlers(): DeclaredHandler[] {
    const out: DeclaredHandler[] = [];
    const wrappers = [...this.discovery.getControllers(), ...this.discovery.getProviders()];
    for (const wrapper of wrappers) {
      const instance = wrapper.instance as object | null | undefined;
      if (!instance || typeof instance !== 'object') continue;
      const cls = instance.constructor;
      const isController = this.isController(wrapper);
      const prototype = Object.getPrototypeOf(instance) as object;
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const handler = (prototype as Record<string, unknown>)[method] as object;
        let kind: DeclaredHandler['kind'] | null = null;
        if (isController && Reflect.hasMetadata(PATH_METADATA, handler)) kind = 'rest';
        const rootType = Reflect.getMetadata(RESOLVER_TYPE_METADATA, handler) as unknown;
        if (typeof rootType === 'string' && ROOT_TYPES.has(rootType)) kind = 'graphql';
        if (kind === null) continue;
        const entry: DeclaredHandler = {
          kind,
          name: `${cls.name}.${method}`,
          access: this.accessOf(handler, cls),
        };
        if (kind === 'rest') entry.route = routeOf(cls, handler);
        else
          entry.field = (Reflect.getMetadata(RESOLVER_NAME_METADATA, handler) as string) ?? method;
        out.push(entry);
      }
    }
    return out;
  }

  private isController(wrapper: { metatype: unknown }): boolean {
    return (
      typeof wrapper.metatype === 'function' && Reflect.hasMetadata(PATH_METADATA, wrapper.metatype)
    );
  }

  private accessOf(handler: object, cls: object): DeclaredHandler['access'] {
    const targets = [handler, cls] as Array<() => void>;
    if (this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC_KEY, targets) === true) {
      return 'public';
    }
    return this.reflector.getAllAndOverride<CallerRole | undefined>(ACCESS_KEY, targets) ?? null;
  }
}

function routeOf(cls: object, handler: object): { method: string; path: string } {
  const join = (...parts: unknown[]): string =>
    '/' +
    parts
      .flatMap((p) => (Array.isArray(p) ? p : [p]))
      .filter((p): p is string => typeof p === 'string' && p !== '' && p !== '/')
      .map((p) => p.replace(/^\/+|\/+$/g, ''))
      .join('/');
  const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod;
  return {
    method: RequestMethod[method],
    path: join(
      Reflect.getMetadata(PATH_METADATA, cls),
      Reflect.getMetadata(PATH_METADATA, handler),
    ),
  };
}
