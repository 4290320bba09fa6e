import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  CallTimeoutError,
  ConnectionClosedError,
  KeepaliveTimeoutError,
  LibvirtError,
  ProtocolError,
} from '../errors.js';
import { remoteError } from '../protocol/types.js';
import type { Codec } from '../xdr/codec.js';
import { XdrReader } from '../xdr/reader.js';
import { XdrWriter } from '../xdr/writer.js';
import {
  KeepaliveProc,
  MessageStatus,
  MessageType,
  PACKET_MAX,
  PREAMBLE,
  PROGRAM_VERSION,
  Program,
  emptyPacket,
  writePreamble,
  type Packet,
  type PacketHeader,
} from './header.js';
import { Deadlines } from './deadlines.js';
import { PacketDecoder } from './packet-decoder.js';

export interface CallOptions {
  /** Milliseconds to wait for the reply; 0 waits forever. Defaults to the connection's. */
  timeoutMs?: number;
  /** Name for errors and logs. */
  name?: string;
}

export interface RpcConnectionOptions {
  /** Default per-call deadline in milliseconds; 0 disables it. */
  callTimeoutMs?: number;
  /**
   * Calls on the wire at once; further calls wait in the client, in order.
   * libvirtd runs only a few calls per connection at a time (max_client_requests,
   * 5 by default) and leaves the rest in its socket buffer, so a window keeps
   * memory bounded at no cost in throughput. Default 64.
   */
  maxInFlight?: number;
  /**
   * Each packet in a write of its own, never two in one. Over TLS a write is a
   * record, and libvirtd decrypts a record whole but reads only the packet it
   * is at: a second packet in the same record waits, unnoticed, until the
   * socket has something new (seen with libvirt 9.0: two pipelined calls in one
   * record, the second answered seconds later, at the next keepalive).
   */
  packetPerWrite?: boolean;
}

interface PendingCall {
  ret: Codec<unknown>;
  name: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
  /** The encoded CALL while it waits for a place in the window; null once sent. */
  unsent: Buffer | null;
}

interface RpcConnectionEvents {
  /** An unsolicited MESSAGE packet (an event), with its header and raw payload. */
  message: [header: PacketHeader, payload: Buffer];
  /** Something odd but survivable (a late reply to a timed-out call, an unsupported packet). */
  warning: [message: string];
  /**
   * A call got no reply within its deadline (it was rejected with this
   * error): the link stays open, but its owner may judge the peer stuck.
   */
  callTimeout: [error: CallTimeoutError];
  /** The connection is gone; `error` is null for a close this side asked for. */
  close: [error: Error | null];
}

/** Replies to calls that timed out may still arrive; remember that many serials to drop them quietly. */
const ABANDONED_SERIALS_MAX = 4096;

/**
 * One libvirt RPC connection: writes CALL packets, matches REPLY packets to
 * their callers by serial (libvirt answers out of order), hands MESSAGE
 * packets to listeners, answers keepalive PINGs, and rejects every pending
 * call with a clear error when the link fails. Nothing here blocks the reader:
 * replies resolve promises and events are emitted synchronously.
 */
export class RpcConnection extends EventEmitter<RpcConnectionEvents> {
  private readonly decoder = new PacketDecoder();
  private readonly pending = new Map<number, PendingCall>();
  private readonly abandoned = new Set<number>();
  private nextSerial = 1;
  private outQueue: Buffer[] = [];
  private flushScheduled = false;
  private readonly packetPerWrite: boolean;
  private oneByOne: Buffer[] = [];
  private oneByOneWriting = false;
  private closedWith: Error | null | undefined = undefined;
  private lastReceived = Date.now();
  private unansweredPings = 0;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private keepalive: { intervalMs: number; count: number } | null = null;
  private readonly callTimeoutMs: number;
  private readonly maxInFlight: number;
  /** Calls on the wire (sent, not yet answered or expired). */
  private sent = 0;
  /** Serials of calls waiting for a place in the window, oldest first from `waitingHead`. */
  private waiting: number[] = [];
  private waitingHead = 0;
  private readonly deadlines = new Deadlines(
    (serial) => this.pending.has(serial),
    (serial, timeoutMs) => this.expire(serial, timeoutMs),
  );

