/**
 * The XML the gateway builds for new domains (and, below, snapshots, pools
 * and volumes): read back with the same parsers that read libvirt's XML, and
 * escaped whatever the input holds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  assignTargets,
  buildDomainDefinitionXml,
  targetName,
  type DomainDefinition,
} from '#src/xml/define-domain.js';
import { buildDiskSnapshotXml } from '#src/xml/define-snapshot.js';
import { buildDirPoolXml, buildVolumeXml } from '#src/xml/define-storage.js';
import { parseStoragePoolXml, parseStorageVolumeXml } from '#src/xml/storage-xml.js';
import { parseDomainXml } from '#src/xml/domain-xml.js';
import { parseSnapshotXml } from '#src/xml/snapshot-xml.js';
import { defaultOverlay } from '#modules/snapshots/snapshot-operations.service.js';
import { attr, child, parseXml, path, text } from '#src/xml/xml.js';

const DEF: DomainDefinition = {
  type: 'qemu',
  name: 'vm1',
  uuid: '6695eb01-f6a4-8304-79aa-97f2502e193f',
  description: 'a <tricky> & "quoted" description',
  memoryMiB: 512,
  vcpus: 2,
  arch: 'x86_64',
  machine: 'pc-q35-7.2',
  emulator: '/usr/bin/qemu-system-x86_64',
  disks: [
    {
      target: 'vda',
      bus: 'virtio',
      device: 'disk',
      sourceType: 'file',
      path: "/var/lib/images/it's.qcow2",
      format: 'qcow2',
      readOnly: false,
    },
    {
      target: 'sda',
      bus: 'sata',
      device: 'cdrom',
      sourceType: 'file',
      path: '/srv/iso/a.iso',
      format: 'raw',
      readOnly: false,
    },
    {
      target: 'vdb',
      bus: 'virtio',
      device: 'disk',
      sourceType: 'block',
      path: '/dev/vg0/data',
      format: 'raw',
      readOnly: true,
    },
  ],
  interfaces: [
    { type: 'network', source: 'default', model: 'virtio', mac: null },
    { type: 'bridge', source: 'br0', model: 'e1000', mac: '52:54:00:00:00:01' },
  ],
};

describe('domain definition XML', () => {
  it('states what the definition says, readable by the domain XML parser', () => {
    const xml = buildDomainDefinitionXml(DEF);
    const parsed = parseDomainXml(xml);
    assert.equal(parsed.type, 'qemu');
    assert.equal(parsed.name, 'vm1');
    assert.equal(parsed.uuid, DEF.uuid);
    assert.equal(parsed.memoryBytes, 512 * 1024 * 1024);
    assert.equal(parsed.currentMemoryBytes, 512 * 1024 * 1024);
    assert.equal(parsed.vcpus, 2);
    assert.deepEqual(
      parsed.disks.map((d) => [
        d.target,
        d.bus,
        d.device,
        d.chain[0]?.source,
        d.chain[0]?.format,
        d.readOnly,
      ]),
      [
        [
          'vda',
          'virtio',
          'disk',
          { type: 'file', path: "/var/lib/images/it's.qcow2", network: null, volume: null },
          'qcow2',
          false,
        ],
        [
          'sda',
          'sata',
          'cdrom',
          { type: 'file', path: '/srv/iso/a.iso', network: null, volume: null },
          'raw',
          true,
        ],
        [
          'vdb',
          'virtio',
          'disk',
          { type: 'block', path: '/dev/vg0/data', network: null, volume: null },
          'raw',
          true,
        ],
      ],
    );
    assert.deepEqual(
      parsed.interfaces.map((i) => [i.type, i.source, i.model, i.mac]),
      [
        ['network', 'default', 'virtio', null],
        ['bridge', 'br0', 'e1000', '52:54:00:00:00:01'],
      ],
    );
    const root = parseXml(xml);
    assert.equal(text(child(root, 'description')), DEF.description);
    assert.equal(attr(path(root, 'os', 'type'), 'machine'), 'pc-q35-7.2');
    assert.equal(attr(path(root, 'os', 'type'), 'arch'), 'x86_64');
    assert.ok(path(root, 'features', 'acpi'));
    assert.ok(path(root, 'features', 'apic'));
    assert.equal(text(path(root, 'devices', 'emulator')), DEF.emulator);
    assert.ok(!xml.includes('<tricky>'), 'text is escaped');
  });

  it('leaves out what does not apply: apic off x86, description and emulator when absent', () => {
    const root = parseXml(
      buildDomainDefinitionXml({
        ...DEF,
        arch: 'aarch64',
        machine: 'virt',
        description: null,
        emulator: null,
        disks: [],
        interfaces: [],
      }),
    );
    assert.ok(path(root, 'features', 'acpi'));
    assert.equal(path(root, 'features', 'apic'), null);
    assert.equal(child(root, 'description'), null);
    assert.equal(path(root, 'devices', 'emulator'), null);
  });

  it('names disks as libvirt does and skips the names given explicitly', () => {
    assert.deepEqual(
      [0, 1, 25, 26, 27, 51, 52, 701].map((n) => targetName('vd', n)),
      ['vda', 'vdb', 'vdz', 'vdaa', 'vdab', 'vdaz', 'vdba', 'vdzz'],
    );
    assert.deepEqual(
      assignTargets([
        { bus: 'virtio' },
        { bus: 'virtio', target: 'vda' },
        { bus: 'sata' },
        { bus: 'ide' },
        { bus: 'scsi' },
        { bus: 'virtio' },
      ]),
      ['vdb', 'vda', 'sda', 'hda', 'sdb', 'vdc'],
    );
  });
});

describe('disk snapshot XML', () => {
  it('asks for an external overlay on the disks that have one and no snapshot of the others', () => {
    const xml = buildDiskSnapshotXml({
      name: 'before-upgrade',
      description: 'a & b',
      disks: [
        { target: 'vda', overlay: '/images/vm1.before-upgrade.qcow2' },
        { target: 'sda', overlay: null },
      ],
    });
    const parsed = parseSnapshotXml(xml);
    assert.equal(parsed.name, 'before-upgrade');
    assert.equal(parsed.description, 'a & b');
    assert.equal(parsed.memory, 'no');
    assert.deepEqual(parsed.disks, [
      {
        target: 'vda',
        snapshot: 'external',
        path: '/images/vm1.before-upgrade.qcow2',
        format: 'qcow2',
      },
      { target: 'sda', snapshot: 'no', path: null, format: null },
    ]);
  });

  it('places overlays next to the top image, named after it and the snapshot', () => {
    assert.equal(defaultOverlay('/var/lib/images/vm1.qcow2', 's1'), '/var/lib/images/vm1.s1.qcow2');
    assert.equal(
      defaultOverlay('/var/lib/images/vm1.s1.qcow2', 's2'),
      '/var/lib/images/vm1.s1.s2.qcow2',
    );
    assert.equal(defaultOverlay('/images/disk', 'x'), '/images/disk.x.qcow2');
  });
});

describe('storage pool and volume XML', () => {
  it('defines a dir pool with its UUID and directory', () => {
    const parsed = parseStoragePoolXml(
      buildDirPoolXml({ name: 'images', uuid: DEF.uuid, path: '/srv/images & more' }),
    );
    assert.deepEqual(
      [parsed.type, parsed.name, parsed.uuid, parsed.path],
      ['dir', 'images', DEF.uuid, '/srv/images & more'],
    );
  });

  it('creates sparse volumes, with a backing image when asked', () => {
    const plain = parseStorageVolumeXml(
      buildVolumeXml({ name: 'a.img', format: 'raw', capacityBytes: 1024, backing: null }),
    );
    assert.deepEqual(
      [plain.name, plain.format, plain.capacityBytes, plain.allocationBytes, plain.backingStore],
      ['a.img', 'raw', 1024, 0, null],
    );
    const overlay = parseStorageVolumeXml(
      buildVolumeXml({
        name: 'b.qcow2',
        format: 'qcow2',
        capacityBytes: null,
        backing: { path: '/srv/base.qcow2', format: 'qcow2' },
      }),
    );
    assert.equal(overlay.capacityBytes, null, "no capacity: the backing image's");
    assert.deepEqual(overlay.backingStore, { path: '/srv/base.qcow2', format: 'qcow2' });
  });
});
