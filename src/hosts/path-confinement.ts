/**
 * Confined paths: every path a client gives (a disk's file, a backing image,
 * a copy's destination, an overlay, a pool's directory) must lead, symlinks
 * followed, inside an active storage pool the caller's scope covers or inside
 * a configured root (VIRTGATE_PATH_ROOTS). Checked by the api when the
 * request comes and again by the worker when the job starts, so a symlink
 * swapped in between is seen.
 *
 * Whose filesystem: a host whose URI reaches libvirtd on this machine (a
 * UNIX socket, or TCP to a loopback address) shares the gateway's, and paths
 * are resolved here with realpath. For another host the gateway cannot look
 * at the files: it goes by what libvirt says (pool directories from the pool
 * XML, volumes by path), lexically; a symlink placed on that host is not seen.
 */
import { lstat, realpath } from 'node:fs/promises';
import { posix } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import type { CallerRole, HostScope } from '../common/auth/caller.js';
import { CALLER_ROLES } from '../common/auth/caller.js';
import { poolInScope } from '../common/auth/scope.js';
import { AppError, ErrorCode } from '../common/errors/app-error.js';
import type { AppConfig } from '../config/config.js';
import { APP_CONFIG } from '../config/config.module.js';
import { findStorageVolByPath, parseLibvirtUri, type LibvirtClient } from '../libvirt/index.js';
import { parseStoragePoolXml } from '../xml/storage-xml.js';
import type { HostRecord } from './host-registry.js';

/** What confinement needs of a caller: its role and scopes (carried with each job). */
export interface PathAccess {
  readonly role: CallerRole;
  readonly scopes: readonly HostScope[] | null;
}

/**
 * Whether `access` may give any path: an admin whose token has no scope. A
 * scoped admin is held to its pools and the roots, like everyone else.
 */
export function mayUseAnyPath(access: PathAccess): boolean {
  return access.role === 'admin' && access.scopes === null;
}

/** The least privileged access: no pool in scope, only the configured roots. */
export const LEAST_ACCESS: PathAccess = Object.freeze({
  role: 'viewer',
  scopes: Object.freeze([]),
});

/** A caller's access, as a job carries it. */
export function accessOf(caller: PathAccess): PathAccess {
  return { role: caller.role, scopes: caller.scopes };
}

/**
 * The access a queued job carries, checked for shape; a job queued before
 * jobs carried it (or with anything malformed) gets the least privileged.
 */
export function jobAccess(carried: unknown): PathAccess {
  if (typeof carried !== 'object' || carried === null) return LEAST_ACCESS;
  const { role, scopes } = carried as { role?: unknown; scopes?: unknown };
  if (typeof role !== 'string' || !(CALLER_ROLES as readonly string[]).includes(role)) {
    return LEAST_ACCESS;
  }
  if (scopes === null) return { role: role as CallerRole, scopes: null };
  const valid =
    Array.isArray(scopes) &&
    scopes.every(
      (s: unknown) =>
        typeof s === 'object' &&
        s !== null &&
        typeof (s as HostScope).host === 'string' &&
        [(s as HostScope).domains, (s as HostScope).pools].every(
          (l) => l === undefined || (Array.isArray(l) && l.every((x) => typeof x === 'string')),
        ),
    );
  return valid ? { role: role as CallerRole, scopes: scopes as HostScope[] } : LEAST_ACCESS;
}

/** One path of a request, with the field it came in (named in the refusal). */
export interface PathField {
  readonly field: string;
  readonly path: string;
}

/** Whether `host`'s libvirtd runs on this machine, so that its paths are this machine's. */
export function sharesOurFilesystem(host: Pick<HostRecord, 'uri'>): boolean {
  try {
    const uri = parseLibvirtUri(host.uri);
    if (uri.driver === 'test') return false; // the test driver's pools and files are make-believe
    if (uri.transport === 'unix') return true;
    const h = (uri.host ?? '').replace(/^\[|\]$/g, '').toLowerCase();
    return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
  } catch {
    return false;
  }
}

/** Whether `p` has a `..` segment (refused outright: what it names depends on symlinks). */
export function hasDotDot(p: string): boolean {
  return p.split('/').includes('..');
}

/** Whether `p` is `root` or lies below it (both absolute and normalized). */
export function isWithin(p: string, root: string): boolean {
  return p === root || p.startsWith(root === '/' ? '/' : `${root}/`);
}

