/**
 * The XML toolkit (src/xml/xml.ts) and the parsers of what libvirt returns
 * (domain, snapshot, capabilities XML), case by case: every source type of a
 * disk, backing chains, mirrors, interfaces, scaled sizes, and what each
 * parser says when the XML leaves something out. The documents are shaped as
 * libvirt writes them (the capabilities one trimmed from this machine's
 * libvirtd).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_XML_DEPTH,
  XmlParseError,
  appendXml,
  attr,
  buildXml,
  bytesOf,
  child,
  children,
  intAttr,
  intText,
  parseXml,
  path,
  serializeXml,
  text,
} from '#src/xml/xml.js';
import { parseDomainXml, type DiskXml } from '#src/xml/domain-xml.js';
import { parseSnapshotXml } from '#src/xml/snapshot-xml.js';
import { parseCapabilitiesXml } from '#src/xml/capabilities-xml.js';
import { assignTargets, buildDomainDefinitionXml, targetName } from '#src/xml/define-domain.js';
import { buildDiskSnapshotXml } from '#src/xml/define-snapshot.js';
import { buildVolumeXml } from '#src/xml/define-storage.js';
import { parseStoragePoolXml, parseStorageVolumeXml } from '#src/xml/storage-xml.js';

describe('XML toolkit', () => {
  it('refuses what is not well-formed, and a document without a root', () => {
    for (const bad of ['<a>', '<a></b>', 'not xml', '', '<a x="1" x="2"/>']) {
      assert.throws(() => parseXml(bad), XmlParseError, JSON.stringify(bad));
    }
    assert.throws(() => parseXml('<a><b></a>'), /^XmlParseError: malformed XML: /);
  });

  it('counts only elements towards the depth limit', () => {
    const nested = (depth: number, inner: string) =>
      '<a>'.repeat(depth) + inner + '</a>'.repeat(depth);
    // text, comments and attributes at the deepest element are not one more level
    assert.equal(parseXml(nested(MAX_XML_DEPTH, 'text<!-- c -->')).tagName, 'a');
    // a sibling at the limit is fine; an element under it is not
    assert.equal(parseXml(nested(MAX_XML_DEPTH - 1, '<b/><c/>')).tagName, 'a');
    assert.throws(() => parseXml(nested(MAX_XML_DEPTH - 1, '<b/><c><d/></c>')), XmlParseError);
  });

  it('finds direct children by name only, in order', () => {
    const root = parseXml(
      '<r>text<x n="1"/><!-- x --><y/><x n="2"><x n="3"/></x><z><x n="4"/></z></r>',
    );
    assert.deepEqual(
      children(root, 'x').map((e) => attr(e, 'n')),
      ['1', '2'],
    );
    assert.deepEqual(children(root, 'w'), []);
    assert.equal(attr(child(root, 'x'), 'n'), '1');
    assert.equal(child(root, 'w'), null);
    assert.equal(child(null, 'x'), null);
    // a path follows the first child of each name: the first x has no x under it
    assert.equal(path(root, 'x', 'x'), null);
    assert.equal(attr(child(children(root, 'x')[1]!, 'x'), 'n'), '3');
    assert.equal(attr(path(root, 'z', 'x'), 'n'), '4');
    assert.equal(path(root, 'y', 'x'), null);
    assert.equal(path(null, 'x'), null);
    assert.equal(path(root), root);
  });

  it('tells an absent attribute from an empty one, and trims text', () => {
    const root = parseXml('<r a="" b="v"><t>  padded \n</t><e/></r>');
    assert.equal(attr(root, 'a'), '');
    assert.equal(attr(root, 'b'), 'v');
    assert.equal(attr(root, 'c'), null);
    assert.equal(attr(null, 'b'), null);
    assert.equal(text(child(root, 't')), 'padded');
    assert.equal(text(child(root, 'e')), '');
    assert.equal(text(null), null);
  });

  it('reads integers only when the whole value is one', () => {
    const root = parseXml(
      '<r a="42" b="-7" c="4x" d="x4" e="" f="1.5" g=" 3"><i>12</i><j> -3 </j><k>1e3</k><l/></r>',
    );
    assert.equal(intAttr(root, 'a'), 42);
    assert.equal(intAttr(root, 'b'), -7);
    for (const name of ['c', 'd', 'e', 'f', 'g', 'missing'])
      assert.equal(intAttr(root, name), null);
    assert.equal(intAttr(null, 'a'), null);
    assert.equal(intText(child(root, 'i')), 12);
    assert.equal(intText(child(root, 'j')), -3);
    assert.equal(intText(child(root, 'k')), null);
    assert.equal(intText(child(root, 'l')), null);
    assert.equal(intText(null), null);
  });

  it('scales sizes by every unit libvirt writes, case-insensitively', () => {
    const size = (xml: string, defaultUnit = 'bytes') => bytesOf(parseXml(xml), defaultUnit);
    const units: [string, number][] = [
      ['b', 1],
      ['bytes', 1],
      ['k', 1024],
      ['KiB', 1024],
      ['KB', 1000],
      ['M', 1024 ** 2],
      ['MiB', 1024 ** 2],
      ['MB', 1000 ** 2],
      ['G', 1024 ** 3],
      ['GiB', 1024 ** 3],
      ['GB', 1000 ** 3],
      ['T', 1024 ** 4],
      ['TiB', 1024 ** 4],
      ['TB', 1000 ** 4],
    ];
    for (const [unit, factor] of units) {
      assert.equal(size(`<s unit="${unit}">3</s>`), 3 * factor, unit);
    }
    assert.equal(size('<s>3</s>'), 3);
    assert.equal(size('<s>3</s>', 'KiB'), 3072);
    assert.equal(size('<s unit="bytes">3</s>', 'KiB'), 3);
    assert.equal(size('<s unit="PiB">3</s>'), null);
    assert.equal(size('<s unit="KiB">three</s>'), null);
    assert.equal(bytesOf(null, 'KiB'), null);
  });

  it('builds documents escaping every attribute and text, leaving out what is absent', () => {
    const tricky = `a<b>&"c"'d'`;
    const xml = buildXml({
      name: 'root',
      attrs: { s: tricky, n: 7, zero: 0, gone: undefined },
      children: [
        { name: 't', text: tricky },
        { name: 'zero', text: 0 },
        { name: 'empty', text: '' },
        null,
        undefined,
        false,
        { name: 'nested', children: [{ name: 'leaf', attrs: { k: 'v' } }] },
      ],
    });
    const root = parseXml(xml);
    assert.equal(attr(root, 's'), tricky);
    assert.equal(attr(root, 'n'), '7');
    assert.equal(attr(root, 'zero'), '0');
    assert.equal(root.hasAttribute('gone'), false);
    assert.equal(text(child(root, 't')), tricky);
    assert.equal(text(child(root, 'zero')), '0');
    assert.equal(text(child(root, 'empty')), '');
    assert.equal(text(child(root, 'nested')), '');
    assert.deepEqual(
      children(root, 'nested').map((n) => attr(child(n, 'leaf'), 'k')),
      ['v'],
    );
    // only the children given, in order
    let names: string[] = [];
    for (let n = root.firstChild; n; n = n.nextSibling)
      names.push((n as { nodeName: string }).nodeName);
    assert.deepEqual(names, ['t', 'zero', 'empty', 'nested']);
    // appended to a parsed document, the same way
    const doc = parseXml('<domain><name>x</name></domain>');
    appendXml(doc, { name: 'uuid', attrs: { a: '<&>' }, text: 'u<1>' });
    const again = parseXml(serializeXml(doc));
    assert.equal(text(child(again, 'uuid')), 'u<1>');
    assert.equal(attr(child(again, 'uuid'), 'a'), '<&>');
    names = [];
    for (let n = again.firstChild; n; n = n.nextSibling)
      names.push((n as { nodeName: string }).nodeName);
    assert.deepEqual(names, ['name', 'uuid']);
  });
});

const DOMAIN = `<domain type='kvm' id='5'>
  <name>web</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='MiB'>512</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/img/top.qcow2' index='3'/>
      <backingStore type='file' index='2'>
        <format type='qcow2'/>
        <source file='/img/mid.qcow2'/>
        <backingStore type='block' index='1'>
          <format type='raw'/>
          <source dev='/dev/vg/base'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <mirror type='file' job='copy' ready='yes'>
        <format type='qcow2'/>
        <source file='/img/copy.qcow2'/>
      </mirror>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/image'>
        <host name='mon1' port='6789'/>
        <host name='mon2'/>
        <host socket='/run/nbd.sock'/>
        <host/>
      </source>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='volume' device='disk'>
      <source pool='default' volume='data.qcow2'/>
      <target dev='vdc'/>
    </disk>
    <disk type='dir' device='floppy'>
      <source dir='/srv/floppy'/>
      <target dev='fda' bus='fdc'/>
    </disk>
    <disk type='nvme' device='disk'>
      <source dev='/dev/nvme0n1'/>
      <backingStore type='file'>
        <format type='raw'/>
      </backingStore>
      <target dev='vdd'/>
    </disk>
    <disk device='cdrom'>
      <source/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='network'>
      <source name='no-protocol'/>
      <target dev='sdb'/>
    </disk>
    <disk type='volume'>
      <source pool='default'/>
      <target dev='sdc'/>
      <mirror file='/img/old-style.qcow2' format='raw' job='active-commit'/>
    </disk>
    <disk type='vhostuser'>
      <source path='/run/vhost.sock'/>
    </disk>
    <disk type='file'>
      <source file='/img/inactive.qcow2'/>
      <target dev='sdd'/>
      <mirror type='block' ready='abort'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default'/>
      <target dev='vnet0'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <source bridge='br0'/>
    </interface>
    <interface type='direct'>
      <source dev='eth0' mode='bridge'/>
    </interface>
    <interface>
      <source/>
    </interface>
  </devices>
</domain>`;

describe('domain XML', () => {
  const dom = parseDomainXml(DOMAIN);
  const disk = (target: string): DiskXml => {
    const d = dom.disks.find((x) => x.target === target);
    assert.ok(d, target);
    return d;
  };

  it('reads identity and sizing', () => {
    assert.equal(dom.type, 'kvm');
    assert.equal(dom.id, 5);
    assert.equal(dom.name, 'web');
    assert.equal(dom.uuid, 'c7a5fdbd-edaf-9455-926a-d65c16db1809');
    assert.equal(dom.memoryBytes, 1024 ** 3);
    assert.equal(dom.currentMemoryBytes, 512 * 1024 ** 2);
    assert.equal(dom.vcpus, 2);
    assert.equal(dom.disks.length, 10);
    assert.equal(dom.interfaces.length, 4);
  });

  it('says what an inactive, bare definition leaves out', () => {
    const bare = parseDomainXml('<domain><memory>2048</memory></domain>');
    assert.deepEqual(bare, {
      type: 'unknown',
      id: null,
      name: '',
      uuid: '',
      memoryBytes: 2048 * 1024,
      currentMemoryBytes: null,
      vcpus: null,
      disks: [],
      interfaces: [],
    });
    assert.throws(() => parseDomainXml('<pool/>'), /expected <domain>, got <pool>/);
  });

  it('reads a file disk with its whole backing chain, top first, and its mirror', () => {
    assert.deepEqual(disk('vda'), {
      target: 'vda',
      bus: 'virtio',
      device: 'disk',
      readOnly: false,
      chain: [
        {
          index: 3,
          format: 'qcow2',
          source: { type: 'file', path: '/img/top.qcow2', network: null, volume: null },
        },
        {
          index: 2,
          format: 'qcow2',
          source: { type: 'file', path: '/img/mid.qcow2', network: null, volume: null },
        },
        {
          index: 1,
          format: 'raw',
          source: { type: 'block', path: '/dev/vg/base', network: null, volume: null },
        },
      ],
      chainComplete: true,
      mirror: {
        job: 'copy',
        ready: 'yes',
        format: 'qcow2',
        source: { type: 'file', path: '/img/copy.qcow2', network: null, volume: null },
      },
    });
  });

  it('reads network sources with their hosts, and volume sources', () => {
    const rbd = disk('vdb');
    assert.deepEqual(rbd.chain, [
      {
        index: null,
        format: 'raw',
        source: {
          type: 'network',
          path: null,
          network: {
            protocol: 'rbd',
            name: 'pool/image',
            hosts: ['mon1:6789', 'mon2', '/run/nbd.sock', ''],
          },
          volume: null,
        },
      },
    ]);
    // no empty <backingStore/>: what is below is not known
    assert.equal(rbd.chainComplete, false);
    assert.equal(rbd.mirror, null);
    const vol = disk('vdc');
    assert.deepEqual(vol.chain[0]?.source, {
      type: 'volume',
      path: null,
      network: null,
      volume: { pool: 'default', volume: 'data.qcow2' },
    });
    assert.equal(vol.chain[0]?.format, null);
    assert.equal(vol.bus, null);
  });

  it('reads dir and other source types by the attribute each names its image with', () => {
    const fd = disk('fda');
    assert.equal(fd.device, 'floppy');
    assert.deepEqual(fd.chain[0]?.source, {
      type: 'dir',
      path: '/srv/floppy',
      network: null,
      volume: null,
    });
    const nvme = disk('vdd');
    assert.equal(nvme.chain[0]?.source.path, '/dev/nvme0n1');
    // a backing image whose <source> libvirt left out
    assert.deepEqual(nvme.chain[1], {
      index: null,
      format: 'raw',
      source: { type: 'file', path: null, network: null, volume: null },
    });
    assert.equal(nvme.chainComplete, false);
    const vhost = dom.disks.find((d) => d.target === '');
    assert.equal(vhost?.chain[0]?.source.path, '/run/vhost.sock');
    assert.equal(vhost?.bus, null);
  });

  it('takes a source that names no image as no image: an empty cdrom, a half-stated source', () => {
    const cd = disk('sda');
    assert.deepEqual(
      { device: cd.device, readOnly: cd.readOnly, chain: cd.chain, complete: cd.chainComplete },
      { device: 'cdrom', readOnly: true, chain: [], complete: true },
    );
    assert.deepEqual(disk('sdb').chain, []);
    assert.equal(disk('sdb').device, 'disk');
    assert.deepEqual(disk('sdc').chain, []);
  });

  it('reads old-style and bare mirrors', () => {
    assert.deepEqual(disk('sdc').mirror, {
      job: 'active-commit',
      ready: null,
      format: 'raw',
      source: { type: 'file', path: '/img/old-style.qcow2', network: null, volume: null },
    });
    assert.deepEqual(disk('sdd').mirror, {
      job: null,
      ready: 'abort',
      format: null,
      source: { type: 'block', path: null, network: null, volume: null },
    });
    assert.equal(disk('sdd').chainComplete, false);
  });

  it('reads interfaces of every kind of source', () => {
    assert.deepEqual(dom.interfaces, [
      {
        type: 'network',
        mac: '52:54:00:aa:bb:cc',
        model: 'virtio',
        source: 'default',
        target: 'vnet0',
      },
      { type: 'bridge', mac: null, model: null, source: 'br0', target: null },
      { type: 'direct', mac: null, model: null, source: 'eth0', target: null },
      { type: 'unknown', mac: null, model: null, source: null, target: null },
    ]);
  });
});

describe('snapshot XML', () => {
  it('reads a disk-only external snapshot', () => {
    const snap = parseSnapshotXml(`<domainsnapshot>
      <name>before-upgrade</name>
      <description>  the night before  </description>
      <state>disk-snapshot</state>
      <parent><name>first</name></parent>
      <creationTime>1700000000</creationTime>
      <memory snapshot='no'/>
      <disks>
        <disk name='vda' snapshot='external' type='file'>
          <driver type='qcow2'/>
          <source file='/img/vda.before-upgrade'/>
        </disk>
        <disk name='vdb' snapshot='external' type='block'>
          <source dev='/dev/vg/snap'/>
        </disk>
        <disk name='sda' snapshot='no'/>
        <disk/>
      </disks>
      <domain type='kvm'><name>web</name></domain>
    </domainsnapshot>`);
    assert.deepEqual(snap, {
      name: 'before-upgrade',
      description: 'the night before',
      state: 'disk-snapshot',
      creationTime: 1700000000,
      parent: 'first',
      memory: 'no',
      disks: [
        { target: 'vda', snapshot: 'external', path: '/img/vda.before-upgrade', format: 'qcow2' },
        { target: 'vdb', snapshot: 'external', path: '/dev/vg/snap', format: null },
        { target: 'sda', snapshot: 'no', path: null, format: null },
        { target: '', snapshot: 'no', path: null, format: null },
      ],
    });
  });

  it('says what a bare snapshot leaves out', () => {
    assert.deepEqual(parseSnapshotXml('<domainsnapshot/>'), {
      name: '',
      description: null,
      state: null,
      creationTime: null,
      parent: null,
      memory: null,
      disks: [],
    });
  });
});

describe('capabilities XML', () => {
  it('reads the host arch and every guest arch with its domain types and machines', () => {
    const caps = parseCapabilitiesXml(`<capabilities>
      <host>
        <uuid>3a1e9c2e-0000-0000-0000-000000000000</uuid>
        <cpu><arch>x86_64</arch><model>Skylake-Client-IBRS</model></cpu>
      </host>
      <guest>
        <os_type>hvm</os_type>
        <arch name='i686'>
          <wordsize>32</wordsize>
          <emulator>/usr/bin/qemu-system-i386</emulator>
          <machine maxCpus='255'>pc-i440fx-7.2</machine>
          <machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>
          <machine maxCpus='288'>pc-q35-7.2</machine>
          <machine maxCpus='255'>pc-i440fx-7.2</machine>
          <machine/>
          <domain type='qemu'/>
          <domain type='kvm'/>
          <domain type='qemu'/>
        </arch>
        <features><pae/><nonpae/></features>
      </guest>
      <guest>
        <os_type>hvm</os_type>
        <arch name='x86_64'>
          <wordsize>64</wordsize>
          <emulator>/usr/bin/qemu-system-x86_64</emulator>
          <machine maxCpus='288'>pc-q35-7.2</machine>
          <domain type='qemu'/>
        </arch>
      </guest>
      <guest>
        <arch>
          <domain/>
        </arch>
        <arch name='aarch64'/>
      </guest>
    </capabilities>`);
    assert.deepEqual(caps, {
      hostArch: 'x86_64',
      guests: [
        {
          osType: 'hvm',
          arch: 'i686',
          wordSize: 32,
          emulator: '/usr/bin/qemu-system-i386',
          domainTypes: ['qemu', 'kvm'],
          machines: ['pc-i440fx-7.2', 'pc', 'pc-q35-7.2'],
        },
        {
          osType: 'hvm',
          arch: 'x86_64',
          wordSize: 64,
          emulator: '/usr/bin/qemu-system-x86_64',
          domainTypes: ['qemu'],
          machines: ['pc-q35-7.2'],
        },
        {
          osType: 'unknown',
          arch: 'unknown',
          wordSize: null,
          emulator: null,
          domainTypes: ['unknown'],
          machines: [],
        },
        {
          osType: 'unknown',
          arch: 'aarch64',
          wordSize: null,
          emulator: null,
          domainTypes: [],
          machines: [],
        },
      ],
    });
    assert.deepEqual(parseCapabilitiesXml('<capabilities/>'), { hostArch: null, guests: [] });
  });
});

describe('disk target names', () => {
  it('numbers as libvirt does, past z and zz', () => {
    const cases: [number, string][] = [
      [0, 'vda'],
      [1, 'vdb'],
      [25, 'vdz'],
      [26, 'vdaa'],
      [27, 'vdab'],
      [51, 'vdaz'],
      [52, 'vdba'],
      [701, 'vdzz'],
      [702, 'vdaaa'],
    ];
    for (const [n, name] of cases) assert.equal(targetName('vd', n), name, String(n));
  });

  it('gives each bus its prefix, an unknown bus sd, skipping names taken', () => {
    assert.deepEqual(
      assignTargets([
        { bus: 'virtio' },
        { bus: 'ide' },
        { bus: 'virtio', target: 'vda' },
        { bus: 'scsi', target: null },
        { bus: 'usb' },
        { bus: 'sata', target: '' },
        { bus: 'xen' },
        { bus: 'virtio' },
      ]),
      ['vdb', 'hda', 'vda', 'sda', 'sdb', 'sdc', 'sdd', 'vdc'],
    );
  });
});

describe('XML parse failures and warnings', () => {
  it('fails on an error the parser recovers from, with the first message it gave', () => {
    assert.throws(
      () => parseXml('<a>&nbsp;&foo;</a>'),
      (e: Error) =>
        e instanceof XmlParseError && e.message === 'malformed XML: entity not found:&nbsp;',
    );
    assert.throws(
      () => parseXml('<a><b></a>'),
      (e: Error) =>
        e instanceof XmlParseError &&
        /^malformed XML: Opening and ending tag mismatch/.test(e.message),
    );
    assert.throws(
      () => parseXml('<a>'.repeat(MAX_XML_DEPTH + 1) + '</a>'.repeat(MAX_XML_DEPTH + 1)),
      (e: Error) =>
        e instanceof XmlParseError &&
        e.message === `XML nested deeper than ${MAX_XML_DEPTH} elements`,
    );
  });

  it('takes what the parser only warns about', () => {
    // an unquoted attribute value: a warning, and the value is read
    assert.equal(attr(parseXml('<a x=1/>'), 'x'), '1');
  });
});

describe('XML built for libvirt, exactly', () => {
  it('defines a headless domain that boots from disk, then cdrom, with a serial console', () => {
    const disk = { bus: 'virtio', sourceType: 'file', readOnly: false } as const;
    assert.equal(
      buildDomainDefinitionXml({
        type: 'qemu',
        name: 'n',
        uuid: 'u',
        description: null,
        memoryMiB: 64,
        vcpus: 1,
        arch: 'aarch64',
        machine: 'virt',
        emulator: null,
        disks: [
          { ...disk, target: 'vda', device: 'disk', path: '/a.qcow2', format: 'qcow2' },
          { ...disk, target: 'sda', bus: 'sata', device: 'cdrom', path: '/b.iso', format: 'raw' },
        ],
        interfaces: [
          { type: 'network', source: 'default', model: 'virtio', mac: null },
          { type: 'bridge', source: 'br0', model: 'e1000', mac: null },
        ],
      }),
      '<domain type="qemu"><name>n</name><uuid>u</uuid><memory unit="MiB">64</memory>' +
        '<currentMemory unit="MiB">64</currentMemory><vcpu placement="static">1</vcpu>' +
        '<os><type arch="aarch64" machine="virt">hvm</type><boot dev="hd"/><boot dev="cdrom"/></os>' +
        '<features><acpi/></features><clock offset="utc"/><on_poweroff>destroy</on_poweroff>' +
        '<on_reboot>restart</on_reboot><on_crash>destroy</on_crash><devices>' +
        '<disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="/a.qcow2"/>' +
        '<target dev="vda" bus="virtio"/></disk>' +
        '<disk type="file" device="cdrom"><driver name="qemu" type="raw"/><source file="/b.iso"/>' +
        '<target dev="sda" bus="sata"/><readonly/></disk>' +
        '<interface type="network"><source network="default"/><model type="virtio"/></interface>' +
        '<interface type="bridge"><source bridge="br0"/><model type="e1000"/></interface>' +
        '<serial type="pty"/><console type="pty"/></devices></domain>',
    );
    // i686 is x86 (apic); no cdrom, no second boot device
    const x86 = buildDomainDefinitionXml({
      type: 'kvm',
      name: 'n',
      uuid: 'u',
      description: null,
      memoryMiB: 64,
      vcpus: 1,
      arch: 'i686',
      machine: 'pc',
      emulator: null,
      disks: [{ ...disk, target: 'vda', device: 'disk', path: '/a.qcow2', format: 'qcow2' }],
      interfaces: [],
    });
    assert.match(x86, /<os><type arch="i686" machine="pc">hvm<\/type><boot dev="hd"\/><\/os>/);
    assert.match(x86, /<features><acpi\/><apic\/><\/features>/);
  });

  it('asks for snapshots and volumes with only what is given', () => {
    assert.equal(
      buildDiskSnapshotXml({
        name: 's',
        description: null,
        disks: [
          { target: 'vda', overlay: '/o' },
          { target: 'vdb', overlay: null },
        ],
      }),
      '<domainsnapshot><name>s</name><memory snapshot="no"/><disks>' +
        '<disk name="vda" snapshot="external" type="file"><driver type="qcow2"/><source file="/o"/></disk>' +
        '<disk name="vdb" snapshot="no"/></disks></domainsnapshot>',
    );
    assert.equal(
      buildVolumeXml({ name: 'v', format: 'raw', capacityBytes: null, backing: null }),
      '<volume><name>v</name><allocation unit="bytes">0</allocation><target><format type="raw"/></target></volume>',
    );
    assert.equal(
      buildVolumeXml({ name: 'v', format: 'qcow2', capacityBytes: 5, backing: null }),
      '<volume><name>v</name><capacity unit="bytes">5</capacity><allocation unit="bytes">0</allocation>' +
        '<target><format type="qcow2"/></target></volume>',
    );
  });
});

describe('storage XML, what it leaves out', () => {
  it('reads a bare pool and volume with the defaults, sizes in bytes without a unit', () => {
    assert.deepEqual(
      parseStoragePoolXml(
        '<pool><capacity>10</capacity><allocation>2</allocation><available>8</available></pool>',
      ),
      {
        type: 'unknown',
        name: '',
        uuid: '',
        path: null,
        source: { hosts: [], devices: [], dir: null, name: null, format: null },
        capacityBytes: 10,
        allocationBytes: 2,
        availableBytes: 8,
      },
    );
    assert.deepEqual(
      parseStorageVolumeXml(
        '<volume><key></key><target><path> </path></target><capacity>4</capacity><allocation>3</allocation><physical>2</physical><backingStore><path/></backingStore></volume>',
      ),
      {
        type: 'file',
        name: '',
        key: null,
        path: null,
        format: null,
        capacityBytes: 4,
        allocationBytes: 3,
        physicalBytes: 2,
        backingStore: { path: null, format: null },
      },
    );
  });

  it('skips source hosts without a name and devices without a path', () => {
    const pool = parseStoragePoolXml(
      "<pool type='iscsi'><source><host/><host name='h' port='3260'/><device/><device path='/dev/sdb'/><name></name></source></pool>",
    );
    assert.deepEqual(pool.source, {
      hosts: [{ name: 'h', port: 3260 }],
      devices: ['/dev/sdb'],
      dir: null,
      name: null,
      format: null,
    });
  });
});

describe('domain XML, source attributes by type', () => {
  it('reads each type by its own attribute only, a disk without a type as a file', () => {
    const dom = parseDomainXml(`<domain>
      <currentMemory>4</currentMemory>
      <devices>
        <disk><source file='/untyped.qcow2'/><target dev='vda'/></disk>
        <disk type='file'><source dev='/dev/not-a-file'/><target dev='vdb'/></disk>
        <disk type='block'><source file='/not-a-dev' dev='/dev/sdz'/><target dev='vdc'/></disk>
        <disk type='nvme'><source file='/by-file' dev='/by-dev'/><target dev='vdd'/></disk>
        <disk type='nvme'><source path='/by-path'/><target dev='vde'/></disk>
      </devices>
    </domain>`);
    assert.equal(dom.currentMemoryBytes, 4096);
    const source = (i: number) => dom.disks[i]?.chain[0]?.source ?? null;
    assert.deepEqual(source(0), {
      type: 'file',
      path: '/untyped.qcow2',
      network: null,
      volume: null,
    });
    assert.equal(dom.disks[1]?.chain.length, 0);
    assert.equal(source(2)?.path, '/dev/sdz');
    assert.equal(source(3)?.path, '/by-file');
    assert.equal(source(4)?.path, '/by-path');
  });
});
