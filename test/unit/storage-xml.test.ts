/**
 * Storage pool and volume XML, parsed from documents captured from libvirtd
 * (libvirt 9.0, Debian 12): a running dir pool, qcow2 volumes with and without
 * a backing store, a raw volume, the test driver's default-pool and one of its
 * volumes, and the sources of netfs, disk, logical and iSCSI pools.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseStoragePoolXml, parseStorageVolumeXml } from '#src/xml/storage-xml.js';
import { XmlParseError } from '#src/xml/xml.js';

// virsh -c qemu:///system pool-dumpxml (pool-define-as … dir --target DIR; pool-start)
const DIR_POOL = `<pool type='dir'>
  <name>vgcap-pool</name>
  <uuid>e66048ef-c26e-457a-a405-158845e0cdac</uuid>
  <capacity unit='bytes'>270553174016</capacity>
  <allocation unit='bytes'>23747989504</allocation>
  <available unit='bytes'>246805184512</available>
  <source>
  </source>
  <target>
    <path>/tmp/vgcap-bccq</path>
    <permissions>
      <mode>0700</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
  </target>
</pool>
`;

// the same kind of pool, defined and not started
const INACTIVE_DIR_POOL = `<pool type='dir'>
  <name>vgcap-inact</name>
  <uuid>833f9786-6b51-406a-a344-0b5058fb5878</uuid>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <source>
  </source>
  <target>
    <path>/tmp/vgcap-xzCc</path>
  </target>
</pool>
`;

// virsh -c test+tcp://127.0.0.1/default pool-dumpxml default-pool (one 8 MiB volume in it)
const TEST_DEFAULT_POOL = `<pool type='dir'>
  <name>default-pool</name>
  <uuid>dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566</uuid>
  <capacity unit='bytes'>107374182400</capacity>
  <allocation unit='bytes'>8388608</allocation>
  <available unit='bytes'>107365793792</available>
  <source>
  </source>
  <target>
    <path>/default-pool</path>
  </target>
</pool>
`;

const NETFS_POOL = `<pool type='netfs'>
  <name>vgcap-netfs</name>
  <uuid>a7233ece-ab5f-4f82-b5d5-8eb0d3abd9be</uuid>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <source>
    <host name='nfs.example.com'/>
    <dir path='/export/images'/>
    <format type='nfs'/>
  </source>
  <target>
    <path>/mnt/vgcap-netfs</path>
  </target>
</pool>
`;

const DISK_POOL = `<pool type='disk'>
  <name>vgcap-disk</name>
  <uuid>5761f8bb-3017-4d0d-8605-7051579c6a06</uuid>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <source>
    <device path='/dev/vgcap-nodisk'/>
    <format type='gpt'/>
  </source>
  <target>
    <path>/dev</path>
  </target>
</pool>
`;

const LOGICAL_POOL = `<pool type='logical'>
  <name>vgcap-logical</name>
  <uuid>d54b3f2b-1fa9-4d39-961e-5d214bd2178a</uuid>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <source>
    <device path='/dev/vgcap-pv'/>
    <name>vgcapvg</name>
    <format type='lvm2'/>
  </source>
  <target>
    <path>/dev/vgcapvg</path>
  </target>
</pool>
`;

const ISCSI_POOL = `<pool type='iscsi'>
  <name>vgcap-iscsi</name>
  <uuid>bfd8dfc0-da00-447a-a931-03c116f867f1</uuid>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <source>
    <host name='iscsi.example.com'/>
    <device path='iqn.2013-06.com.example:iscsi-pool'/>
  </source>
  <target>
    <path>/dev/disk/by-path</path>
  </target>
</pool>
`;

// qemu-img create -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 32M; pool-refresh; vol-dumpxml
const QCOW2_WITH_BACKING = `<volume type='file'>
  <name>top.qcow2</name>
  <key>/tmp/vgcap-bccq/top.qcow2</key>
  <capacity unit='bytes'>33554432</capacity>
  <allocation unit='bytes'>200704</allocation>
  <physical unit='bytes'>196616</physical>
  <target>
    <path>/tmp/vgcap-bccq/top.qcow2</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0644</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
    <timestamps>
      <atime>1795936933.875938481</atime>
      <mtime>1795936933.874362357</mtime>
      <ctime>1795936933.874362357</ctime>
      <btime>0</btime>
    </timestamps>
    <compat>1.1</compat>
    <clusterSize unit='B'>65536</clusterSize>
    <features/>
  </target>
  <backingStore>
    <path>/tmp/vgcap-bccq/base.qcow2</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0644</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
    <timestamps>
      <atime>1795936933.867938480</atime>
      <mtime>1795936933.864155268</mtime>
      <ctime>1795936933.864155268</ctime>
      <btime>0</btime>
    </timestamps>
  </backingStore>
</volume>
`;

const QCOW2_BASE = `<volume type='file'>
  <name>base.qcow2</name>
  <key>/tmp/vgcap-bccq/base.qcow2</key>
  <capacity unit='bytes'>16777216</capacity>
  <allocation unit='bytes'>200704</allocation>
  <physical unit='bytes'>196616</physical>
  <target>
    <path>/tmp/vgcap-bccq/base.qcow2</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0644</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
    <timestamps>
      <atime>1795936933.867938480</atime>
      <mtime>1795936933.864155268</mtime>
      <ctime>1795936933.864155268</ctime>
      <btime>0</btime>
    </timestamps>
    <compat>1.1</compat>
    <clusterSize unit='B'>65536</clusterSize>
    <features/>
  </target>
</volume>
`;

const RAW = `<volume type='file'>
  <name>disk.raw</name>
  <key>/tmp/vgcap-bccq/disk.raw</key>
  <capacity unit='bytes'>4194304</capacity>
  <allocation unit='bytes'>4096</allocation>
  <physical unit='bytes'>4194304</physical>
  <target>
    <path>/tmp/vgcap-bccq/disk.raw</path>
    <format type='raw'/>
    <permissions>
      <mode>0644</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
    <timestamps>
      <atime>1795936933.903938482</atime>
      <mtime>1795936933.887949718</mtime>
      <ctime>1795936933.887949718</ctime>
      <btime>0</btime>
    </timestamps>
  </target>
</volume>
`;

// virsh -c test+tcp://127.0.0.1/default vol-create-as default-pool vgcap-vol.img 8M --format qcow2
const TEST_DRIVER_VOLUME = `<volume type='file'>
  <name>vgcap-vol.img</name>
  <key>/default-pool/vgcap-vol.img</key>
  <capacity unit='bytes'>8388608</capacity>
  <allocation unit='bytes'>8388608</allocation>
  <target>
    <path>/default-pool/vgcap-vol.img</path>
    <format type='qcow2'/>
  </target>
</volume>
`;

const NO_SOURCE = { hosts: [], devices: [], dir: null, name: null, format: null };

describe('parseStoragePoolXml', () => {
  it('reads a running dir pool', () => {
    assert.deepEqual(parseStoragePoolXml(DIR_POOL), {
      type: 'dir',
      name: 'vgcap-pool',
      uuid: 'e66048ef-c26e-457a-a405-158845e0cdac',
      path: '/tmp/vgcap-bccq',
      source: NO_SOURCE,
      capacityBytes: 270553174016,
      allocationBytes: 23747989504,
      availableBytes: 246805184512,
    });
  });

  it('reads an inactive pool, whose sizes libvirt reports as 0', () => {
    const pool = parseStoragePoolXml(INACTIVE_DIR_POOL);
    assert.equal(pool.name, 'vgcap-inact');
    assert.equal(pool.path, '/tmp/vgcap-xzCc');
    assert.equal(pool.capacityBytes, 0);
    assert.equal(pool.availableBytes, 0);
  });

  it("reads the test driver's default-pool", () => {
    assert.deepEqual(parseStoragePoolXml(TEST_DEFAULT_POOL), {
      type: 'dir',
      name: 'default-pool',
      uuid: 'dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566',
      path: '/default-pool',
      source: NO_SOURCE,
      capacityBytes: 107374182400,
      allocationBytes: 8388608,
      availableBytes: 107365793792,
    });
  });

  it('reads the source of network and device pools', () => {
    assert.deepEqual(parseStoragePoolXml(NETFS_POOL).source, {
      hosts: [{ name: 'nfs.example.com', port: null }],
      devices: [],
      dir: '/export/images',
      name: null,
      format: 'nfs',
    });
    assert.equal(parseStoragePoolXml(NETFS_POOL).path, '/mnt/vgcap-netfs');
    assert.deepEqual(parseStoragePoolXml(DISK_POOL).source, {
      ...NO_SOURCE,
      devices: ['/dev/vgcap-nodisk'],
      format: 'gpt',
    });
    assert.deepEqual(parseStoragePoolXml(LOGICAL_POOL).source, {
      ...NO_SOURCE,
      devices: ['/dev/vgcap-pv'],
      name: 'vgcapvg',
      format: 'lvm2',
    });
    assert.deepEqual(parseStoragePoolXml(ISCSI_POOL).source, {
      ...NO_SOURCE,
      hosts: [{ name: 'iscsi.example.com', port: null }],
      devices: ['iqn.2013-06.com.example:iscsi-pool'],
    });
  });

  it('reads host ports, several hosts and a pool without a target', () => {
    // the shape of an rbd pool (this libvirtd has no rbd backend to capture one from)
    const pool = parseStoragePoolXml(
      `<pool type='rbd'><name>ceph</name><uuid>0a2b3c4d-0000-4000-8000-000000000001</uuid>` +
        `<capacity unit='KiB'>2</capacity><source><name>rbdpool</name>` +
        `<host name='mon1.example.com' port='6789'/><host name='mon2.example.com' port='6789'/>` +
        `</source></pool>`,
    );
    assert.equal(pool.path, null);
    assert.equal(pool.capacityBytes, 2048, 'the unit attribute is honoured');
    assert.equal(pool.allocationBytes, null, 'absent, not 0');
    assert.deepEqual(pool.source, {
      ...NO_SOURCE,
      hosts: [
        { name: 'mon1.example.com', port: 6789 },
        { name: 'mon2.example.com', port: 6789 },
      ],
      name: 'rbdpool',
    });
  });

  it('refuses a document that is not a pool, and malformed XML', () => {
    assert.throws(() => parseStoragePoolXml(RAW), /expected <pool>, got <volume>/);
    assert.throws(() => parseStoragePoolXml('<pool type="dir"><name>x</pool>'), XmlParseError);
  });
});

describe('parseStorageVolumeXml', () => {
  it('reads a qcow2 volume and its backing store', () => {
    assert.deepEqual(parseStorageVolumeXml(QCOW2_WITH_BACKING), {
      type: 'file',
      name: 'top.qcow2',
      key: '/tmp/vgcap-bccq/top.qcow2',
      path: '/tmp/vgcap-bccq/top.qcow2',
      format: 'qcow2',
      capacityBytes: 33554432,
      allocationBytes: 200704,
      physicalBytes: 196616,
      backingStore: { path: '/tmp/vgcap-bccq/base.qcow2', format: 'qcow2' },
    });
  });

  it('reads a qcow2 volume without a backing store, and a raw one', () => {
    const base = parseStorageVolumeXml(QCOW2_BASE);
    assert.equal(base.backingStore, null);
    assert.equal(base.capacityBytes, 16777216);
    assert.equal(base.format, 'qcow2');
    assert.deepEqual(parseStorageVolumeXml(RAW), {
      type: 'file',
      name: 'disk.raw',
      key: '/tmp/vgcap-bccq/disk.raw',
      path: '/tmp/vgcap-bccq/disk.raw',
      format: 'raw',
      capacityBytes: 4194304,
      allocationBytes: 4096,
      physicalBytes: 4194304,
      backingStore: null,
    });
  });

  it('reads a test driver volume, which has no <physical>', () => {
    assert.deepEqual(parseStorageVolumeXml(TEST_DRIVER_VOLUME), {
      type: 'file',
      name: 'vgcap-vol.img',
      key: '/default-pool/vgcap-vol.img',
      path: '/default-pool/vgcap-vol.img',
      format: 'qcow2',
      capacityBytes: 8388608,
      allocationBytes: 8388608,
      physicalBytes: null,
      backingStore: null,
    });
  });

  it('reads a block volume and a backing store without a format', () => {
    const vol = parseStorageVolumeXml(
      `<volume type='block'><name>lv0</name><key>k</key>` +
        `<capacity unit='MiB'>1</capacity><allocation>512</allocation>` +
        `<target><path>/dev/vg/lv0</path></target>` +
        `<backingStore><path>/dev/vg/base</path></backingStore></volume>`,
    );
    assert.equal(vol.type, 'block');
    assert.equal(vol.format, null);
    assert.equal(vol.capacityBytes, 1024 * 1024);
    assert.equal(vol.allocationBytes, 512, 'bytes when no unit is given');
    assert.equal(vol.physicalBytes, null);
    assert.deepEqual(vol.backingStore, { path: '/dev/vg/base', format: null });
  });

  it('refuses a document that is not a volume, and malformed XML', () => {
    assert.throws(() => parseStorageVolumeXml(DIR_POOL), /expected <volume>, got <pool>/);
    assert.throws(() => parseStorageVolumeXml('not xml'), XmlParseError);
  });
});
