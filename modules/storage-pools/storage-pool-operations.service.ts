import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { domainInScope, poolInScope } from '#src/common/auth/scope.js';
import { derivedUuid } from '#src/common/derived-uuid.js';
import {
  AppError,
  ErrorCode,
  invalidFields,
  type FieldError,
} from '#src/common/errors/app-error.js';
import { HostConnections } from '#src/hosts/host-connections.js';
import { HostRegistry, type HostRecord } from '#src/hosts/host-registry.js';
import { accessOf, PathConfinement } from '#src/hosts/path-confinement.js';
import type { AppConfig } from '#src/config/config.js';
import { APP_CONFIG } from '#src/config/config.module.js';
import {
  findStoragePool,
  findStorageVol,
  findStorageVolByPath,
  isOperationInvalid,
  StoragePoolState,
  uuidString,
  type LibvirtClient,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import { buildDirPoolXml, buildVolumeXml } from '#src/xml/define-storage.js';
import { parseStoragePoolXml, parseStorageVolumeXml } from '#src/xml/storage-xml.js';
import { JobSubmitter, type Accepted } from '#jobs/job-submitter.js';
import { domainUsing } from '#modules/domains/index.js';
import { volumeBackedBy } from './backed-volumes.js';
import {
  POOL_ACTIONS,
  type CreateVolumeDto,
  type DefinePoolDto,
  type PoolAction,
  type PoolActionDto,
} from './dto/storage-operations.dto.js';

interface PoolFacts {
  ref: RemoteStoragePool;
  uuid: string;
  active: boolean;
  persistent: boolean;
  path: string | null;
}

/**
 * Changes to storage pools and volumes: checked against the host's live state
 * at request time (names in use, pool states, volumes still used by a domain
 * or as a backing image), then made by the worker as jobs on the host (no
 * domain). Transport-free: REST and GraphQL call the same methods.
 */
@Injectable()
export class StoragePoolOperationsService {
  constructor(
    private readonly registry: HostRegistry,
    private readonly connections: HostConnections,
    private readonly jobs: JobSubmitter,
    private readonly confinement: PathConfinement,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Defines a dir pool (not started: see start, with build to create its directory). */
  async definePool(
    caller: Caller,
    hostName: string,
    input: DefinePoolDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    const host = await this.registry.getFor(caller, hostName);
    if (!poolInScope(caller, host.name, input.name)) {
      throw new AppError(
        ErrorCode.FORBIDDEN,
        `the token's scope does not cover a storage pool named '${input.name}' on host '${host.name}'`,
      );
    }
    const path = posix.normalize(input.path).replace(/(.)\/$/, '$1');
    const uuid =
      idempotencyKey === undefined
        ? randomUUID()
        : derivedUuid(['pool.define', caller.id, idempotencyKey, host.name, input.name]);
    const precheck = (): Promise<void> =>
      this.connections.withClient(host, async (c) => {
        await this.confinement.requirePoolPathAllowed(host, accessOf(caller), {
          field: 'path',
          path: input.path,
        });
        const { pools } = await c.rpc.connectListAllStoragePools({ needResults: 1, flags: 0 });
        for (const p of pools) {
          if (p.name === input.name || uuidString(p.uuid) === uuid) {
            throw new AppError(
              ErrorCode.ALREADY_EXISTS,
              `a storage pool named '${p.name}' already exists on host '${host.name}'`,
            );
          }
        }
        const paths = await Promise.all(
          pools.map(async (p) => {
            const xml = await c.rpc.storagePoolGetXmlDesc({ pool: p, flags: 0 }).catch(() => null);
            return { name: p.name, path: xml ? parseStoragePoolXml(xml.xml).path : null };
          }),
        );
        const same = paths.find((p) => p.path === path);
        if (same) {
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            `storage pool '${same.name}' already has '${path}' as its directory`,
          );
        }
      });
    return this.jobs.submit(
      caller,
      {
        type: 'pool.define',
        target: hostTarget(host),
        params: {
          pool: input.name,
          uuid,
          xml: buildDirPoolXml({ name: input.name, uuid, path }),
        },
        request: { ...input },
        precheck,
      },
      idempotencyKey,
    );
  }

  /** start (optionally building it first), stop (libvirt's destroy: its files stay) or refresh. */
  async poolAction(
    caller: Caller,
    hostName: string,
    pool: string,
    action: string,
    options: PoolActionDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    if (!(POOL_ACTIONS as readonly string[]).includes(action)) {
      throw invalidFields([
        { field: 'action', message: `action must be one of ${POOL_ACTIONS.join(', ')}` },
      ]);
    }
    const act = action as PoolAction;
    if (act !== 'start' && options.build !== undefined) {
      throw invalidFields([{ field: 'build', message: `${act} takes no build` }]);
    }
    const host = await this.registry.getFor(caller, hostName);
    const facts = await this.poolFacts(caller, host, pool);
    const precheck = async (): Promise<void> => {
      if (act === 'start' && facts.active) {
        throw new AppError(ErrorCode.INVALID_STATE, `storage pool '${pool}' is already active`);
      }
      if (act === 'start' && facts.path !== null) {
        await this.confinement.requirePoolStillInRoots(host, { field: 'pool', path: facts.path });
      }
      if (act !== 'start' && !facts.active) {
        throw new AppError(ErrorCode.INVALID_STATE, `storage pool '${pool}' is not active`);
      }
    };
    const base = { pool, uuid: facts.uuid };
    return this.jobs.submit(
      caller,
      {
        type: `pool.${act}`,
        target: hostTarget(host),
        params: act === 'start' ? { ...base, build: options.build ?? false } : base,
        request: { pool, action: act, ...options },
        precheck,
      } as never,
      idempotencyKey,
    );
  }

  /** Undefines an inactive persistent pool; its directory and files stay. */
  async undefinePool(
    caller: Caller,
    hostName: string,
    pool: string,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    const host = await this.registry.getFor(caller, hostName);
    const request = { pool };
    const looked = await this.jobs.findOrReplay(
      caller,
      idempotencyKey,
      { type: 'pool.undefine', host: host.name, request },
      () => this.poolFacts(caller, host, pool),
    );
    if ('replay' in looked) return looked.replay;
    const facts = looked.found;
    const precheck = async (): Promise<void> => {
      if (facts.active) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `storage pool '${pool}' is active: stop it first (its files stay either way)`,
        );
      }
      if (!facts.persistent) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `storage pool '${pool}' is transient: it has no definition to remove`,
        );
      }
    };
    return this.jobs.submit(
      caller,
      {
        type: 'pool.undefine',
        target: hostTarget(host),
        params: { pool, uuid: facts.uuid },
        request,
        precheck,
      },
      idempotencyKey,
    );
  }

  /** Creates a sparse raw or qcow2 volume, a qcow2 one optionally backed by another image. */
  async createVolume(
    caller: Caller,
    hostName: string,
    pool: string,
    input: CreateVolumeDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    const format = input.format ?? 'qcow2';
    const b = input.backing;
    const fields: FieldError[] = [];
    if (b && format !== 'qcow2') {
      fields.push({ field: 'backing', message: 'only a qcow2 volume can have a backing image' });
    }
    if (b && (b.volume === undefined) === (b.path === undefined)) {
      fields.push({ field: 'backing', message: 'backing needs either volume (and pool) or path' });
    }
    if (b && b.pool !== undefined && b.volume === undefined) {
      fields.push({
        field: 'backing.volume',
        message: 'backing.volume is required with backing.pool',
      });
    }
    if (!b && input.capacityBytes === undefined) {
      fields.push({
        field: 'capacityBytes',
        message: 'capacityBytes is required without a backing image',
      });
    }
    const maxBytes = this.config.maxDiskGiB * 1024 ** 3;
    if (input.capacityBytes !== undefined && input.capacityBytes > maxBytes) {
      fields.push({
        field: 'capacityBytes',
        message: `capacityBytes must be at most ${maxBytes} (${this.config.maxDiskGiB} GiB) here`,
      });
    }
    // A pool outside the caller's scope is one it cannot know of.
    if (b?.pool !== undefined && !poolInScope(caller, hostName, b.pool)) {
      fields.push({ field: 'backing.pool', message: `no storage pool '${b.pool}'` });
    }
    if (fields.length > 0) throw invalidFields(fields);
    const host = await this.registry.getFor(caller, hostName);
    const facts = await this.poolFacts(caller, host, pool);
    const backing = b
      ? await this.connections.withClient(host, (c) =>
          resolveBacking(c, pool, b, (name) => poolInScope(caller, host.name, name)),
        )
      : null;
    const precheck = (): Promise<void> =>
      this.connections.withClient(host, async (c) => {
        if (backing) {
          // Where the backing image leads (as given, or as its volume has it).
          await this.confinement.requireAllowed(c, host, accessOf(caller), [
            {
              field: b?.path !== undefined ? 'backing.path' : 'backing.volume',
              path: b?.path ?? backing.path,
            },
          ]);
        }
        if (!facts.active) {
          throw new AppError(
            ErrorCode.INVALID_STATE,
            `storage pool '${pool}' is not active: start it first`,
          );
        }
        if (await findStorageVol(c, facts.ref, input.name)) {
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            `storage pool '${pool}' has a volume named '${input.name}' already`,
          );
        }
      });
    const capacityBytes = input.capacityBytes ?? null;
    return this.jobs.submit(
      caller,
      {
        type: 'volume.create',
        target: hostTarget(host),
        params: {
          pool,
          poolUuid: facts.uuid,
          volume: input.name,
          xml: buildVolumeXml({ name: input.name, format, capacityBytes, backing }),
          format,
          capacityBytes,
          backing,
        },
        request: { pool, ...input },
        precheck,
      },
      idempotencyKey,
    );
  }

  /**
   * Deletes a volume and its file. Refused while a domain uses it (any image
   * of a running domain's chain, or a domain's defined disk) or another volume
   * of the pool has it as its backing image: deleting it would break them.
   */
  async deleteVolume(
    caller: Caller,
    hostName: string,
    pool: string,
    volume: string,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    const host = await this.registry.getFor(caller, hostName);
    const request = { pool, volume };
    const looked = await this.jobs.findOrReplay(
      caller,
      idempotencyKey,
      { type: 'volume.delete', host: host.name, request },
      async () => {
        const facts = await this.poolFacts(caller, host, pool);
        if (!facts.active) {
          throw new AppError(
            ErrorCode.INVALID_STATE,
            `storage pool '${pool}' is not active: start it to see and delete its volumes`,
          );
        }
        return this.connections.withClient(host, async (c) => {
          const vol = await findStorageVol(c, facts.ref, volume);
          if (!vol) {
            throw new AppError(
              ErrorCode.NOT_FOUND,
              `no volume named '${volume}' in storage pool '${pool}' on host '${host.name}'`,
            );
          }
          const parsed = parseStorageVolumeXml(
            (await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 })).xml,
          );
          return { ref: facts.ref, poolUuid: facts.uuid, path: parsed.path };
        });
      },
    );
    if ('replay' in looked) return looked.replay;
    const found = looked.found;
    const precheck = (): Promise<void> =>
      this.connections.withClient(host, async (c) => {
        if (found.path === null) return;
        const user = await domainUsing(c, [found.path], { volume: { pool, volume } });
        if (user) {
          throw new AppError(
            ErrorCode.INVALID_STATE,
            domainInScope(caller, host.name, user.domain)
              ? `volume '${volume}' is in use by domain '${user.domain}' (disk ${user.disk}): detach it or delete the domain first`
              : `volume '${volume}' is in use by a domain: it cannot be deleted now`,
          );
        }
        const dependent = await volumeBackedBy(c, found.ref, found.path);
        if (dependent) {
          throw new AppError(
            ErrorCode.INVALID_STATE,
            `volume '${volume}' is the backing image of volume '${dependent}' of the pool: delete that one first`,
          );
        }
      });
    return this.jobs.submit(
      caller,
      {
        type: 'volume.delete',
        target: hostTarget(host),
        params: { pool, poolUuid: found.poolUuid, volume, path: found.path },
        request,
        precheck,
      },
      idempotencyKey,
    );
  }

  /** The pool's facts; NOT_FOUND for a pool that does not exist or that the caller's scope does not cover. */
  private poolFacts(caller: Caller, host: HostRecord, pool: string): Promise<PoolFacts> {
    return this.connections.withClient(host, async (c) => {
      const ref = poolInScope(caller, host.name, pool) ? await findStoragePool(c, pool) : null;
      if (!ref) {
        throw new AppError(
          ErrorCode.NOT_FOUND,
          `no storage pool named '${pool}' on host '${host.name}'`,
        );
      }
      const [info, { persistent }, { xml }] = await Promise.all([
        c.rpc.storagePoolGetInfo({ pool: ref }),
        c.rpc.storagePoolIsPersistent({ pool: ref }),
        c.rpc.storagePoolGetXmlDesc({ pool: ref, flags: 0 }),
      ]);
      return {
        ref,
        uuid: uuidString(ref.uuid),
        active: info.state !== StoragePoolState.INACTIVE,
        persistent: persistent === 1,
        path: parseStoragePoolXml(xml).path,
      };
    });
  }
}

