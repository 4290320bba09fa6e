/**
 * libvirt's RPC framing (src/rpc/virnetprotocol.x): every packet is a 4-byte
 * big-endian length that counts itself, a 24-byte header of six XDR words,
 * then the payload.
 */

export const LENGTH_WORD = 4;
export const HEADER_SIZE = 24;
export const PREAMBLE = LENGTH_WORD + HEADER_SIZE;

/**
 * VIR_NET_MESSAGE_MAX in current libvirt (32 MiB, excluding the length word).
 * Older daemons used 16 MiB; accepting the larger value is safe for both.
 */
export const MESSAGE_MAX = 33_554_432;
export const PACKET_MAX = MESSAGE_MAX + LENGTH_WORD;

export const MessageType = {
  call: 0,
  reply: 1,
  message: 2,
  stream: 3,
  callWithFds: 4,
  replyWithFds: 5,
  streamHole: 6,
} as const;

export const MessageStatus = {
  ok: 0,
  error: 1,
  continue: 2,
} as const;

export const Program = {
  remote: 0x20008086,
  qemu: 0x20008087,
  keepalive: 0x6b656570,
} as const;

export const PROGRAM_VERSION = 1;

export const KeepaliveProc = {
  ping: 1,
  pong: 2,
} as const;

export interface PacketHeader {
  prog: number;
  vers: number;
  proc: number;
  type: number;
  serial: number;
  status: number;
}

/** Writes the length word and the header at the start of `buf` (which must hold PREAMBLE bytes). */
export function writePreamble(buf: Buffer, totalLength: number, h: PacketHeader): void {
  buf.writeUInt32BE(totalLength, 0);
  buf.writeUInt32BE(h.prog, 4);
  buf.writeUInt32BE(h.vers, 8);
  buf.writeInt32BE(h.proc, 12);
  buf.writeInt32BE(h.type, 16);
  buf.writeUInt32BE(h.serial, 20);
  buf.writeInt32BE(h.status, 24);
}

/** Reads the header of a packet whose bytes start at `offset` (at its length word). */
export function readHeader(buf: Buffer, offset = 0): PacketHeader {
  return {
    prog: buf.readUInt32BE(offset + 4),
    vers: buf.readUInt32BE(offset + 8),
    proc: buf.readInt32BE(offset + 12),
    type: buf.readInt32BE(offset + 16),
    serial: buf.readUInt32BE(offset + 20),
    status: buf.readInt32BE(offset + 24),
  };
}

/** A whole packet: header, and its payload as a view into the received bytes. */
export interface Packet {
  header: PacketHeader;
  payload: Buffer;
}

/** Builds a packet with an empty payload (keepalive PING/PONG, stream end). */
export function emptyPacket(h: PacketHeader): Buffer {
  const buf = Buffer.allocUnsafe(PREAMBLE);
  writePreamble(buf, PREAMBLE, h);
  return buf;
}
