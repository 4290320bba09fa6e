import { LENGTH_WORD, PACKET_MAX, PREAMBLE, readHeader, type Packet } from './header.js';
import { ProtocolError } from '../errors.js';

/**
 * Splits a byte stream into libvirt RPC packets, whatever the chunking: a
 * packet may arrive in one chunk, byte by byte, or several packets in one.
 * A length outside [28, PACKET_MAX] is a protocol error: the stream cannot be
 * resynchronised after it, so the caller must drop the connection.
 */
export class PacketDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: ProtocolError | null = null;

  /** Feeds bytes; returns the packets they complete, in order. */
  push(chunk: Buffer): Packet[] {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Packet[] = [];
    for (;;) {
      if (this.buffered < LENGTH_WORD) break;
      const length = this.peekLength();
      if (length < PREAMBLE || length > PACKET_MAX) {
        this.failed = new ProtocolError(
          length < PREAMBLE
            ? `packet length ${length} is shorter than the ${PREAMBLE}-byte header`
            : `packet length ${length} exceeds the protocol maximum of ${PACKET_MAX} bytes`,
        );
        this.chunks = [];
        this.buffered = 0;
        throw this.failed;
      }
      if (this.buffered < length) break;
      const bytes = this.take(length);
      out.push({ header: readHeader(bytes), payload: bytes.subarray(PREAMBLE) });
    }
    return out;
  }

  /** Bytes held that do not yet form a whole packet. */
  get pending(): number {
    return this.buffered;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= LENGTH_WORD) return first.readUInt32BE(0);
    const head = Buffer.alloc(LENGTH_WORD);
    let filled = 0;
    for (const c of this.chunks) {
      const n = Math.min(c.length, LENGTH_WORD - filled);
      c.copy(head, filled, 0, n);
      filled += n;
      if (filled === LENGTH_WORD) break;
    }
    return head.readUInt32BE(0);
  }

  /** Removes n bytes from the front, copying only when they span chunks. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    this.buffered -= n;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, filled, 0, want);
        this.chunks[0] = c.subarray(want);
        filled += want;
      }
    }
    return out;
  }
}
