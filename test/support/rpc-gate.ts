/**
 * A loopback forwarder to libvirtd's TCP listener that reads the libvirt RPC
 * packets going through it and, when armed, stops one call of a chosen
 * procedure at a chosen point, for the tests that kill a worker there:
 *
 * - `'call'`: the call is kept from libvirtd, which never sees it (a worker
 *   killed before libvirt took the call);
 * - `'reply'`: the call goes to libvirtd, which does it and answers; the
 *   answer is kept from the caller (a worker killed after libvirt did it and
 *   before the worker could note so).
 *
 * From that point on, the connection the call came on moves no byte either
 * way (the caller waits for ever, as a worker does until it is killed); its
 * sockets close when the caller's does. Every other connection, and every
 * other call before the hold, is forwarded untouched, so the peers speak to
 * the real libvirtd. Arming is one-shot: a connection made after the hold (a
 * new worker's) goes through freely.
 */
import { once } from 'node:events';
import net from 'node:net';
import {
  MessageType,
  PREAMBLE,
  Program,
  writePreamble,
  type Packet,
  type PacketHeader,
} from '#src/libvirt/rpc/header.js';
import { PacketDecoder } from '#src/libvirt/rpc/packet-decoder.js';

export type GatePoint = 'call' | 'reply';

/** The call the gate stopped: its header, and libvirtd's reply's header when it was held at the reply. */
export interface HeldCall {
  point: GatePoint;
  call: PacketHeader;
  reply: PacketHeader | null;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  /** The call whose reply is to be held, once it went through to libvirtd. */
  awaiting: PacketHeader | null;
  /** Nothing moves any more on this link. */
  stopped: boolean;
}

function encode({ header, payload }: Packet): Buffer {
  const buf = Buffer.alloc(PREAMBLE + payload.length);
  writePreamble(buf, buf.length, header);
  payload.copy(buf, PREAMBLE);
  return buf;
}

export class RpcGate {
  private server: net.Server | null = null;
  private readonly links = new Set<Link>();
  private armed: { proc: number; point: GatePoint } | null = null;
  /** The call stopped since the last `arm`, or null (yet). */
  held: HeldCall | null = null;
  port = 0;

  constructor(private readonly upstreamPort = 16509) {}

  /** Stops the next call of remote procedure `proc` on any connection, at `point` (once). */
  arm(proc: number, point: GatePoint): void {
    this.armed = { proc, point };
    this.held = null;
  }

  async open(): Promise<void> {
    this.server = net.createServer((client) => this.link(client));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.links) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = null;
  }

  private link(client: net.Socket): void {
    const upstream = net.connect(this.upstreamPort, '127.0.0.1');
    const link: Link = { client, upstream, awaiting: null, stopped: false };
    this.links.add(link);
    for (const s of [client, upstream]) s.on('error', () => undefined);
    client.on('close', () => {
      this.links.delete(link);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());

    const fromClient = new PacketDecoder();
    client.on('data', (chunk: Buffer) => {
      for (const p of fromClient.push(chunk)) {
        if (link.stopped) return;
        const a = this.armed;
        const { prog, type, proc } = p.header;
        if (a && prog === Program.remote && type === MessageType.call && proc === a.proc) {
          this.armed = null;
          if (a.point === 'call') {
            link.stopped = true;
            this.held = { point: 'call', call: p.header, reply: null };
            return;
          }
          link.awaiting = p.header;
        }
        upstream.write(encode(p));
      }
    });

    const fromUpstream = new PacketDecoder();
    upstream.on('data', (chunk: Buffer) => {
      for (const p of fromUpstream.push(chunk)) {
        if (link.stopped) return;
        const { prog, type, serial } = p.header;
        if (
          link.awaiting !== null &&
          prog === Program.remote &&
          type === MessageType.reply &&
          serial === link.awaiting.serial
        ) {
          link.stopped = true;
          this.held = { point: 'reply', call: link.awaiting, reply: p.header };
          return;
        }
        client.write(encode(p));
      }
    });
  }
}
