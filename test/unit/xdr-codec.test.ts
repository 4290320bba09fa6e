import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  array,
  bool,
  decodeFromBuffer,
  double,
  encodeToBuffer,
  fixedArray,
  fixedCharString,
  fixedOpaque,
  hyper,
  int,
  opaque,
  optional,
  string,
  struct,
  uhyper,
  uint,
  type Codec,
} from '#src/libvirt/xdr/codec.js';
import { XdrError } from '#src/libvirt/xdr/xdr-error.js';
import { XdrReader } from '#src/libvirt/xdr/reader.js';
import {
  TypedParamType,
  domain,
  domainSnapshot,
  remoteError,
  storagePool,
  storageVol,
  typedParam,
} from '#src/libvirt/protocol/types.js';
import { procedures } from '#src/libvirt/protocol/procedures.js';
import { domainEventDecoders, EventProc } from '#src/libvirt/protocol/events.js';
import { encodePacket } from '#src/libvirt/rpc/connection.js';
import { MessageStatus, MessageType, Program } from '#src/libvirt/rpc/header.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function roundTrip<T>(c: Codec<T>, v: T): T {
  return decodeFromBuffer(c, encodeToBuffer(c, v));
}

const UUID = hex('0123456789abcdef0123456789abcdef');
const DOM = { name: 'vm-1', uuid: UUID, id: 7 };

describe('XDR primitives', () => {
  it('encodes integers big-endian in 4 and 8 bytes', () => {
    assert.deepEqual(encodeToBuffer(int, -2), hex('fffffffe'));
    assert.deepEqual(encodeToBuffer(uint, 0xdeadbeef), hex('deadbeef'));
    assert.deepEqual(encodeToBuffer(hyper, -1n), hex('ffffffffffffffff'));
    assert.deepEqual(encodeToBuffer(uhyper, 2n ** 63n + 5n), hex('8000000000000005'));
    assert.deepEqual(encodeToBuffer(bool, true), hex('00000001'));
    assert.deepEqual(encodeToBuffer(double, 1.5), hex('3ff8000000000000'));
  });

  it('round-trips the extremes of every numeric type', () => {
    for (const v of [-(2 ** 31), -1, 0, 1, 2 ** 31 - 1]) assert.equal(roundTrip(int, v), v);
    for (const v of [0, 1, 2 ** 32 - 1]) assert.equal(roundTrip(uint, v), v);
    for (const v of [-(2n ** 63n), -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n])
      assert.equal(roundTrip(hyper, v), v);
    for (const v of [0n, 2n ** 53n + 1n, 2n ** 64n - 1n]) assert.equal(roundTrip(uhyper, v), v);
    for (const v of [0, -0.25, Math.PI, Number.MAX_VALUE]) assert.equal(roundTrip(double, v), v);
    assert.equal(roundTrip(bool, false), false);
  });

  it('refuses values that do not fit their type', () => {
    assert.throws(() => encodeToBuffer(int, 2 ** 31), XdrError);
    assert.throws(() => encodeToBuffer(int, 1.5), XdrError);
    assert.throws(() => encodeToBuffer(uint, -1), XdrError);
    assert.throws(() => encodeToBuffer(uhyper, -1n), XdrError);
    assert.throws(() => encodeToBuffer(hyper, 2n ** 63n), XdrError);
    assert.throws(() => decodeFromBuffer(bool, hex('00000002')), XdrError);
  });

  it('pads strings and opaque data to 4 bytes, for every remainder', () => {
    assert.deepEqual(encodeToBuffer(string(10), ''), hex('00000000'));
    assert.deepEqual(encodeToBuffer(string(10), 'a'), hex('00000001 61000000'));
    assert.deepEqual(encodeToBuffer(string(10), 'ab'), hex('00000002 61620000'));
    assert.deepEqual(encodeToBuffer(string(10), 'abc'), hex('00000003 61626300'));
    assert.deepEqual(encodeToBuffer(string(10), 'abcd'), hex('00000004 61626364'));
    assert.deepEqual(
      encodeToBuffer(opaque(8), Buffer.from([1, 2, 3, 4, 5])),
      hex('00000005 0102030405000000'),
    );
    assert.deepEqual(encodeToBuffer(fixedOpaque(3), Buffer.from([9, 8, 7])), hex('09080700'));
  });

  it('counts string lengths in UTF-8 bytes', () => {
    const s = 'héllo ✓';
    const buf = encodeToBuffer(string(100), s);
    assert.equal(buf.readUInt32BE(0), Buffer.byteLength(s));
    assert.equal(roundTrip(string(100), s), s);
  });

  it('enforces maximum lengths both ways', () => {
    assert.throws(() => encodeToBuffer(string(3), 'abcd'), /exceeds maximum 3/);
    assert.throws(() => decodeFromBuffer(string(3), hex('00000004 61626364')), /exceeds maximum 3/);
    assert.throws(() => decodeFromBuffer(opaque(2), hex('00000003 01020300')), XdrError);
    assert.throws(() => encodeToBuffer(array(int, 1), [1, 2]), XdrError);
    assert.throws(
      () => decodeFromBuffer(array(int, 1), hex('00000002 00000001 00000002')),
      XdrError,
    );
  });

  it('refuses truncated data, trailing bytes and impossible counts', () => {
    assert.throws(() => decodeFromBuffer(int, hex('000000')), /truncated/);
    assert.throws(() => decodeFromBuffer(string(100), hex('00000005 6162')), /truncated/);
    assert.throws(() => decodeFromBuffer(int, hex('00000001 00')), /trailing/);
    // A count of a million elements with 4 bytes behind it must fail before allocating.
    assert.throws(
      () => decodeFromBuffer(array(int, 2_000_000), hex('000f4240 00000001')),
      /overruns/,
    );
  });

  it('widens char[N] to 4 bytes per character', () => {
    const c = fixedCharString(32);
    const buf = encodeToBuffer(c, 'x86_64');
    assert.equal(buf.length, 128);
    assert.deepEqual(buf.subarray(0, 8), hex('00000078 00000038'));
    assert.equal(roundTrip(c, 'x86_64'), 'x86_64');
    assert.equal(roundTrip(c, 'a'.repeat(32)), 'a'.repeat(32));
    assert.throws(() => encodeToBuffer(c, 'a'.repeat(33)), XdrError);
  });

  it('encodes optionals as a 0/1 flag followed by the value', () => {
    const c = optional(string(10));
    assert.deepEqual(encodeToBuffer(c, null), hex('00000000'));
    assert.deepEqual(encodeToBuffer(c, 'ab'), hex('00000001 00000002 61620000'));
    assert.equal(roundTrip(c, null), null);
    assert.equal(roundTrip(c, 'ab'), 'ab');
    assert.throws(() => decodeFromBuffer(c, hex('00000002')), /optional flag/);
  });

  it('encodes variable and fixed arrays', () => {
    assert.deepEqual(encodeToBuffer(array(int, 5), []), hex('00000000'));
    assert.deepEqual(encodeToBuffer(array(int, 5), [1, -1]), hex('00000002 00000001 ffffffff'));
    assert.deepEqual(encodeToBuffer(fixedArray(uint, 2), [3, 4]), hex('00000003 00000004'));
    assert.deepEqual(roundTrip(array(string(9), 3), ['a', 'bcdef', '']), ['a', 'bcdef', '']);
    assert.throws(() => encodeToBuffer(fixedArray(uint, 2), [1]), XdrError);
  });

  it('encodes struct fields in declaration order, nested', () => {
    const c = struct({ b: int, a: struct({ z: string(4), y: uint }) });
    const v = { b: 1, a: { z: 'q', y: 2 } };
    assert.deepEqual(encodeToBuffer(c, v), hex('00000001 00000001 71000000 00000002'));
    assert.deepEqual(roundTrip(c, v), v);
  });

  it('reads from an offset without copying', () => {
    const buf = hex('ffffffff 00000009');
    const r = new XdrReader(buf, 4);
    assert.equal(r.readInt(), 9);
    assert.equal(r.remaining, 0);
  });
});

