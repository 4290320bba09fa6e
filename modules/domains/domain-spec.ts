/**
 * A domain spec (POST /v1/hosts/{host}/domains without `xml`) resolved
 * against the host: each disk's source, path and format (from its volume
 * where it names one), the guest the host's capabilities offer.
 */
import {
  AppError,
  ErrorCode,
  invalidFields,
  type FieldError,
} from '#src/common/errors/app-error.js';
import { IMAGE_FORMATS } from '#src/common/input-rules.js';
import type { HostRecord } from '#src/hosts/host-registry.js';
import {
  findStoragePool,
  findStorageVol,
  findStorageVolByPath,
  isOperationInvalid,
  LibvirtError,
  type LibvirtClient,
} from '#src/libvirt/index.js';
import type { GuestCapability } from '#src/xml/capabilities-xml.js';
import type { DiskDefinition } from '#src/xml/define-domain.js';
import { parseStorageVolumeXml } from '#src/xml/storage-xml.js';
import type { DefineDomainDto, DomainDiskSpecDto } from './dto/define-domain.dto.js';

/** `VIR_CONNECT_LIST_*` flags are not needed: every network and interface, active or not. */
const ALL = 0;

/**
 * Each interface's network must be one libvirt lists on the host, and each
 * bridge an interface the host has (libvirt's interface driver lists them).
 * A host that offers no such list (its driver is absent) offers none.
 */
export async function requireOfferedNetworks(
  c: LibvirtClient,
  host: HostRecord,
  nics: NonNullable<DefineDomainDto['interfaces']>,
): Promise<void> {
  const wantNets = nics.some((n) => n.network !== undefined);
  const wantBridges = nics.some((n) => n.bridge !== undefined);
  const [nets = [], ifaces = []] = await Promise.all<string[]>([
    wantNets
      ? c.rpc
          .connectListAllNetworks({ needResults: 1, flags: ALL })
          .then((r) => r.nets.map((n) => n.name), isLibvirtRefusal)
      : [],
    wantBridges
      ? c.rpc
          .connectListAllInterfaces({ needResults: 1, flags: ALL })
          .then((r) => r.ifaces.map((i) => i.name), isLibvirtRefusal)
      : [],
  ]);
  const fields: FieldError[] = [];
  nics.forEach((n, i) => {
    if (n.network !== undefined && !nets.includes(n.network)) {
      fields.push({
        field: `interfaces.${i}.network`,
        message: `host '${host.name}' has no network '${n.network}' (it offers: ${nets.join(', ') || 'none'})`,
      });
    }
    if (n.bridge !== undefined && !ifaces.includes(n.bridge)) {
      fields.push({
        field: `interfaces.${i}.bridge`,
        message: `host '${host.name}' has no interface '${n.bridge}' to bridge to`,
      });
    }
  });
  if (fields.length > 0) throw invalidFields(fields);
}

/** A libvirt refusal to list (no such driver on the host): nothing is offered. Anything else is thrown. */
function isLibvirtRefusal(err: unknown): string[] {
  if (err instanceof LibvirtError) return [];
  throw err;
}

/** Each disk names exactly one source, each interface exactly one network or bridge. */
export function checkSources(
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
  if (fields.length > 0) throw invalidFields(fields);
}

/** The host's hvm guest for `arch` (by default the host's own architecture). */
export function pickGuest(
  host: HostRecord,
  guests: readonly GuestCapability[],
  hostArch: string | null,
  arch: string | undefined,
): GuestCapability {
  const hvm = guests.filter((g) => g.osType === 'hvm');
  const wanted = arch ?? hostArch ?? hvm[0]?.arch;
  const guest = hvm.find((g) => g.arch === wanted) ?? (arch === undefined ? hvm[0] : undefined);
  if (!guest) {
    throw invalidFields([
      {
        field: 'arch',
        message: `host '${host.name}' runs no hvm guests for ${wanted ?? 'any arch'} (it offers: ${hvm.map((g) => g.arch).join(', ') || 'none'})`,
      },
    ]);
  }
  return guest;
}

/** A disk of the spec as the XML will state it: a path, a format, a source type. */
export async function resolveDisk(
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
    const vol = await findStorageVolByPath(c, path);
    if (vol) {
      const parsed = parseStorageVolumeXml(
        (await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 })).xml,
      );
      volumeFormat = parsed.format;
      if (parsed.type === 'block') sourceType = 'block';
    }
  } else {
    const parsed = await volumeOf(c, host, d.pool!, d.volume!, i);
    if (!parsed.path) {
      throw invalidFields([
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
    throw invalidFields([
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
  const ref = await findStoragePool(c, pool);
  if (!ref) {
    throw invalidFields([
      { field: `disks.${i}.pool`, message: `no storage pool '${pool}' on host '${host.name}'` },
    ]);
  }
  try {
    const vol = await findStorageVol(c, ref, volume);
    if (!vol) {
      throw invalidFields([
        { field: `disks.${i}.volume`, message: `no volume '${volume}' in storage pool '${pool}'` },
      ]);
    }
    return parseStorageVolumeXml((await c.rpc.storageVolGetXmlDesc({ vol, flags: 0 })).xml);
  } catch (err) {
    if (!isOperationInvalid(err)) throw err;
    throw new AppError(
      ErrorCode.INVALID_STATE,
      `storage pool '${pool}' is not active: start it to use its volumes`,
      { cause: err },
    );
  }
}
