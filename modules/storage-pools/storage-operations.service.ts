import { createHash, randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { Injectable } from '@nestjs/common';
import type { Caller } from '#src/common/auth/caller.js';
import { AppError, ErrorCode, type FieldError } from '#src/common/errors/app-error.js';
import {
  LibvirtError,
  StoragePoolState,
  type LibvirtClient,
  type RemoteStoragePool,
} from '#src/libvirt/index.js';
import { buildDirPoolXml, buildVolumeXml } from '#src/xml/define-storage.js';
import { parseStoragePoolXml, parseStorageVolumeXml } from '#src/xml/storage-xml.js';
import { HostConnections } from '#modules/hosts/host-connections.service.js';
import type { HostRecord } from '#modules/hosts/host-registry.service.js';
import { HostsService } from '#modules/hosts/hosts.service.js';
import { JobsService, type Accepted } from '#modules/jobs/jobs.service.js';
import {
  POOL_ACTIONS,
  type CreateVolumeDto,
  type DefinePoolDto,
  type PoolAction,
  type PoolActionDto,
} from './dto/storage-operations.dto.js';
import { domainUsing, volumeBackedBy } from '#modules/domains/image-users.js';

function invalid(fields: FieldError[]): AppError {
  return new AppError(ErrorCode.INVALID_ARGUMENT, fields.map((f) => f.message).join('; '), {
    fields,
  });
}

function uuidString(uuid: Buffer): string {
  const h = uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const isNo = (err: unknown, code: string): boolean =>
  err instanceof LibvirtError && err.codeName === code;

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
export class StorageOperationsService {
  constructor(
    private readonly hosts: HostsService,
    private readonly connections: HostConnections,
    private readonly jobs: JobsService,
  ) {}

  /** Defines a dir pool (not started: see start, with build to create its directory). */
  async definePool(
    caller: Caller,
    hostName: string,
    input: DefinePoolDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    const host = await this.hosts.record(hostName);
    const path = posix.normalize(input.path).replace(/(.)\/$/, '$1');
    const uuid =
      idempotencyKey === undefined
        ? randomUUID()
        : derivedUuid(['pool.define', caller.id, idempotencyKey, host.name, input.name]);
    const precheck = (): Promise<void> =>
      this.connections.withClient(host, async (c) => {
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
      throw invalid([
        { field: 'action', message: `action must be one of ${POOL_ACTIONS.join(', ')}` },
      ]);
    }
    const act = action as PoolAction;
    if (act !== 'start' && options.build !== undefined) {
      throw invalid([{ field: 'build', message: `${act} takes no build` }]);
    }
    const host = await this.hosts.record(hostName);
    const facts = await this.poolFacts(host, pool);
    const precheck = async (): Promise<void> => {
      if (act === 'start' && facts.active) {
        throw new AppError(ErrorCode.INVALID_STATE, `storage pool '${pool}' is already active`);
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
    const host = await this.hosts.record(hostName);
    const request = { pool };
    const facts = await this.orReplay(caller, idempotencyKey, 'pool.undefine', host, request, () =>
      this.poolFacts(host, pool),
    );
    if (!('ref' in facts)) return facts;
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
    if (fields.length > 0) throw invalid(fields);
    const host = await this.hosts.record(hostName);
    const facts = await this.poolFacts(host, pool);
    const backing = b
      ? await this.connections.withClient(host, (c) => resolveBacking(c, pool, b))
      : null;
    const precheck = (): Promise<void> =>
      this.connections.withClient(host, async (c) => {
        if (!facts.active) {
          throw new AppError(
            ErrorCode.INVALID_STATE,
            `storage pool '${pool}' is not active: start it first`,
          );
        }
        try {
          await c.rpc.storageVolLookupByName({ pool: facts.ref, name: input.name });
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            `storage pool '${pool}' has a volume named '${input.name}' already`,
          );
        } catch (err) {
          if (!isNo(err, 'VIR_ERR_NO_STORAGE_VOL')) throw err;
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
    const host = await this.hosts.record(hostName);
    const request = { pool, volume };
    const found = await this.orReplay(
      caller,
      idempotencyKey,
      'volume.delete',
      host,
      request,
      async () => {
        const facts = await this.poolFacts(host, pool);
        if (!facts.active) {
          throw new AppError(
            ErrorCode.INVALID_STATE,
            `storage pool '${pool}' is not active: start it to see and delete its volumes`,
          );
        }
        return this.connections.withClient(host, async (c) => {
          try {
            const { vol } = await c.rpc.storageVolLookupByName({ pool: facts.ref, name: volume });
            const parsed = parseStorageVolumeXml(
              (await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 })).xml,
            );
            return { ref: facts.ref, poolUuid: facts.uuid, path: parsed.path };
          } catch (err) {
            if (isNo(err, 'VIR_ERR_NO_STORAGE_VOL')) {
              throw new AppError(
                ErrorCode.NOT_FOUND,
                `no volume named '${volume}' in storage pool '${pool}' on host '${host.name}'`,
              );
            }
            throw err;
          }
        });
      },
    );
    if (!('ref' in found)) return found;
    const precheck = (): Promise<void> =>
      this.connections.withClient(host, async (c) => {
        if (found.path === null) return;
        const user = await domainUsing(c, [found.path], { volume: { pool, volume } });
        if (user) {
          throw new AppError(
            ErrorCode.INVALID_STATE,
            `volume '${volume}' is in use by domain '${user.domain}' (disk ${user.disk}): detach it or delete the domain first`,
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

  /** `find`, or, when what it looks for is gone and the Idempotency-Key stood for a job on it, that job. */
  private async orReplay<T extends object>(
    caller: Caller,
    idempotencyKey: string | undefined,
    type: 'pool.undefine' | 'volume.delete',
    host: HostRecord,
    request: Record<string, unknown>,
    find: () => Promise<T>,
  ): Promise<T | Accepted> {
    try {
      return await find();
    } catch (err) {
      if (
        idempotencyKey !== undefined &&
        err instanceof AppError &&
        err.code === ErrorCode.NOT_FOUND
      ) {
        const replay = await this.jobs.replayOf(caller, idempotencyKey, {
          type,
          host: host.name,
          request,
        });
        if (replay) return replay;
      }
      throw err;
    }
  }

  private poolFacts(host: HostRecord, pool: string): Promise<PoolFacts> {
    return this.connections.withClient(host, async (c) => {
      let ref: RemoteStoragePool;
      try {
        ({ pool: ref } = await c.rpc.storagePoolLookupByName({ name: pool }));
      } catch (err) {
        if (isNo(err, 'VIR_ERR_NO_STORAGE_POOL')) {
          throw new AppError(
            ErrorCode.NOT_FOUND,
            `no storage pool named '${pool}' on host '${host.name}'`,
          );
        }
        throw err;
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

/** A v4-shaped UUID derived from `parts`: the same request (Idempotency-Key) gets the same one. */
function derivedUuid(parts: string[]): string {
  const h = createHash('sha256').update(JSON.stringify(parts)).digest().subarray(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  return uuidString(h);
}

/** The backing image's path and format, from its volume (default: the same pool) or its path. */
async function resolveBacking(
  c: LibvirtClient,
  pool: string,
  b: NonNullable<CreateVolumeDto['backing']>,
): Promise<{ path: string; format: string }> {
  let path: string;
  let known: string | null = null;
  if (b.volume !== undefined) {
    const poolName = b.pool ?? pool;
    try {
      const { pool: ref } = await c.rpc.storagePoolLookupByName({ name: poolName });
      const { vol } = await c.rpc.storageVolLookupByName({ pool: ref, name: b.volume });
      const parsed = parseStorageVolumeXml(
        (await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 })).xml,
      );
      if (!parsed.path)
        throw invalid([{ field: 'backing.volume', message: `volume '${b.volume}' has no path` }]);
      path = parsed.path;
      known = parsed.format;
    } catch (err) {
      if (isNo(err, 'VIR_ERR_NO_STORAGE_POOL')) {
        throw invalid([{ field: 'backing.pool', message: `no storage pool '${poolName}'` }]);
      }
      if (isNo(err, 'VIR_ERR_NO_STORAGE_VOL')) {
        throw invalid([
          {
            field: 'backing.volume',
            message: `no volume '${b.volume}' in storage pool '${poolName}'`,
          },
        ]);
      }
      if (isNo(err, 'VIR_ERR_OPERATION_INVALID')) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `storage pool '${poolName}' is not active: start it to use its volumes`,
        );
      }
      throw err;
    }
  } else {
    path = posix.normalize(b.path!);
    try {
      const { vol } = await c.rpc.storageVolLookupByPath({ path });
      known = parseStorageVolumeXml(
        (await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 })).xml,
      ).format;
    } catch (err) {
      if (!isNo(err, 'VIR_ERR_NO_STORAGE_VOL')) throw err;
    }
  }
  const format = b.format ?? (known === 'qcow2' || known === 'raw' ? known : null);
  if (format === null) {
    throw invalid([
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
