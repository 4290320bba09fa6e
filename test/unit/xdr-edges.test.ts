/**
 * The XDR codec at its edges (src/libvirt/xdr): values at the limits of their
 * type, lengths and counts equal to their maximum, padding, a reader bounded
 * short of its buffer, char[N] with bytes over 127, unions, a writer that
 * grows. xdr-codec.test.ts has the common cases and libvirt's structs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  array,
  bool,
  decodeFromBuffer,
  double,
  empty,
  encodeToBuffer,
  fixedArray,
  fixedCharString,
  fixedOpaque,
  hyper,
  int,
  opaque,
  optional,
  string,
  uhyper,
  uint,
  union,
  type Codec,
} from '#src/libvirt/xdr/codec.js';
import { XdrReader } from '#src/libvirt/xdr/reader.js';
import { XdrWriter } from '#src/libvirt/xdr/writer.js';
import { PACKET_MAX } from '#src/libvirt/rpc/header.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function roundTrip<T>(c: Codec<T>, v: T): T {
  return decodeFromBuffer(c, encodeToBuffer(c, v));
}

describe('XDR edge cases', () => {
  it('takes values at the very limits of their type and refuses one past them', () => {
    for (const v of [-(2 ** 31) - 1, 2 ** 31, Number.NaN, Infinity]) {
      assert.throws(() => encodeToBuffer(int, v), /is not a 32-bit signed integer/, String(v));
    }
    for (const v of [-1, 2 ** 32, 0.5]) {
      assert.throws(() => encodeToBuffer(uint, v), /is not a 32-bit unsigned integer/, String(v));
    }
    assert.deepEqual(encodeToBuffer(uint, 2 ** 32 - 1), hex('ffffffff'));
    assert.deepEqual(encodeToBuffer(int, -(2 ** 31)), hex('80000000'));
    assert.deepEqual(encodeToBuffer(hyper, -(2n ** 63n)), hex('8000000000000000'));
    assert.throws(() => encodeToBuffer(hyper, -(2n ** 63n) - 1n), /64-bit signed/);
    assert.deepEqual(encodeToBuffer(uhyper, 2n ** 64n - 1n), hex('ffffffffffffffff'));
    assert.deepEqual(encodeToBuffer(uhyper, 0n), hex('0000000000000000'));
    assert.throws(() => encodeToBuffer(uhyper, 2n ** 64n), /64-bit unsigned/);
    assert.equal(decodeFromBuffer(bool, hex('00000000')), false);
    assert.equal(decodeFromBuffer(bool, hex('00000001')), true);
    assert.throws(() => decodeFromBuffer(bool, hex('ffffffff')), /invalid XDR bool -1/);
    assert.deepEqual(encodeToBuffer(bool, false), hex('00000000'));
  });

  it('takes lengths and counts equal to their maximum', () => {
    assert.deepEqual(encodeToBuffer(string(3), 'abc'), hex('00000003 61626300'));
    assert.equal(decodeFromBuffer(string(3), hex('00000003 61626300')), 'abc');
    assert.deepEqual(encodeToBuffer(opaque(2), Buffer.from([1, 2])), hex('00000002 01020000'));
    assert.deepEqual(decodeFromBuffer(opaque(2), hex('00000002 01020000')), Buffer.from([1, 2]));
    assert.throws(
      () => encodeToBuffer(opaque(2), Buffer.from([1, 2, 3])),
      /opaque length 3 exceeds maximum 2/,
    );
    assert.deepEqual(encodeToBuffer(array(int, 2), [1, 2]), hex('00000002 00000001 00000002'));
    assert.deepEqual(decodeFromBuffer(array(int, 2), hex('00000002 00000001 00000002')), [1, 2]);
    assert.throws(
      () => encodeToBuffer(array(int, 2), [1, 2, 3]),
      /array length 3 exceeds maximum 2/,
    );
    assert.throws(
      () => decodeFromBuffer(array(int, 2), hex('00000003 00000001 00000002 00000003')),
      /array length 3 exceeds maximum 2/,
    );
    // two elements, exactly 8 bytes behind the count: not an overrun
    assert.deepEqual(decodeFromBuffer(array(uint, 9), hex('00000002 00000007 00000008')), [7, 8]);
    assert.throws(
      () => decodeFromBuffer(array(uint, 9), hex('00000003 00000007 00000008')),
      /array of 3 elements overruns/,
    );
  });

  it('reads padding as part of a string or opaque, and refuses data cut inside it', () => {
    const r = new XdrReader(hex('00000001 61000000 00000002 01020000 0000000a'));
    assert.equal(r.readString(8), 'a');
    assert.equal(r.position, 8);
    assert.deepEqual(r.readOpaque(8), Buffer.from([1, 2]));
    assert.equal(r.position, 16);
    assert.equal(r.remaining, 4);
    assert.equal(r.readUint(), 10);
    r.assertEnd();
    assert.throws(
      () => decodeFromBuffer(string(8), hex('00000001 6100')),
      /truncated XDR data: need 4 bytes at offset 4, have 2/,
    );
    assert.throws(() => decodeFromBuffer(opaque(8), hex('00000001 6100')), /truncated/);
    assert.throws(() => decodeFromBuffer(fixedOpaque(3), hex('010203')), /truncated/);
    assert.throws(() => decodeFromBuffer(hyper, hex('00000000 000000')), /need 8 bytes/);
    assert.throws(() => decodeFromBuffer(uhyper, hex('00000000 000000')), /need 8 bytes/);
    assert.throws(() => decodeFromBuffer(double, hex('00000000 000000')), /need 8 bytes/);
    assert.throws(() => decodeFromBuffer(uint, hex('000000')), /need 4 bytes/);
    assert.throws(
      () => decodeFromBuffer(int, hex('00000001 0000')),
      /^XdrError: 2 unexpected trailing bytes/,
    );
  });

  it('stops reading at the end it was given, not at the end of the buffer', () => {
    const r = new XdrReader(hex('00000001 00000002 00000003'), 4, 8);
    assert.equal(r.remaining, 4);
    assert.equal(r.readInt(), 2);
    assert.equal(r.remaining, 0);
    assert.throws(() => r.readInt(), /truncated/);
    r.assertEnd();
    const partial = new XdrReader(hex('00000001 00000002'), 0, 8);
    partial.readInt();
    assert.throws(() => partial.assertEnd(), /4 unexpected trailing bytes/);
  });

  it('keeps fixed opaque data of exactly its length, as a copy', () => {
    const c = fixedOpaque(5);
    assert.deepEqual(encodeToBuffer(c, Buffer.from('abcde')), hex('61626364 65000000'));
    assert.throws(
      () => encodeToBuffer(c, Buffer.from('abcd')),
      /fixed opaque needs 5 bytes, got 4/,
    );
    const wire = hex('61626364 65000000');
    const v = decodeFromBuffer(c, wire);
    wire[0] = 0x7a;
    assert.equal(
      v.toString(),
      'abcde',
      'the value does not change with the bytes it was read from',
    );
  });

  it('widens each byte of char[N] with its sign and stops at the first NUL', () => {
    const c = fixedCharString(4);
    // é is c3 a9 in UTF-8: bytes over 127 are negative chars
    assert.deepEqual(encodeToBuffer(c, 'é'), hex('ffffffc3 ffffffa9 00000000 00000000'));
    assert.equal(decodeFromBuffer(c, hex('ffffffc3 ffffffa9 00000000 00000000')), 'é');
    assert.equal(decodeFromBuffer(c, hex('00000061 00000000 00000062 00000000')), 'a');
    assert.equal(decodeFromBuffer(c, hex('00000061 00000062 00000063 00000064')), 'abcd');
    assert.equal(roundTrip(c, ''), '');
  });

  it('writes an absent optional for undefined as for null', () => {
    const c = optional(int);
    assert.deepEqual(encodeToBuffer(c, undefined as unknown as null), hex('00000000'));
    assert.deepEqual(encodeToBuffer(c, 0), hex('00000001 00000000'));
    assert.equal(decodeFromBuffer(c, hex('00000001 00000000')), 0);
  });

  it('encodes unions by their discriminant, refusing unknown arms both ways', () => {
    const c = union({ 1: int, 3: string(8) });
    assert.deepEqual(encodeToBuffer(c, { type: 3, value: 'x' }), hex('00000003 00000001 78000000'));
    assert.deepEqual(decodeFromBuffer(c, hex('00000001 ffffffff')), { type: 1, value: -1 });
    assert.throws(
      () => encodeToBuffer(c, { type: 2, value: 0 } as never),
      /no union arm for discriminant 2/,
    );
    assert.throws(
      () => decodeFromBuffer(c, hex('00000002 00000000')),
      /unknown union discriminant 2/,
    );
    assert.deepEqual(encodeToBuffer(empty, undefined), Buffer.alloc(0));
    assert.equal(decodeFromBuffer(empty, Buffer.alloc(0)), undefined);
    assert.deepEqual(encodeToBuffer(fixedArray(int, 0), []), Buffer.alloc(0));
    assert.deepEqual(decodeFromBuffer(fixedArray(int, 2), hex('00000001 00000002')), [1, 2]);
  });

  it('grows its buffer past the initial size, keeping what it wrote, and patches reserved words', () => {
    const w = new XdrWriter(4);
    w.reserve(8);
    for (let i = 0; i < 40; i++) w.writeUint(i);
    w.writeOpaque(Buffer.alloc(300, 7), 300);
    w.writeString('z'.repeat(1000), 1000);
    w.writeUintAt(0, 0xfffffffe);
    w.writeIntAt(4, -3);
    const buf = w.finish();
    assert.equal(w.length, buf.length);
    assert.equal(buf.length, 8 + 160 + 4 + 300 + 4 + 1000);
    const r = new XdrReader(buf);
    assert.equal(r.readUint(), 0xfffffffe);
    assert.equal(r.readInt(), -3);
    for (let i = 0; i < 40; i++) assert.equal(r.readUint(), i);
    assert.deepEqual(r.readOpaque(300), Buffer.alloc(300, 7));
    assert.equal(r.readString(1000), 'z'.repeat(1000));
    r.assertEnd();
  });
});

describe('XDR writer at the end of its buffer', () => {
  it('makes room for the padding, not only for the data', () => {
    const w = new XdrWriter(1);
    w.writeFixedOpaque(Buffer.from([9]));
    assert.deepEqual(w.finish(), hex('09000000'));
    const s = new XdrWriter(5);
    s.writeString('a', 8);
    assert.deepEqual(s.finish(), hex('00000001 61000000'));
  });

  it('says which limit a value broke', () => {
    assert.throws(
      () => encodeToBuffer(fixedCharString(2), 'abc'),
      /^XdrError: string longer than char\[2\]$/,
    );
    assert.throws(
      () => encodeToBuffer(fixedArray(int, 2), [1]),
      /^XdrError: fixed array needs 2 elements, got 1$/,
    );
    assert.throws(
      () => decodeFromBuffer(opaque(2), hex('00000003 01020300')),
      /^XdrError: opaque length 3 exceeds maximum 2$/,
    );
  });

  it("frames packets up to libvirt's 32 MiB message and its length word", () => {
    assert.equal(PACKET_MAX, 32 * 1024 * 1024 + 4);
  });
});
