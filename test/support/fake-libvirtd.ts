/**
 * A scripted stand-in for libvirtd, for the cases a real daemon cannot
 * produce: garbage bytes, oversized lengths, replies to unknown serials, a
 * peer that dies mid-reply or never answers. Each test scripts what the
 * server does with each incoming call.
 */
import net from 'node:net';
import { once } from 'node:events';
import { PacketDecoder } from '#src/libvirt/rpc/packet-decoder.js';
import {
  MessageStatus,
  MessageType,
  PREAMBLE,
  writePreamble,
  type PacketHeader,
  type Packet,
} from '#src/libvirt/rpc/header.js';

export type CallHandler = (call: Packet, peer: FakePeer) => void;

export class FakePeer {
  constructor(readonly socket: net.Socket) {}

  /** Sends a packet with the given header fields and payload. */
  send(header: PacketHeader, payload: Buffer = Buffer.alloc(0)): void {
    this.socket.write(packet(header, payload));
  }

  /** Replies OK to a call with a raw XDR payload. */
  reply(
    call: Packet,
    payload: Buffer = Buffer.alloc(0),
    overrides: Partial<PacketHeader> = {},
  ): void {
    this.send(
      { ...call.header, type: MessageType.reply, status: MessageStatus.ok, ...overrides },
      payload,
    );
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }
}

export function packet(header: PacketHeader, payload: Buffer): Buffer {
  const buf = Buffer.alloc(PREAMBLE + payload.length);
  writePreamble(buf, buf.length, header);
  payload.copy(buf, PREAMBLE);
  return buf;
}

interface Watcher {
  from: number;
  match(p: Packet): boolean;
  resolve(p: Packet): void;
}

export class FakeLibvirtd {
  private readonly server: net.Server;
  readonly calls: Packet[] = [];
  readonly peers: FakePeer[] = [];
  private watchers: Watcher[] = [];

  private constructor(handler: CallHandler) {
    this.server = net.createServer((socket) => {
      const peer = new FakePeer(socket);
      this.peers.push(peer);
      const decoder = new PacketDecoder();
      socket.on('error', () => undefined);
      socket.on('data', (chunk) => {
        for (const p of decoder.push(chunk)) {
          this.calls.push(p);
          handler(p, peer);
          const at = this.calls.length - 1;
          this.watchers = this.watchers.filter((w) =>
            at >= w.from && w.match(p) ? (w.resolve(p), false) : true,
          );
        }
      });
    });
  }

  static async start(handler: CallHandler): Promise<FakeLibvirtd> {
    const fake = new FakeLibvirtd(handler);
    fake.server.listen(0, '127.0.0.1');
    await once(fake.server, 'listening');
    return fake;
  }

  /**
   * The first packet received at index `from` of `calls` or later that `match`
   * accepts, already here or when it comes (after the handler has seen it).
   * Driven by the socket's data, not by polling: it works on a mock clock, where
   * waitFor cannot run. What a client wrote before that packet has arrived too
   * (one TCP stream, in order), which is how a test knows that something the
   * client would have sent by then did not come.
   */
  received(match: (p: Packet) => boolean = () => true, from = 0): Promise<Packet> {
    const found = this.calls.slice(from).find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.watchers.push({ from, match, resolve }));
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const p of this.peers) p.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
