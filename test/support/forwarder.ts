import { once } from 'node:events';
import net from 'node:net';

/** One forwarded connection: the gateway's side and libvirtd's. */
interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

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
  port = 0;

  constructor(private readonly upstreamPort = 16509) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.upstreamPort, '127.0.0.1');
      const pair = { client, upstream };
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
      } else {
        flow(pair);
      }
    });
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Stops forwarding both ways on every connection, present and future; closes nothing. */
  freeze(): void {
    this.frozen = true;
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** Forwards again, the bytes held while frozen first. */
  resume(): void {
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