describe('libvirt structs', () => {
  it('round-trips every object reference kind', () => {
    assert.deepEqual(roundTrip(domain, DOM), DOM);
    const pool = { name: 'default', uuid: UUID };
    assert.deepEqual(roundTrip(storagePool, pool), pool);
    const vol = { pool: 'default', name: 'disk.qcow2', key: '/var/lib/libvirt/images/disk.qcow2' };
    assert.deepEqual(roundTrip(storageVol, vol), vol);
    const snap = { name: 's1', dom: DOM };
    assert.deepEqual(roundTrip(domainSnapshot, snap), snap);
  });

  it('lays out remote_nonnull_domain as name, 16 raw uuid bytes, id', () => {
    assert.deepEqual(
      encodeToBuffer(domain, { name: 'ab', uuid: UUID, id: -1 }),
      Buffer.concat([hex('00000002 61620000'), UUID, hex('ffffffff')]),
    );
  });

  it('decodes a full remote_error with every optional present or absent', () => {
    // code 42, domain 10 (QEMU), message "no", level 2, dom absent, str1 "x", str2/str3 absent, int1 -1, int2 3, net absent
    const bytes = hex(
      '0000002a 0000000a 00000001 00000002 6e6f0000 00000002 00000000 00000001 00000001 78000000 00000000 00000000 ffffffff 00000003 00000000',
    );
    const e = decodeFromBuffer(remoteError, bytes);
    assert.deepEqual(e, {
      code: 42,
      domain: 10,
      message: 'no',
      level: 2,
      dom: null,
      str1: 'x',
      str2: null,
      str3: null,
      int1: -1,
      int2: 3,
      net: null,
    });
    const withAll = { ...e, dom: DOM, str2: 'y', str3: 'z', net: { name: 'default', uuid: UUID } };
    assert.deepEqual(roundTrip(remoteError, withAll), withAll);
    const noMessage = { ...e, message: null };
    assert.deepEqual(roundTrip(remoteError, noMessage), noMessage);
  });

  it('round-trips typed parameters of every type', () => {
    const params = [
      { field: 'i', value: { type: TypedParamType.int, value: -5 } },
      { field: 'u', value: { type: TypedParamType.uint, value: 5 } },
      { field: 'l', value: { type: TypedParamType.llong, value: -(2n ** 40n) } },
      { field: 'bandwidth', value: { type: TypedParamType.ullong, value: 2n ** 60n } },
      { field: 'd', value: { type: TypedParamType.double, value: 0.5 } },
      { field: 'b', value: { type: TypedParamType.boolean, value: true } },
      { field: 's', value: { type: TypedParamType.string, value: 'text' } },
    ] as const;
    for (const p of params) assert.deepEqual(roundTrip(typedParam, p), p);
    assert.throws(
      () => decodeFromBuffer(typedParam, hex('00000001 61000000 00000063')),
      /discriminant 99/,
    );
  });

  it('round-trips the arguments and replies of the block-job and inventory procedures', () => {
    const commit = {
      dom: DOM,
      disk: 'vda',
      base: 'vda[3]',
      top: null,
      bandwidth: 1n << 20n,
      flags: 4,
    };
    assert.deepEqual(roundTrip(procedures.domainBlockCommit.args, commit), commit);
    const copy = {
      dom: DOM,
      path: 'vda',
      destxml: "<disk type='file'/>",
      params: [{ field: 'bandwidth', value: { type: TypedParamType.ullong, value: 1048576n } }],
      flags: 4,
    };
    assert.deepEqual(roundTrip(procedures.domainBlockCopy.args, copy), copy);
    const jobInfo = { found: 1, type: 4, bandwidth: 0n, cur: 5n, end: 10n };
    assert.deepEqual(roundTrip(procedures.domainGetBlockJobInfo.ret, jobInfo), jobInfo);
    const node = {
      model: 'x86_64',
      memory: 4_000_000n,
      cpus: 2,
      mhz: 2100,
      nodes: 1,
      sockets: 1,
      cores: 2,
      threads: 1,
    };
    assert.deepEqual(roundTrip(procedures.nodeGetInfo.ret, node), node);
    assert.equal(encodeToBuffer(procedures.nodeGetInfo.ret, node).length, 128 + 8 + 6 * 4);
    const info = { state: 1, maxMem: 65536n, memory: 65536n, nrVirtCpu: 1, cpuTime: 10n ** 12n };
    assert.deepEqual(roundTrip(procedures.domainGetInfo.ret, info), info);
    const list = { domains: [DOM, { ...DOM, name: 'vm-2', id: -1 }], ret: 2 };
    assert.deepEqual(roundTrip(procedures.connectListAllDomains.ret, list), list);
    const register = { eventID: 16, dom: null };
    assert.deepEqual(
      roundTrip(procedures.connectDomainEventCallbackRegisterAny.args, register),
      register,
    );
  });

  it('decodes BLOCK_JOB_2 and lifecycle event messages into normalised events', () => {
    const bj2 = domainEventDecoders.get(EventProc.DOMAIN_EVENT_BLOCK_JOB_2)!;
    const payload = Buffer.concat([
      hex('00000003'),
      encodeToBuffer(domain, DOM),
      hex('00000003 76646100 00000004 00000003'),
    ]);
    assert.deepEqual(bj2.toEvent(decodeFromBuffer(bj2.codec, payload)), {
      kind: 'blockJob',
      callbackId: 3,
      dom: DOM,
      disk: 'vda',
      type: 4,
      status: 3,
    });
    const lc = domainEventDecoders.get(EventProc.DOMAIN_EVENT_CALLBACK_LIFECYCLE)!;
    const lcPayload = Buffer.concat([
      hex('00000001'),
      encodeToBuffer(domain, DOM),
      hex('00000005 00000001'),
    ]);
    assert.deepEqual(lc.toEvent(decodeFromBuffer(lc.codec, lcPayload)), {
      kind: 'lifecycle',
      callbackId: 1,
      dom: DOM,
      event: 5,
      detail: 1,
    });
  });
});

describe('call packets', () => {
  it('encodes CONNECT_OPEN exactly as the protocol brief shows it', () => {
    const bytes = encodePacket(
      {
        prog: Program.remote,
        vers: 1,
        proc: 1,
        type: MessageType.call,
        serial: 3,
        status: MessageStatus.ok,
      },
      procedures.connectOpen.args,
      { name: 'qemu:///system', flags: 0 },
    );
    assert.deepEqual(
      bytes,
      hex(
        '00000038 20008086 00000001 00000001 00000000 00000003 00000000' +
          '00000001 0000000e 71656d753a2f2f2f73797374656d0000 00000000',
      ),
    );
  });
});
