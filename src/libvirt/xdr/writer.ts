import { XdrError } from './xdr-error.js';

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;
const ZEROS = Buffer.alloc(4);

/**
 * Writes XDR (RFC 4506) values into a growing buffer. Pure: no I/O.
 * `reserve(n)` leaves room at the front so a packet's length and header can
 * be patched in after the payload is encoded, without a second copy.
 */
export class XdrWriter {
  private buf: Buffer;
  private offset = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  get length(): number {
    return this.offset;
  }

  private ensure(n: number): void {
    const needed = this.offset + n;
    if (needed <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < needed) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.offset);
    this.buf = next;
  }

  /** Skips n bytes, which the caller must fill later with the `*At` methods (they are not zeroed). */
  reserve(n: number): void {
    this.ensure(n);
    this.offset += n;
  }

  writeUintAt(position: number, v: number): void {
    this.buf.writeUInt32BE(v, position);
  }

  writeIntAt(position: number, v: number): void {
    this.buf.writeInt32BE(v, position);
  }

  writeInt(v: number): void {
    if (!Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) {
      throw new XdrError(`value ${v} is not a 32-bit signed integer`);
    }
    this.ensure(4);
    this.buf.writeInt32BE(v, this.offset);
    this.offset += 4;
  }

  writeUint(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > UINT32_MAX) {
      throw new XdrError(`value ${v} is not a 32-bit unsigned integer`);
    }
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.offset);
    this.offset += 4;
  }

  writeHyper(v: bigint): void {
    if (v < -(1n << 63n) || v >= 1n << 63n)
      throw new XdrError(`value ${v} is not a 64-bit signed integer`);
    this.ensure(8);
    this.buf.writeBigInt64BE(v, this.offset);
    this.offset += 8;
  }

  writeUhyper(v: bigint): void {
    if (v < 0n || v >= 1n << 64n) throw new XdrError(`value ${v} is not a 64-bit unsigned integer`);
    this.ensure(8);
    this.buf.writeBigUInt64BE(v, this.offset);
    this.offset += 8;
  }

  writeDouble(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.offset);
    this.offset += 8;
  }

  writeBool(v: boolean): void {
    this.writeInt(v ? 1 : 0);
  }

  writeOpaque(v: Uint8Array, max: number): void {
    if (v.length > max) throw new XdrError(`opaque length ${v.length} exceeds maximum ${max}`);
    this.writeUint(v.length);
    this.writeFixedOpaque(v);
  }

  writeFixedOpaque(v: Uint8Array): void {
    const pad = (4 - (v.length & 3)) & 3;
    this.ensure(v.length + pad);
    this.buf.set(v, this.offset);
    this.offset += v.length;
    if (pad) {
      this.buf.set(ZEROS.subarray(0, pad), this.offset);
      this.offset += pad;
    }
  }

  writeString(v: string, max: number): void {
    const len = Buffer.byteLength(v, 'utf8');
    if (len > max) throw new XdrError(`string length ${len} exceeds maximum ${max}`);
    const pad = (4 - (len & 3)) & 3;
    this.ensure(4 + len + pad);
    this.buf.writeUInt32BE(len, this.offset);
    this.offset += 4;
    this.buf.write(v, this.offset, len, 'utf8');
    this.offset += len;
    if (pad) {
      this.buf.fill(0, this.offset, this.offset + pad);
      this.offset += pad;
    }
  }

  /** The bytes written so far (a view, valid until the next write). */
  finish(): Buffer {
    return this.buf.subarray(0, this.offset);
  }
}
