import { EventEmitter } from 'node:events';
import { type CallTimeoutError, ConnectError, UnsupportedAuthError } from './errors.js';
import { AuthType, ConnectFlags, DrvFeature } from './protocol/constants.js';
import { domainEventDecoders, type DomainEvent } from './protocol/events.js';
import {
  procedureNames,
  procedures,
  type ArgsOf,
  type ProcedureName,
  type Procedures,
  type RetOf,
  type RpcCalls,
} from './protocol/procedures.js';
import type { RemoteDomain } from './protocol/types.js';
import { RpcConnection, type CallOptions } from './rpc/connection.js';
import { Program, type PacketHeader } from './rpc/header.js';
import type { TransportCredentials } from './transport/credentials.js';
import type { Transport } from './transport/transport.js';
import { parseLibvirtUri, transportFor, type LibvirtUri } from './uri.js';
import type { Codec } from './xdr/codec.js';
import { XdrReader } from './xdr/reader.js';

/** How long `close()` waits for the daemon to acknowledge CONNECT_CLOSE. */
const CLOSE_TIMEOUT_MS = 1000;

export interface ConnectOptions {
  /** Open with VIR_CONNECT_RO (and the read-only socket for local URIs). */
  readOnly?: boolean;
  /** Deadline for reaching the daemon and completing the handshake. Default 10 s. */
  connectTimeoutMs?: number;
  /** Default deadline of each call; 0 disables. Default 60 s. */
  callTimeoutMs?: number;
  /**
   * Keepalive after the daemon agrees to it: PING when idle for `intervalMs`,
   * drop the link after `count` unanswered PINGs, so a silent peer is found
   * dead `intervalMs × (count + 1)` after its last packet. `false` disables.
   * Default 5 s × 5, libvirt's own defaults (30 s): the gateway passes its
   * configured, tighter values.
   */
  keepalive?: { intervalMs: number; count: number } | false;
  /** Calls on the wire at once on this connection; further calls wait in order (default 64). */
  maxInFlight?: number;
  /** Use this transport instead of the one the URI names (tests, custom sockets). */
  transport?: Transport;
  /** What the URI's transport authenticates with (TLS certificates, an SSH key and host keys). */
  credentials?: TransportCredentials;
}

export interface ClientFeatures {
  keepalive: boolean;
  eventCallbacks: boolean;
  typedParamString: boolean;
}

interface LibvirtClientEvents {
  /** A domain event for a callback registered with `domainEventRegisterAny`. */
  domainEvent: [event: DomainEvent];
  /** A MESSAGE this client cannot decode (logged, never fatal). */
  unknownMessage: [header: PacketHeader];
  warning: [message: string];
  /** A call of this client got no reply within its deadline (the caller got this error). */
  callTimeout: [error: CallTimeoutError];
  close: [error: Error | null];
}

/**
 * A connection to one libvirt daemon, speaking its RPC protocol directly.
 *
 * Every procedure of `protocol/procedures.ts` is a typed method of `rpc`:
 * `await client.rpc.domainLookupByName({ name: 'vm1' })` resolves to `{ dom }`.
 * Many calls may be in flight at once on one connection.
 */
export class LibvirtClient extends EventEmitter<LibvirtClientEvents> {
  readonly rpc: RpcCalls;
  private constructor(
    private readonly conn: RpcConnection,
    readonly uri: LibvirtUri,
    readonly readOnly: boolean,
    readonly transport: Transport,
    readonly features: ClientFeatures,
  ) {
    super();
    this.rpc = buildCalls(conn);
    conn.on('message', (header, payload) => this.onMessage(header, payload));
    conn.on('warning', (message) => this.emit('warning', message));
    conn.on('callTimeout', (error) => this.emit('callTimeout', error));
    conn.on('close', (error) => this.emit('close', error));
  }

