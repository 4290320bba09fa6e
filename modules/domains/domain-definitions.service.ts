import { createHash, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { requireAdmin, type Caller } from '#src/common/auth/caller.js';
import { AppError, ErrorCode, type FieldError } from '#src/common/errors/app-error.js';
import { DomainState, LibvirtError, type LibvirtClient } from '#src/libvirt/index.js';
import type { GuestCapability } from '#src/xml/capabilities-xml.js';
import {
  assignTargets,
  buildDomainDefinitionXml,
  type DiskDefinition,
  type InterfaceDefinition,
} from '#src/xml/define-domain.js';
import { parseStorageVolumeXml } from '#src/xml/storage-xml.js';
import { appendXml, child, parseXml, serializeXml, text, XmlParseError } from '#src/xml/xml.js';
import { HostConnections } from '#modules/hosts/host-connections.service.js';
import type { HostRecord } from '#modules/hosts/host-registry.service.js';
import { HostsService } from '#modules/hosts/hosts.service.js';
import { JobsService, type Accepted } from '#modules/jobs/jobs.service.js';
import { uuidBytes, uuidString } from './domain-views.js';
import { lookup } from './domains.service.js';
import {
  DOMAIN_NAME_PATTERN,
  DOMAIN_NAME_RULE,
  IMAGE_FORMATS,
  type DefineDomainDto,
  type DomainDiskSpecDto,
  type UndefineDomainQueryDto,
} from './dto/define-domain.dto.js';

const SPEC_FIELDS = [
  'name',
  'uuid',
  'type',
  'memoryMiB',
  'vcpus',
  'arch',
  'machine',
  'description',
  'disks',
  'interfaces',
] as const;

function invalid(fields: FieldError[]): AppError {
  return new AppError(ErrorCode.INVALID_ARGUMENT, fields.map((f) => f.message).join('; '), {
    fields,
  });
}

/**
 * Defining and undefining domains. A definition is built (or, for raw XML,
 * checked) and checked against the host's live state at request time — a
 * name or UUID already in use is 409 at once — then defined by the worker.
 * Every new domain gets its UUID here, so a re-run of the job recognises the
 * domain an earlier attempt defined.
 */
@Injectable()
export class DomainDefinitionsService {
  constructor(
    private readonly hosts: HostsService,
    private readonly connections: HostConnections,
    private readonly jobs: JobsService,
  ) {}

  async define(
    caller: Caller,
    hostName: string,
    input: DefineDomainDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    const host = await this.hosts.record(hostName);
    const { name, uuid, xml, source } =
      input.xml !== undefined
        ? this.fromXml(caller, host, input, idempotencyKey)
        : await this.fromSpec(caller, host, input, idempotencyKey);
    const precheck = (): Promise<void> =>
      this.connections.withClient(host, async (c) => {
        const byName = await findDomain(() => c.rpc.domainLookupByName({ name }));
        if (byName) {
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            `a domain named '${name}' already exists on host '${host.name}' (UUID ${uuidString(byName.uuid)})`,
          );
        }
        const byUuid = await findDomain(() => c.rpc.domainLookupByUuid({ uuid: uuidBytes(uuid) }));
        if (byUuid) {
          throw new AppError(
            ErrorCode.ALREADY_EXISTS,
            `a domain with UUID ${uuid} already exists on host '${host.name}' ('${byUuid.name}')`,
          );
        }
      });
    return this.jobs.submit(
      caller,
      {
        type: 'domain.define',
        target: { host: host.name, uuid, name },
        params: { xml, source },
        request: { ...input },
        precheck,
      },
      idempotencyKey,
    );
  }

  /**
   * Undefines a domain: it must be persistent and shut off (libvirt would
   * turn a running domain transient, leaving it to vanish at its next stop:
   * the gateway refuses that instead), and have no snapshot metadata unless
   * `snapshotsMetadata` says to remove it too.
   */
  async undefine(
    caller: Caller,
    hostName: string,
    ref: string,
    options: UndefineDomainQueryDto,
    idempotencyKey: string | undefined,
  ): Promise<Accepted> {
    const host = await this.hosts.record(hostName);
    const request = { domain: ref, ...options };
    let facts: { uuid: string; name: string; state: number; persistent: boolean; snaps: number };
    try {
      facts = await this.connections.withClient(host, async (c) => {
        const dom = await lookup(c, ref);
        const [{ state }, { persistent }, { snapshots }] = await Promise.all([
          c.rpc.domainGetState({ dom, flags: 0 }),
          c.rpc.domainIsPersistent({ dom }),
          c.rpc.domainListAllSnapshots({ dom, needResults: 1, flags: 0 }),
        ]);
        return {
          uuid: uuidString(dom.uuid),
          name: dom.name,
          state,
          persistent: persistent === 1,
          snaps: snapshots.length,
        };
      });
    } catch (err) {
      // A retry of an undefine that already ran finds no domain: give its job back.
      if (
        idempotencyKey !== undefined &&
        err instanceof AppError &&
        err.code === ErrorCode.NOT_FOUND
      ) {
        const replay = await this.jobs.replayOf(caller, idempotencyKey, {
          type: 'domain.undefine',
          host: host.name,
          request,
        });
        if (replay) return replay;
      }
      throw err;
    }
    const precheck = async (): Promise<void> => {
      if (!facts.persistent) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `domain '${facts.name}' is transient: it has no definition to remove (destroy it to make it go away)`,
        );
      }
      if (facts.state !== DomainState.SHUTOFF && facts.state !== DomainState.NOSTATE) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `domain '${facts.name}' is not shut off: stop it first (libvirt would leave it running as a transient domain)`,
        );
      }
      if (facts.snaps > 0 && options.snapshotsMetadata !== true) {
        throw new AppError(
          ErrorCode.INVALID_STATE,
          `domain '${facts.name}' has ${facts.snaps} snapshot(s) in libvirt's metadata: pass snapshotsMetadata=true to remove it too (the image files stay)`,
        );
      }
    };
    return this.jobs.submit(
      caller,
      {
        type: 'domain.undefine',
        target: { host: host.name, uuid: facts.uuid, name: facts.name },
        params: {
          snapshotsMetadata: options.snapshotsMetadata ?? false,
          managedSave: options.managedSave ?? false,
          nvram: options.nvram ?? false,
        },
        request,
        precheck,
      },
      idempotencyKey,
    );
  }

  /** Raw XML (admins): well-formed, a `<domain>` with a name; a UUID added when it has none. */
  private fromXml(
    caller: Caller,
    host: HostRecord,
    input: DefineDomainDto,
    idempotencyKey: string | undefined,
  ): { name: string; uuid: string; xml: string; source: 'xml' } {
    requireAdmin(caller, 'define domains from raw XML');
    const stray = SPEC_FIELDS.filter((f) => input[f] !== undefined);
    if (stray.length > 0) {
      throw invalid(
        stray.map((field) => ({ field, message: `${field} cannot be given with xml` })),
      );
    }
    let root;
    try {
      root = parseXml(input.xml!);
    } catch (err) {
      if (err instanceof XmlParseError) throw invalid([{ field: 'xml', message: err.message }]);
      throw err;
    }
    if (root.tagName !== 'domain') {
      throw invalid([
        { field: 'xml', message: `expected a <domain> document, got <${root.tagName}>` },
      ]);
    }
    const name = text(child(root, 'name'));
    if (!name) throw invalid([{ field: 'xml', message: 'the domain has no <name>' }]);
    const uuidText = text(child(root, 'uuid'));
    if (uuidText !== null) {
      const hex = uuidText.replaceAll('-', '').toLowerCase();
      if (!/^[0-9a-f]{32}$/.test(hex)) {
        throw invalid([{ field: 'xml', message: `<uuid> '${uuidText}' is not a UUID` }]);
      }
      return { name, uuid: uuidString(Buffer.from(hex, 'hex')), xml: input.xml!, source: 'xml' };
    }
    const uuid = newUuid(caller, host, name, idempotencyKey);
    appendXml(root, { name: 'uuid', text: uuid });
    return { name, uuid, xml: serializeXml(root), source: 'xml' };
  }

  /** The structured spec, resolved against the host: capabilities, volumes, targets. */
  private async fromSpec(
    caller: Caller,
    host: HostRecord,
    input: DefineDomainDto,
    idempotencyKey: string | undefined,
  ): Promise<{ name: string; uuid: string; xml: string; source: 'spec' }> {
    const missing = (['name', 'memoryMiB', 'vcpus'] as const).filter((f) => input[f] === undefined);
    if (missing.length > 0) {
      throw invalid(
        missing.map((field) => ({
          field,
          message: `${field} is required (or give the domain as xml)`,
        })),
      );
    }
    const name = input.name!;
    if (!DOMAIN_NAME_PATTERN.test(name)) {
      throw invalid([{ field: 'name', message: `name ${DOMAIN_NAME_RULE}` }]);
    }
    const specDisks = input.disks ?? [];
    const specNics = input.interfaces ?? [];
    checkSources(specDisks, specNics);
    const caps = (await this.connections.facts(host)).capabilities;
    const guest = pickGuest(host, caps.guests, caps.hostArch, input.arch);
    const type = input.type ?? (guest.domainTypes.includes('kvm') ? 'kvm' : 'qemu');
    if (!guest.domainTypes.includes(type)) {
      throw invalid([
        {
          field: 'type',
          message: `host '${host.name}' cannot run ${type} domains for ${guest.arch} (it offers: ${guest.domainTypes.join(', ') || 'none'})`,
        },
      ]);
    }
    const machine = input.machine ?? guest.machines[0];
    if (machine === undefined || !guest.machines.includes(machine)) {
      throw invalid([
        {
          field: 'machine',
          message: `host '${host.name}' has no machine type '${machine ?? ''}' for ${guest.arch} (see its capabilities)`,
        },
      ]);
    }
    const buses = specDisks.map((d) => d.bus ?? (d.device === 'cdrom' ? 'sata' : 'virtio'));
    const explicit = specDisks.map((d) => d.target).filter((t): t is string => !!t);
    const dup = explicit.find((t, i) => explicit.indexOf(t) !== i);
    if (dup !== undefined) {
      const i = specDisks.findIndex((d, j) => d.target === dup && explicit.indexOf(dup) !== j);
      throw invalid([{ field: `disks.${i}.target`, message: `target '${dup}' is given twice` }]);
    }
    const targets = assignTargets(specDisks.map((d, i) => ({ target: d.target, bus: buses[i]! })));
    const disks = await this.connections.withClient(host, (c) =>
      Promise.all(specDisks.map((d, i) => resolveDisk(c, host, d, i, targets[i]!, buses[i]!))),
    );
    const interfaces: InterfaceDefinition[] = specNics.map((n) => ({
      type: n.network !== undefined ? 'network' : 'bridge',
      source: (n.network ?? n.bridge)!,
      model: n.model ?? 'virtio',
      mac: n.mac?.toLowerCase() ?? null,
    }));
    const uuid = input.uuid?.toLowerCase() ?? newUuid(caller, host, name, idempotencyKey);
    const xml = buildDomainDefinitionXml({
      type,
      name,
      uuid,
      description: input.description ?? null,
      memoryMiB: input.memoryMiB!,
      vcpus: input.vcpus!,
      arch: guest.arch,
      machine,
      emulator: guest.emulator,
      disks,
      interfaces,
    });
    return { name, uuid, xml, source: 'spec' };
  }
}

