/**
 * Domain XML for a new domain, built from a structured definition (the
 * gateway's spec, already resolved against the host: arch, machine and
 * emulator chosen, volumes turned into paths, targets assigned). Built with
 * the XML toolkit, never by string concatenation.
 */
import { buildXml, type XmlNode } from './xml.js';

export interface DiskDefinition {
  /** The guest-side name (`vda`, `sdb`). */
  target: string;
  /** virtio, sata, scsi, ide, usb. */
  bus: string;
  device: 'disk' | 'cdrom';
  /** A file, or a block device. */
  sourceType: 'file' | 'block';
  path: string;
  /** The image format (qcow2, raw). */
  format: string;
  readOnly: boolean;
}

export interface InterfaceDefinition {
  type: 'network' | 'bridge';
  /** The libvirt network's or the host bridge's name. */
  source: string;
  /** virtio, e1000, rtl8139. */
  model: string;
  mac: string | null;
}

export interface DomainDefinition {
  /** qemu (TCG) or kvm. */
  type: string;
  name: string;
  uuid: string;
  description: string | null;
  memoryMiB: number;
  vcpus: number;
  arch: string;
  machine: string;
  emulator: string | null;
  disks: DiskDefinition[];
  interfaces: InterfaceDefinition[];
}

const X86 = new Set(['i686', 'x86_64']);

/**
 * The domain XML of `def`: a headless guest that boots from its first disk
 * (then a cdrom), with ACPI (so a graceful shutdown reaches the guest), a
 * serial console, and the disks and interfaces asked for.
 */
export function buildDomainDefinitionXml(def: DomainDefinition): string {
  const devices: XmlNode[] = [];
  if (def.emulator) devices.push({ name: 'emulator', text: def.emulator });
  for (const d of def.disks) devices.push(diskNode(d));
  for (const i of def.interfaces) devices.push(interfaceNode(i));
  devices.push({ name: 'serial', attrs: { type: 'pty' } });
  devices.push({ name: 'console', attrs: { type: 'pty' } });
  const hasCdrom = def.disks.some((d) => d.device === 'cdrom');
  return buildXml({
    name: 'domain',
    attrs: { type: def.type },
    children: [
      { name: 'name', text: def.name },
      { name: 'uuid', text: def.uuid },
      def.description !== null && { name: 'description', text: def.description },
      { name: 'memory', attrs: { unit: 'MiB' }, text: def.memoryMiB },
      { name: 'currentMemory', attrs: { unit: 'MiB' }, text: def.memoryMiB },
      { name: 'vcpu', attrs: { placement: 'static' }, text: def.vcpus },
      {
        name: 'os',
        children: [
          { name: 'type', attrs: { arch: def.arch, machine: def.machine }, text: 'hvm' },
          { name: 'boot', attrs: { dev: 'hd' } },
          hasCdrom && { name: 'boot', attrs: { dev: 'cdrom' } },
        ],
      },
      {
        name: 'features',
        children: [{ name: 'acpi' }, X86.has(def.arch) && { name: 'apic' }],
      },
      { name: 'clock', attrs: { offset: 'utc' } },
      { name: 'on_poweroff', text: 'destroy' },
      { name: 'on_reboot', text: 'restart' },
      { name: 'on_crash', text: 'destroy' },
      { name: 'devices', children: devices },
    ],
  });
}

function diskNode(d: DiskDefinition): XmlNode {
  return {
    name: 'disk',
    attrs: { type: d.sourceType, device: d.device },
    children: [
      { name: 'driver', attrs: { name: 'qemu', type: d.format } },
      { name: 'source', attrs: d.sourceType === 'block' ? { dev: d.path } : { file: d.path } },
      { name: 'target', attrs: { dev: d.target, bus: d.bus } },
      (d.readOnly || d.device === 'cdrom') && { name: 'readonly' },
    ],
  };
}

function interfaceNode(i: InterfaceDefinition): XmlNode {
  return {
    name: 'interface',
    attrs: { type: i.type },
    children: [
      i.mac !== null && { name: 'mac', attrs: { address: i.mac } },
      {
        name: 'source',
        attrs: i.type === 'network' ? { network: i.source } : { bridge: i.source },
      },
      { name: 'model', attrs: { type: i.model } },
    ],
  };
}

/** The guest-side name prefix of each disk bus. */
export const TARGET_PREFIX: Readonly<Record<string, string>> = {
  virtio: 'vd',
  sata: 'sd',
  scsi: 'sd',
  usb: 'sd',
  ide: 'hd',
};

/** `n`-th disk name after `prefix`: 0 → a, 25 → z, 26 → aa (libvirt's own numbering). */
export function targetName(prefix: string, n: number): string {
  let s = '';
  let i = n;
  do {
    s = String.fromCharCode(97 + (i % 26)) + s;
    i = Math.floor(i / 26) - 1;
  } while (i >= 0);
  return prefix + s;
}

/**
 * Guest-side names for disks that have none: the first free name of their
 * bus's prefix, in order, skipping those given explicitly.
 */
export function assignTargets(disks: readonly { target?: string | null; bus: string }[]): string[] {
  const taken = new Set(disks.map((d) => d.target).filter((t): t is string => !!t));
  return disks.map((d) => {
    if (d.target) return d.target;
    const prefix = TARGET_PREFIX[d.bus] ?? 'sd';
    for (let n = 0; ; n++) {
      const name = targetName(prefix, n);
      if (!taken.has(name)) {
        taken.add(name);
        return name;
      }
    }
  });
}