function hostTarget(host: HostRecord): { host: string; uuid: null; name: null } {
  return { host: host.name, uuid: null, name: null };
}

/** The backing image's path and format, from its volume (default: the same pool) or its path. */
async function resolveBacking(
  c: LibvirtClient,
  pool: string,
  b: NonNullable<CreateVolumeDto['backing']>,
  visible: (pool: string) => boolean,
): Promise<{ path: string; format: string }> {
  let path: string;
  let known: string | null = null;
  if (b.volume !== undefined) {
    const poolName = b.pool ?? pool;
    const ref = visible(poolName) ? await findStoragePool(c, poolName) : null;
    if (!ref)
      throw invalidFields([{ field: 'backing.pool', message: `no storage pool '${poolName}'` }]);
    let parsed;
    try {
      const vol = await findStorageVol(c, ref, b.volume);
      if (!vol) {
        throw invalidFields([
          {
            field: 'backing.volume',
            message: `no volume '${b.volume}' in storage pool '${poolName}'`,
          },
        ]);
      }
      parsed = parseStorageVolumeXml((await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 })).xml);
    } catch (err) {
      if (!isOperationInvalid(err)) throw err;
      throw new AppError(
        ErrorCode.INVALID_STATE,
        `storage pool '${poolName}' is not active: start it to use its volumes`,
      );
    }
    if (!parsed.path)
      throw invalidFields([
        { field: 'backing.volume', message: `volume '${b.volume}' has no path` },
      ]);
    path = parsed.path;
    known = parsed.format;
  } else {
    path = posix.normalize(b.path!);
    const vol = await findStorageVolByPath(c, path);
    if (vol) {
      known = parseStorageVolumeXml(
        (await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 })).xml,
      ).format;
    }
  }
  const format = b.format ?? (known === 'qcow2' || known === 'raw' ? known : null);
  if (format === null) {
    throw invalidFields([
      {
        field: 'backing.format',
        message:
          known === null
            ? `backing.format is required: '${path}' is not a volume of a pool libvirt knows, and the gateway does not guess formats`
            : `backing.format is required: the backing volume's format is ${known}`,
      },
    ]);
  }
  return { path, format };
}