/**
 * Where `p` leads on this machine's filesystem, every symlink followed: the
 * realpath of `p`, or for a path that does not exist yet, the realpath of its
 * nearest existing ancestor with the missing names appended. A dangling
 * symlink (something exists, but leads nowhere) is refused: what it would
 * create is not known here.
 */
export async function resolveHere(p: string): Promise<string> {
  const missing: string[] = [];
  let at = posix.normalize(p);
  for (;;) {
    try {
      const real = await realpath(at);
      return missing.length === 0 ? real : posix.join(real, ...missing.reverse());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT')
        throw new Unresolvable(`${at} cannot be resolved (${code ?? 'error'})`);
    }
    if (
      await lstat(at).then(
        () => true,
        () => false,
      )
    ) {
      throw new Unresolvable(`${at} is a symlink that leads nowhere`);
    }
    const base = posix.basename(at);
    if (base === '..' || base === '.' || at === '/')
      throw new Unresolvable(`${p} cannot be resolved`);
    missing.push(base);
    at = posix.dirname(at);
  }
}

/** A path whose destination cannot be told; the message says why. */
class Unresolvable extends Error {}

/** Whether anything (a file, a directory, a symlink, even a dangling one) is at `p` on this machine. */
async function existsHere(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return false;
      throw err;
    },
  );
}

/** `VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE`. */
const LIST_ACTIVE_POOLS = 2;

/** A place paths may lead into: a pool's directory or a configured root. */
interface Root {
  readonly path: string;
  /** The pool's name; null for a configured root. */
  readonly pool: string | null;
}

/**
 * The confinement rule over one host: which paths a caller may give. Admins
 * may give any path for a disk, a backing image, a copy or an overlay; a pool's
 * directory lies inside the configured roots whoever asks. For others a path
 * must be absolute and have no `..` segment (what it names would depend on
 * symlinks along the way).
 */
@Injectable()
export class PathConfinement {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /**
   * Refuses (PATH_NOT_ALLOWED, naming the field) each path that does not lead
   * inside an active pool `access` covers on `host` or a configured root.
   * `client` reaches the host (the api's or the worker's connection).
   */
  async requireAllowed(
    client: LibvirtClient,
    host: HostRecord,
    access: PathAccess,
    paths: readonly PathField[],
  ): Promise<void> {
    // Unscoped admins may give any path (normalized by the features, `..` segments included).
    if (paths.length === 0 || mayUseAnyPath(access)) return;
    refuseMalformed(paths);
    const roots = [...this.configuredRoots(), ...(await this.poolRoots(client, host, access))];
    await this.requireWithin(
      host,
      roots,
      paths,
      'a storage pool of your scope or a configured root',
    );
  }

  /** A pool's directory: admins only, and inside the configured roots. */
  async requirePoolPathAllowed(
    host: HostRecord,
    access: PathAccess,
    path: PathField,
  ): Promise<void> {
    refuseMalformed([path]);
    if (access.role !== 'admin') {
      throw notAllowed(path, 'only an admin may give a storage pool its directory');
    }
    await this.requireWithin(
      host,
      this.configuredRoots(),
      [path],
      this.config.pathRoots.length === 0
        ? 'a configured root (VIRTGATE_PATH_ROOTS is empty: no pool can be defined through the gateway)'
        : `a configured root (${this.config.pathRoots.join(', ')})`,
    );
  }

  /**
   * A pool whose directory lies inside a configured root must still lead
   * inside it when it is started (PATH_NOT_ALLOWED, field `field`): a symlink
   * put in its place since the definition would make another directory a
   * pool. Pools defined elsewhere (by the host's admin) are left as they are.
   */
  async requirePoolStillInRoots(host: HostRecord, path: PathField): Promise<void> {
    if (!sharesOurFilesystem(host) || !path.path.startsWith('/')) return;
    const lexical = posix.normalize(path.path);
    const roots = this.config.pathRoots.filter((r) => isWithin(lexical, r));
    if (roots.length === 0) return;
    await this.requireWithin(
      host,
      roots.map((r) => ({ path: r, pool: null })),
      [{ field: path.field, path: lexical }],
      `the configured root it was defined in (${roots.join(', ')})`,
    );
  }