  constructor(
    private readonly socket: Duplex,
    options: RpcConnectionOptions = {},
  ) {
    super();
    this.callTimeoutMs = options.callTimeoutMs ?? 60_000;
    this.maxInFlight = options.maxInFlight ?? 64;
    this.packetPerWrite = options.packetPerWrite ?? false;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) =>
      this.fail(new ConnectionClosedError(`connection error: ${err.message}`, { cause: err })),
    );
    socket.on('close', () => {
      const partial = this.decoder.pending;
      this.fail(
        new ConnectionClosedError(
          partial > 0
            ? `connection closed by peer in the middle of a packet (${partial} bytes received of it)`
            : 'connection closed by peer',
        ),
      );
    });
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Calls waiting for a reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends a CALL and resolves with the decoded reply (or rejects with LibvirtError and friends). */
  call<A, R>(
    prog: number,
    proc: number,
    args: Codec<A>,
    value: A,
    ret: Codec<R>,
    options: CallOptions = {},
  ): Promise<R> {
    const name = options.name ?? `procedure ${proc}`;
    if (this.closedWith !== undefined) {
      return Promise.reject(
        new ConnectionClosedError(`cannot call ${name}: connection is closed`, {
          cause: this.closedWith ?? undefined,
        }),
      );
    }
    const serial = this.takeSerial();
    let packet: Buffer;
    try {
      packet = encodePacket(
        {
          prog,
          vers: PROGRAM_VERSION,
          proc,
          type: MessageType.call,
          serial,
          status: MessageStatus.ok,
        },
        args,
        value,
      );
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return new Promise<R>((resolve, reject) => {
      const entry: PendingCall = {
        ret: ret as Codec<unknown>,
        name,
        resolve: resolve as (v: unknown) => void,
        reject,
        unsent: packet,
      };
      this.pending.set(serial, entry);
      const timeoutMs = options.timeoutMs ?? this.callTimeoutMs;
      if (timeoutMs > 0) this.deadlines.add(serial, timeoutMs, this.pending.size);
      if (this.sent < this.maxInFlight) this.send(entry);
      else this.waiting.push(serial);
    });
  }

  /**
   * Keepalive (src/rpc/virkeepalive.c): once nothing has been received for
   * `intervalMs`, send a PING, then one more every `intervalMs` while nothing
   * comes; when `count` PINGs went unanswered and another `intervalMs` has
   * passed, the peer is considered dead: the connection is dropped and every
   * pending call rejected with KeepaliveTimeoutError. So a peer that falls
   * silent is found dead `intervalMs × (count + 1)` after the last packet it
   * sent (plus timer latency), whatever the calls' own deadlines: the timer is
   * armed for the exact moment the next step is due, not polled.
   */
  startKeepalive(intervalMs: number, count: number): void {
    this.stopKeepalive();
    this.keepalive = { intervalMs, count };
    this.unansweredPings = 0;
    this.armKeepalive();
  }

  /** The bound a keepalive of `intervalMs` × `count` puts on a silent peer (see startKeepalive). */
  static keepaliveBoundMs(intervalMs: number, count: number): number {
    return intervalMs * (count + 1);
  }

  /** Closes the socket; pending calls are rejected with ConnectionClosedError. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        this.fail(null);
        resolve();
        return;
      }
      this.socket.once('close', () => resolve());
      this.fail(null);
      this.socket.end();
      // A peer that never acknowledges the FIN must not keep us waiting.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }

  /** Drops the connection at once with the given reason. */
  destroy(reason: Error): void {
    this.fail(reason);
    this.socket.destroy();
  }

  private takeSerial(): number {
    const serial = this.nextSerial;
    this.nextSerial = this.nextSerial >= 0xffffffff ? 1 : this.nextSerial + 1;
    return serial;
  }

  private send(call: PendingCall): void {
    this.sent++;
    this.enqueue(call.unsent!);
    call.unsent = null;
  }

  /** A call left the wire (answered or given up): let the next waiting one go. */
  private release(): void {
    this.sent--;
    while (this.sent < this.maxInFlight && this.waitingHead < this.waiting.length) {
      const next = this.pending.get(this.waiting[this.waitingHead++]!);
      if (next?.unsent) this.send(next); // an expired one is no longer pending: skipped
    }
    if (this.waitingHead === this.waiting.length) {
      this.waiting = [];
      this.waitingHead = 0;
    } else if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
  }

  private expire(serial: number, timeoutMs: number): void {
    const call = this.pending.get(serial)!;
    this.pending.delete(serial);
    if (!call.unsent) {
      this.rememberAbandoned(serial);
      this.release();
    }
    // A call that never left this side stays in `waiting` and is skipped there.
    const error = new CallTimeoutError(`${call.name} got no reply within ${timeoutMs} ms`);
    call.reject(error);
    this.emit('callTimeout', error);
  }

  private rememberAbandoned(serial: number): void {
    if (this.abandoned.size >= ABANDONED_SERIALS_MAX) {
      const oldest = this.abandoned.values().next().value;
      if (oldest !== undefined) this.abandoned.delete(oldest);
    }
    this.abandoned.add(serial);
  }

  private sendKeepalive(proc: number): void {
    this.enqueue(
      emptyPacket({
        prog: Program.keepalive,
        vers: PROGRAM_VERSION,
        proc,
        type: MessageType.message,
        serial: 0,
        status: MessageStatus.ok,
      }),
    );
  }

  /** Batches the packets written in one tick into one write. */
  private enqueue(packet: Buffer): void {
    this.outQueue.push(packet);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      const queue = this.outQueue;
      this.outQueue = [];
      if (this.closedWith !== undefined || this.socket.destroyed) return;
      if (this.packetPerWrite) {
        this.writeOneByOne(queue);
        return;
      }
      // Packets are small: one copy into one write is cheaper than a writev of many.
      this.socket.write(queue.length === 1 ? queue[0]! : Buffer.concat(queue));
    });
  }

  /**
   * Writes packets one at a time, the next once the last is written: packets
   * written while another is under way would be gathered by the stream into
   * one write (writev), and so into one TLS record.
   */
  private writeOneByOne(packets: Buffer[]): void {
    this.oneByOne.push(...packets);
    if (this.oneByOneWriting) return;
    const next = (): void => {
      const p = this.oneByOne.shift();
      if (p === undefined || this.closedWith !== undefined || this.socket.destroyed) {
        this.oneByOneWriting = false;
        return;
      }
      this.socket.write(p, next);
    };
    this.oneByOneWriting = true;
    next();
  }

  private onData(chunk: Buffer): void {
    let packets: Packet[];
    try {
      packets = this.decoder.push(chunk);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    if (packets.length === 0) return;
    this.lastReceived = Date.now();
    this.unansweredPings = 0;
    for (const packet of packets) {
      if (this.closedWith !== undefined) return;
      this.dispatch(packet);
    }
  }

  private dispatch({ header, payload }: Packet): void {
    if (header.prog === Program.keepalive) {
      if (header.proc === KeepaliveProc.ping) this.sendKeepalive(KeepaliveProc.pong);
      return;
    }
    switch (header.type) {
      case MessageType.reply:
        this.onReply(header, payload);
        return;
      case MessageType.message:
        try {
          this.emit('message', header, payload);
        } catch (err) {
          this.emit('warning', `event listener threw: ${(err as Error).message}`);
        }
        return;
      case MessageType.stream:
      case MessageType.streamHole:
      case MessageType.replyWithFds:
        this.emit(
          'warning',
          `ignored packet type ${header.type} for serial ${header.serial} (streams and fd passing are not supported)`,
        );
        return;
      default:
        this.destroy(new ProtocolError(`unexpected packet type ${header.type} from the server`));
    }
  }

  private onReply(header: PacketHeader, payload: Buffer): void {
    const call = this.pending.get(header.serial);
    if (!call) {
      if (this.abandoned.delete(header.serial)) {
        this.emit('warning', `dropped a late reply to timed-out call serial ${header.serial}`);
        return;
      }
      this.destroy(
        new ProtocolError(`reply for unknown serial ${header.serial} (procedure ${header.proc})`),
      );
      return;
    }
    this.pending.delete(header.serial);
    this.release();
    try {
      const reader = new XdrReader(payload);
      if (header.status === MessageStatus.ok) {
        const value = call.ret.decode(reader);
        reader.assertEnd();
        call.resolve(value);
      } else if (header.status === MessageStatus.error) {
        call.reject(new LibvirtError(remoteError.decode(reader), call.name));
      } else {
        call.reject(
          new ProtocolError(`reply to ${call.name} has unexpected status ${header.status}`),
        );
      }
    } catch (err) {
      call.reject(
        new ProtocolError(`cannot decode reply to ${call.name}: ${(err as Error).message}`, {
          cause: err,
        }),
      );
    }
  }

  /** Ends the connection once: rejects every pending call and tells listeners. */
  private fail(error: Error | null): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = error;
    this.stopKeepalive();
    const reason = error ?? new ConnectionClosedError('connection closed');
    this.deadlines.clear();
    for (const call of this.pending.values()) {
      call.reject(
        reason instanceof ConnectionClosedError
          ? new ConnectionClosedError(`${call.name} interrupted: ${reason.message}`, {
              cause: reason,
            })
          : reason,
      );
    }
    this.pending.clear();
    this.waiting = [];
    this.waitingHead = 0;
    this.abandoned.clear();
    this.outQueue = [];
    this.oneByOne = [];
    this.emit('close', error);
  }

  private stopKeepalive(): void {
    if (this.keepaliveTimer) clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
  }

  /**
   * Arms the keepalive timer for when the next step is due: the next PING, or
   * the verdict once `count` went unanswered. Data received meanwhile moves
   * that moment (`lastReceived`, `unansweredPings`), which the timer reads
   * when it fires, so a busy link costs no timer per packet.
   */
  private armKeepalive(): void {
    const ka = this.keepalive;
    if (!ka || this.closedWith !== undefined) return;
    const due = this.lastReceived + ka.intervalMs * (this.unansweredPings + 1);
    this.keepaliveTimer = setTimeout(() => this.onKeepaliveTimer(), Math.max(0, due - Date.now()));
    this.keepaliveTimer.unref();
  }

  private onKeepaliveTimer(): void {
    this.keepaliveTimer = undefined;
    const ka = this.keepalive;
    if (!ka || this.closedWith !== undefined) return;
    const due = this.lastReceived + ka.intervalMs * (this.unansweredPings + 1);
    if (Date.now() < due) {
      this.armKeepalive(); // something arrived since: not due yet
      return;
    }
    if (this.unansweredPings >= ka.count) {
      const silentMs = Date.now() - this.lastReceived;
      this.destroy(
        new KeepaliveTimeoutError(
          `peer did not answer ${ka.count} keepalive pings ${ka.intervalMs} ms apart ` +
            `(silent for ${silentMs} ms); connection dropped`,
        ),
      );
      return;
    }
    this.unansweredPings++;
    this.sendKeepalive(KeepaliveProc.ping);
    this.armKeepalive();
  }
}

/** Encodes a whole packet: length word and header patched in front of the XDR payload. */
export function encodePacket<A>(header: PacketHeader, args: Codec<A>, value: A): Buffer {
  const w = new XdrWriter(PREAMBLE + 64);
  w.reserve(PREAMBLE);
  args.encode(w, value);
  const buf = w.finish();
  if (buf.length > PACKET_MAX) {
    throw new ProtocolError(
      `call of ${buf.length} bytes exceeds the protocol maximum of ${PACKET_MAX}`,
    );
  }
  writePreamble(buf, buf.length, header);
  return buf;
}
