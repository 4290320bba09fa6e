import net from 'node:net';
import type { Duplex } from 'node:stream';
import { ConnectError } from '../errors.js';

/**
 * How bytes reach the daemon. The RPC layer only needs a connected duplex
 * stream, so UNIX sockets, TCP and (later) TLS are interchangeable here.
 */
export interface Transport {
  /** For logs and errors, e.g. `unix:/run/libvirt/libvirt-sock` or `tcp:127.0.0.1:16509`. */
  readonly description: string;
  /** Whether each RPC packet must go in a write of its own (RpcConnectionOptions.packetPerWrite). */
  readonly packetPerWrite?: boolean;
  connect(timeoutMs: number): Promise<Duplex>;
}

function connectSocket(
  description: string,
  options: net.NetConnectOpts,
  timeoutMs: number,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(options);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectError(`timed out after ${timeoutMs} ms connecting to ${description}`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        new ConnectError(`cannot connect to ${description}: ${err.code ?? err.message}`, {
          cause: err,
        }),
      );
    });
  });
}

export class UnixTransport implements Transport {
  readonly description: string;

  constructor(readonly path: string) {
    this.description = `unix:${path}`;
  }

  connect(timeoutMs: number): Promise<Duplex> {
    return connectSocket(this.description, { path: this.path }, timeoutMs);
  }
}

export class TcpTransport implements Transport {
  readonly description: string;

  constructor(
    readonly host: string,
    readonly port: number,
  ) {
    this.description = `tcp:${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  async connect(timeoutMs: number): Promise<Duplex> {
    const socket = await connectSocket(
      this.description,
      { host: this.host, port: this.port },
      timeoutMs,
    );
    socket.setKeepAlive(true, 30_000);
    return socket;
  }
}