  /**
   * Refuses (ALREADY_EXISTS, naming the field) a path at which something
   * exists: a file is never overwritten unless asked for. On another host only
   * the files libvirt knows as volumes can be seen.
   */
  async requireAbsent(client: LibvirtClient, host: HostRecord, path: PathField): Promise<void> {
    const exists = sharesOurFilesystem(host)
      ? await existsHere(path.path)
      : (await findStorageVolByPath(client, path.path)) !== null;
    if (exists) {
      const message = `${path.path} exists already: it is never overwritten`;
      throw new AppError(ErrorCode.ALREADY_EXISTS, `${path.field}: ${message}`, {
        fields: [{ field: path.field, message }],
      });
    }
  }

  /**
   * Refuses (PATH_NOT_ALLOWED) a file to be overwritten (reuseExisting) that
   * is not a volume of an active pool `access` covers. Admins may reuse any file.
   */
  async requireReusableVolume(
    client: LibvirtClient,
    host: HostRecord,
    access: PathAccess,
    path: PathField,
  ): Promise<void> {
    if (mayUseAnyPath(access)) return;
    const vol = await findStorageVolByPath(client, path.path);
    if (!vol || !poolInScope(asCaller(access), host.name, vol.pool)) {
      throw notAllowed(
        path,
        'with reuseExisting, only a volume of a storage pool of your scope may be overwritten',
      );
    }
    // libvirt found the volume by its path; it must also be where the path leads.
    await this.requireAllowed(client, host, access, [path]);
  }

  private configuredRoots(): Root[] {
    return this.config.pathRoots.map((path) => ({ path, pool: null }));
  }

  /** The directories of the host's active pools that `access` covers, from libvirt's pool XML. */
  private async poolRoots(
    client: LibvirtClient,
    host: HostRecord,
    access: PathAccess,
  ): Promise<Root[]> {
    const { pools } = await client.rpc.connectListAllStoragePools({
      needResults: 1,
      flags: LIST_ACTIVE_POOLS,
    });
    const caller = asCaller(access);
    const inScope = pools.filter((p) => poolInScope(caller, host.name, p.name));
    const roots = await Promise.all(
      inScope.map(async (pool): Promise<Root | null> => {
        const xml = await client.rpc.storagePoolGetXmlDesc({ pool, flags: 0 }).catch(() => null);
        const path = xml ? parseStoragePoolXml(xml.xml).path : null;
        return path?.startsWith('/') ? { path: posix.normalize(path), pool: pool.name } : null;
      }),
    );
    return roots.filter((r): r is Root => r !== null);
  }

  private async requireWithin(
    host: HostRecord,
    roots: readonly Root[],
    paths: readonly PathField[],
    where: string,
  ): Promise<void> {
    const here = sharesOurFilesystem(host);
    const resolvedRoots = here
      ? (
          await Promise.all(
            roots.map(async (r) => {
              const real = await realpath(r.path).catch(() => null);
              return real === null ? null : { ...r, path: real };
            }),
          )
        ).filter((r): r is Root => r !== null)
      : roots;
    for (const p of paths) {
      let resolved: string;
      try {
        resolved = here ? await resolveHere(p.path) : posix.normalize(p.path);
      } catch (err) {
        if (!(err instanceof Unresolvable)) throw err;
        throw notAllowed(p, err.message);
      }
      if (!resolvedRoots.some((r) => isWithin(resolved, r.path))) {
        const via = resolved === posix.normalize(p.path) ? '' : ` (it leads to ${resolved})`;
        throw notAllowed(p, `${p.path}${via} is outside ${where}`);
      }
    }
  }
}

function refuseMalformed(paths: readonly PathField[]): void {
  for (const p of paths) {
    if (!p.path.startsWith('/') || p.path.includes('\0')) {
      throw notAllowed(p, 'must be an absolute path');
    }
    if (hasDotDot(p.path)) throw notAllowed(p, 'must not have ".." segments');
  }
}

function notAllowed(p: Pick<PathField, 'field'>, message: string): AppError {
  return new AppError(ErrorCode.PATH_NOT_ALLOWED, `${p.field}: ${message}`, {
    fields: [{ field: p.field, message }],
  });
}

function asCaller(access: PathAccess): Parameters<typeof poolInScope>[0] {
  return { id: '', requestId: '', role: access.role, scopes: access.scopes };
}
