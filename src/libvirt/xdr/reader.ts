import { XdrError } from './xdr-error.js';

/**
 * Reads XDR (RFC 4506) values from a buffer, big-endian, 4-byte aligned.
 * Pure: no I/O. Every read checks bounds, so a truncated or hostile payload
 * becomes an XdrError, never an out-of-range read.
 */
export class XdrReader {
  private offset: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.offset = start;
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number): void {
    if (this.offset + n > this.end) {
      throw new XdrError(
        `truncated XDR data: need ${n} bytes at offset ${this.offset}, have ${this.end - this.offset}`,
      );
    }
  }

  readInt(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  readUint(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  readHyper(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  readUhyper(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  readDouble(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return v;
  }

  readBool(): boolean {
    const v = this.readInt();
    if (v !== 0 && v !== 1) throw new XdrError(`invalid XDR bool ${v}`);
    return v === 1;
  }

  /** Variable-length opaque data: length word, bytes, padding to 4. */
  readOpaque(max: number): Buffer {
    const len = this.readUint();
    if (len > max) throw new XdrError(`opaque length ${len} exceeds maximum ${max}`);
    return this.readFixedOpaque(len);
  }

  /** Fixed-length opaque data: bytes and padding, no length word. */
  readFixedOpaque(len: number): Buffer {
    const padded = (len + 3) & ~3;
    this.need(padded);
    const v = this.buf.subarray(this.offset, this.offset + len);
    this.offset += padded;
    return v;
  }

  readString(max: number): string {
    const len = this.readUint();
    if (len > max) throw new XdrError(`string length ${len} exceeds maximum ${max}`);
    const padded = (len + 3) & ~3;
    this.need(padded);
    const v = this.buf.toString('utf8', this.offset, this.offset + len);
    this.offset += padded;
    return v;
  }

  /** Throws unless every byte was consumed: trailing bytes mean the codec and the peer disagree. */
  assertEnd(): void {
    if (this.offset !== this.end) {
      throw new XdrError(`${this.end - this.offset} unexpected trailing bytes in XDR data`);
    }
  }
}
