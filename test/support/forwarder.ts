import { once } from 'node:events';
import net from 'node:net';

/** One forwarded connection: the gateway's side and libvirtd's. */
interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

/** libvirt's keepalive program (PING/PONG): not a call the gateway made for a request. */
const KEEPALIVE_PROGRAM = 0x6b656570;
/** A libvirt RPC message's header: length, program, version, procedure, type, serial, status. */
const HEADER_BYTES = 28;

/**
 * A TCP forwarder to libvirtd that the test can cut (a host that goes away
 * and comes back) or freeze (a host that falls silent and answers again).
 *
 * Frozen, it keeps every socket open and accepts new connections, but moves
 * no byte either way: what is sent waits in the sockets' buffers, as with a
 * libvirtd that was stopped (SIGSTOP) or a link that black-holes packets.
 * The handshake of a connection made before the freeze is real libvirtd's.
 * Resumed, the bytes held meanwhile flow on, as they would from such a host.
 */
export class Forwarder {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private readonly pairs = new Set<Pair>();
  private frozen = false;
  /** Only libvirtd's answers are held (holdReplies): what the gateway sends flows on. */
  private repliesHeld = false;
  port = 0;
  /** Connections accepted so far: each connection attempt the gateway made to this host. */
  accepted = 0;
  /**
   * RPC calls (keepalive excluded) the gateway sent that were forwarded to
   * libvirtd, counted from the plain RPC framing as they pass (TCP hosts).
   */
  calls = 0;

  constructor(private readonly upstreamPort = 16509) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.upstreamPort, '127.0.0.1');
      const pair = { client, upstream };
      this.accepted++;
      this.pairs.add(pair);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      client.on('close', () => {
        this.pairs.delete(pair);
        upstream.destroy();
      });
      upstream.on('close', () => client.destroy());
      if (this.frozen) {
        client.pause();
        upstream.pause();
      } else if (this.repliesHeld) {
        client.pipe(upstream);
        upstream.pause();
      } else {
        flow(pair);
      }
      // Counts what flows to libvirtd (a listener on an explicitly paused socket reads nothing).
      client.on(
        'data',
        countCalls(() => this.calls++),
      );
    });
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Stops forwarding both ways on every connection, present and future; closes nothing. */
  freeze(): void {
    this.frozen = true;
    this.repliesHeld = false;
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /**
   * Holds libvirtd's answers only, on every connection present and future:
   * the gateway's calls (and keepalive pings) reach libvirtd, which serves
   * them, but nothing comes back: a host that went silent mid-reply.
   */
  holdReplies(): void {
    if (this.frozen || this.repliesHeld) return;
    this.repliesHeld = true;
    for (const { client, upstream } of this.pairs) {
      upstream.unpipe(client);
      upstream.pause();
    }
  }

  /** Forwards again, the bytes held while frozen first. */
  resume(): void {
    if (this.repliesHeld) {
      this.repliesHeld = false;
      for (const { client, upstream } of this.pairs) upstream.pipe(client);
      return;
    }
    if (!this.frozen) return; // flowing already: piping again would send every byte twice
    this.frozen = false;
    for (const pair of this.pairs) flow(pair);
  }

  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = null;
  }
}

function flow({ client, upstream }: Pair): void {
  client.pipe(upstream);
  upstream.pipe(client);
}

/** libvirt's largest message (VIR_NET_MESSAGE_MAX plus its length word). */
const MAX_MESSAGE_BYTES = 32 * 1024 * 1024 + 4;

/**
 * A 'data' listener that calls `onCall` for each RPC call (not keepalive) in
 * the byte stream: it keeps a message's header only and skips its body, and
 * gives up on a stream that is not libvirt's plain framing (TLS, SSH).
 */
function countCalls(onCall: () => void): (chunk: Buffer) => void {
  let header: Buffer = Buffer.alloc(0);
  let skip = 0;
  let plain = true;
  return (chunk) => {
    let at = 0;
    while (plain && at < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - at);
        skip -= n;
        at += n;
        continue;
      }
      const need = HEADER_BYTES - header.length;
      header = Buffer.concat([header, chunk.subarray(at, at + need)]);
      at += Math.min(need, chunk.length - at);
      if (header.length < HEADER_BYTES) return;
      const length = header.readUInt32BE(0);
      if (length < HEADER_BYTES || length > MAX_MESSAGE_BYTES) {
        plain = false;
        return;
      }
      if (header.readUInt32BE(16) === 0 && header.readUInt32BE(4) !== KEEPALIVE_PROGRAM) onCall();
      skip = length - HEADER_BYTES;
      header = Buffer.alloc(0);
    }
  };
}