  /**
   * Connects and performs libvirt's handshake: AUTH_LIST (and polkit where
   * asked), keepalive negotiation, CONNECT_OPEN with the URI's name and flags.
   */
  static async connect(uri: string, options: ConnectOptions = {}): Promise<LibvirtClient> {
    const readOnly = options.readOnly ?? false;
    const parsed = parseLibvirtUri(uri, { readOnly });
    const transport = options.transport ?? transportFor(parsed, options.credentials, { readOnly });
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    const socket = await transport.connect(connectTimeoutMs);
    const conn = new RpcConnection(socket, {
      callTimeoutMs: options.callTimeoutMs ?? 60_000,
      maxInFlight: options.maxInFlight ?? 64,
      packetPerWrite: transport.packetPerWrite ?? false,
    });
    const call = <K extends ProcedureName>(
      name: K,
      args: ArgsOf<Procedures[K]>,
    ): Promise<RetOf<Procedures[K]>> =>
      callProcedure(conn, name, args, { timeoutMs: connectTimeoutMs });
    try {
      const { types } = await call('authList', undefined);
      if (types.length > 0 && !types.includes(AuthType.NONE)) {
        if (types.includes(AuthType.POLKIT)) {
          await call('authPolkit', undefined);
        } else {
          throw new UnsupportedAuthError(
            `${transport.description} requires authentication types [${types.join(', ')}]; ` +
              'this client supports none (0) and polkit (2)',
          );
        }
      }
      const supports = async (feature: number): Promise<boolean> =>
        (await call('connectSupportsFeature', { feature })).supported === 1;
      const keepalive =
        options.keepalive !== false && (await supports(DrvFeature.PROGRAM_KEEPALIVE));
      await call('connectOpen', { name: parsed.name, flags: readOnly ? ConnectFlags.RO : 0 });
      const features: ClientFeatures = {
        keepalive,
        eventCallbacks: await supports(DrvFeature.REMOTE_EVENT_CALLBACK),
        typedParamString: await supports(DrvFeature.TYPED_PARAM_STRING),
      };
      if (keepalive) {
        const ka = options.keepalive || { intervalMs: 5000, count: 5 };
        conn.startKeepalive(ka.intervalMs, ka.count);
      }
      return new LibvirtClient(conn, parsed, readOnly, transport, features);
    } catch (err) {
      conn.destroy(err as Error);
      throw transportFailureBehind(err);
    }
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  /** Calls waiting for their reply on this connection. */
  get inFlight(): number {
    return this.conn.inFlight;
  }

  /** Calls a procedure by name with per-call options (timeout). */
  call<K extends ProcedureName>(
    name: K,
    args: ArgsOf<Procedures[K]>,
    options: CallOptions = {},
  ): Promise<RetOf<Procedures[K]>> {
    return callProcedure(this.conn, name, args, options);
  }

  /**
   * Registers for one domain event ID (DomainEventId), for one domain or all;
   * decoded events arrive as `domainEvent` with the returned callback ID.
   */
  async domainEventRegisterAny(eventId: number, dom: RemoteDomain | null = null): Promise<number> {
    const { callbackID } = await this.rpc.connectDomainEventCallbackRegisterAny({
      eventID: eventId,
      dom,
    });
    return callbackID;
  }

  async domainEventDeregisterAny(callbackId: number): Promise<void> {
    await this.rpc.connectDomainEventCallbackDeregisterAny({ callbackID: callbackId });
  }

  /**
   * CONNECT_CLOSE, then closes the socket. Safe to call twice. A daemon that
   * does not answer the CONNECT_CLOSE within CLOSE_TIMEOUT_MS is not waited
   * for any longer: a silent host must not hold a shutdown for a call timeout.
   */
  async close(): Promise<void> {
    if (this.conn.closed) return;
    try {
      await this.call('connectClose', undefined, { timeoutMs: CLOSE_TIMEOUT_MS });
    } catch {
      // The daemon may already be gone; closing our side is all that is left to do.
    }
    await this.conn.close();
  }

  /** Drops the connection at once. */
  destroy(reason: Error): void {
    this.conn.destroy(reason);
  }

  private onMessage(header: PacketHeader, payload: Buffer): void {
    const decoder =
      header.prog === Program.remote ? domainEventDecoders.get(header.proc) : undefined;
    if (!decoder) {
      this.emit('unknownMessage', header);
      return;
    }
    let event: DomainEvent | null;
    try {
      event = decoder.toEvent(decoder.codec.decode(new XdrReader(payload)));
    } catch (err) {
      this.emit(
        'warning',
        `cannot decode event procedure ${header.proc}: ${(err as Error).message}`,
      );
      return;
    }
    if (event) this.emit('domainEvent', event);
  }
}

function callProcedure<K extends ProcedureName>(
  conn: RpcConnection,
  name: K,
  args: ArgsOf<Procedures[K]>,
  options: CallOptions,
): Promise<RetOf<Procedures[K]>> {
  const p = procedures[name];
  return conn.call(
    Program.remote,
    p.proc,
    p.args as never,
    args as never,
    p.ret as Codec<unknown>,
    {
      name,
      ...options,
    },
  ) as Promise<RetOf<Procedures[K]>>;
}

function buildCalls(conn: RpcConnection): RpcCalls {
  const calls: Record<string, (args?: unknown) => Promise<unknown>> = {};
  for (const name of procedureNames.values()) {
    calls[name] = (args?: unknown) => callProcedure(conn, name, args as never, {});
  }
  return calls as RpcCalls;
}

/**
 * A handshake call interrupted because the transport itself failed (an SSH
 * channel whose remote command died, with its stderr) is a ConnectError:
 * the daemon was never reached. Other errors are returned as they are.
 */
function transportFailureBehind(err: unknown): unknown {
  let cause: unknown = err;
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    if (cause instanceof ConnectError) return cause;
    cause = cause.cause;
  }
  return err;
}