/**
 * A new domain's UUID. With an Idempotency-Key it is derived from the key (and
 * caller, host, name), so a retried request is the same request and gets its
 * job back; otherwise a random one.
 */
function newUuid(
  caller: Caller,
  host: HostRecord,
  name: string,
  idempotencyKey: string | undefined,
): string {
  if (idempotencyKey === undefined) return randomUUID();
  const h = createHash('sha256')
    .update(JSON.stringify(['domain.define', caller.id, idempotencyKey, host.name, name]))
    .digest()
    .subarray(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x40; // version 4 layout
  h[8] = (h[8]! & 0x3f) | 0x80;
  return uuidString(h);
}

/** Each disk names exactly one source, each interface exactly one network or bridge. */
function checkSources(
  disks: readonly DomainDiskSpecDto[],
  nics: DefineDomainDto['interfaces'],
): void {
  const fields: FieldError[] = [];
  disks.forEach((d, i) => {
    const byVolume = d.pool !== undefined || d.volume !== undefined;
    if (byVolume === (d.path !== undefined)) {
      fields.push({
        field: `disks.${i}`,
        message: `disks.${i} needs either pool and volume, or path`,
      });
    } else if (byVolume && (d.pool === undefined || d.volume === undefined)) {
      const field = d.pool === undefined ? 'pool' : 'volume';
      fields.push({
        field: `disks.${i}.${field}`,
        message: `disks.${i}.${field} is required with ${field === 'pool' ? 'volume' : 'pool'}`,
      });
    }
  });
  (nics ?? []).forEach((n, i) => {
    if ((n.network === undefined) === (n.bridge === undefined)) {
      fields.push({
        field: `interfaces.${i}`,
        message: `interfaces.${i} needs either network or bridge`,
      });
    }
  });
  if (fields.length > 0) throw invalid(fields);
}

/** The host's hvm guest for `arch` (by default the host's own architecture). */
function pickGuest(
  host: HostRecord,
  guests: readonly GuestCapability[],
  hostArch: string | null,
  arch: string | undefined,
): GuestCapability {
  const hvm = guests.filter((g) => g.osType === 'hvm');
  const wanted = arch ?? hostArch ?? hvm[0]?.arch;
  const guest = hvm.find((g) => g.arch === wanted) ?? (arch === undefined ? hvm[0] : undefined);
  if (!guest) {
    throw invalid([
      {
        field: 'arch',
        message: `host '${host.name}' runs no hvm guests for ${wanted ?? 'any arch'} (it offers: ${hvm.map((g) => g.arch).join(', ') || 'none'})`,
      },
    ]);
  }
  return guest;
}

/** A disk of the spec as the XML will state it: a path, a format, a source type. */
async function resolveDisk(
  c: LibvirtClient,
  host: HostRecord,
  d: DomainDiskSpecDto,
  i: number,
  target: string,
  bus: string,
): Promise<DiskDefinition> {
  let path: string;
  let volumeFormat: string | null = null;
  let sourceType: 'file' | 'block';
  if (d.path !== undefined) {
    path = d.path;
    sourceType = path.startsWith('/dev/') ? 'block' : 'file';
    try {
      const { vol } = await c.rpc.storageVolLookupByPath({ path });
      const parsed = parseStorageVolumeXml(
        (await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 })).xml,
      );
      volumeFormat = parsed.format;
      if (parsed.type === 'block') sourceType = 'block';
    } catch (err) {
      if (!(err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_STORAGE_VOL')) throw err;
    }
  } else {
    const parsed = await volumeOf(c, host, d.pool!, d.volume!, i);
    if (!parsed.path) {
      throw invalid([
        { field: `disks.${i}.volume`, message: `volume '${d.volume}' has no path on the host` },
      ]);
    }
    path = parsed.path;
    volumeFormat = parsed.format;
    sourceType = parsed.type === 'block' ? 'block' : 'file';
  }
  const device = d.device ?? 'disk';
  const known = volumeFormat === 'iso' ? 'raw' : volumeFormat;
  const format =
    d.format ??
    ((IMAGE_FORMATS as readonly (string | null)[]).includes(known) ? (known as string) : null);
  if (format === null) {
    throw invalid([
      {
        field: `disks.${i}.format`,
        message:
          volumeFormat === null
            ? `disks.${i}.format is required: '${path}' is not a volume of a pool libvirt knows, and the gateway does not guess formats`
            : `disks.${i}.format is required: the volume's format is ${volumeFormat}`,
      },
    ]);
  }
  return { target, bus, device, sourceType, path, format, readOnly: d.readOnly ?? false };
}

async function volumeOf(
  c: LibvirtClient,
  host: HostRecord,
  pool: string,
  volume: string,
  i: number,
): Promise<ReturnType<typeof parseStorageVolumeXml>> {
  try {
    const { pool: ref } = await c.rpc.storagePoolLookupByName({ name: pool });
    const { vol } = await c.rpc.storageVolLookupByName({ pool: ref, name: volume });
    return parseStorageVolumeXml((await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 })).xml);
  } catch (err) {
    if (!(err instanceof LibvirtError)) throw err;
    if (err.codeName === 'VIR_ERR_NO_STORAGE_POOL') {
      throw invalid([
        { field: `disks.${i}.pool`, message: `no storage pool '${pool}' on host '${host.name}'` },
      ]);
    }
    if (err.codeName === 'VIR_ERR_NO_STORAGE_VOL') {
      throw invalid([
        { field: `disks.${i}.volume`, message: `no volume '${volume}' in storage pool '${pool}'` },
      ]);
    }
    if (err.codeName === 'VIR_ERR_OPERATION_INVALID') {
      throw new AppError(
        ErrorCode.INVALID_STATE,
        `storage pool '${pool}' is not active: start it to use its volumes`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** The domain `find` finds, or null when libvirt has none. */
async function findDomain<T extends { dom: { name: string; uuid: Buffer } }>(
  find: () => Promise<T>,
): Promise<T['dom'] | null> {
  try {
    return (await find()).dom;
  } catch (err) {
    if (err instanceof LibvirtError && err.codeName === 'VIR_ERR_NO_DOMAIN') return null;
    throw err;
  }
}
