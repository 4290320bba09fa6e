/**
 * How an RpcConnection dispatches what the peer sends (src/libvirt/rpc/connection.ts):
 * replies by serial and status, events, keepalive, the packet types it does
 * not support, and what it writes for each call. The peer is scripted
 * (test/support/fake-libvirtd.ts) because these are the packets a real
 * libvirtd does not send on purpose: stream packets unasked, replies with an
 * unknown status or a payload that does not decode, a pong out of the blue.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { FakeLibvirtd, packet, type FakePeer } from '../support/fake-libvirtd.js';
import {
  CallTimeoutError,
  ConnectionClosedError,
  LibvirtError,
  ProtocolError,
  RpcConnection,
  TcpTransport,
  procedures,
} from '#src/libvirt/index.js';
import { encodeToBuffer, string, uint } from '#src/libvirt/xdr/codec.js';
import { XdrError } from '#src/libvirt/xdr/xdr-error.js';
import { remoteError } from '#src/libvirt/protocol/types.js';
import { encodePacket } from '#src/libvirt/rpc/connection.js';
import {
  MessageStatus,
  MessageType,
  PACKET_MAX,
  PREAMBLE,
  Program,
  readHeader,
  type Packet,
  type PacketHeader,
} from '#src/libvirt/rpc/header.js';
import { waitFor } from '../support/wait.js';

const libVersion = procedures.connectGetLibVersion;
const libVersionReply = encodeToBuffer(libVersion.ret, { libVer: 9_000_000n });

/** A fake whose calls wait in `held` until the test answers them. */
async function fakeHolding(): Promise<{ fake: FakeLibvirtd; held: [Packet, FakePeer][] }> {
  const held: [Packet, FakePeer][] = [];
  const fake = await FakeLibvirtd.start((call, peer) => {
    if (call.header.prog !== Program.keepalive) held.push([call, peer]);
  });
  return { fake, held };
}

async function connect(fake: FakeLibvirtd, options = {}): Promise<RpcConnection> {
  const socket = await new TcpTransport('127.0.0.1', fake.port).connect(5000);
  return new RpcConnection(socket, { callTimeoutMs: 0, ...options });
}

function getLibVersion(conn: RpcConnection, name = 'connectGetLibVersion') {
  return conn.call(Program.remote, libVersion.proc, libVersion.args, undefined, libVersion.ret, {
    name,
  });
}

function header(over: Partial<PacketHeader>): PacketHeader {
  return {
    prog: Program.remote,
    vers: 1,
    proc: 0,
    type: MessageType.message,
    serial: 0,
    status: MessageStatus.ok,
    ...over,
  };
}

async function withConn(
  body: (conn: RpcConnection, held: [Packet, FakePeer][], fake: FakeLibvirtd) => Promise<void>,
  options = {},
): Promise<void> {
  const { fake, held } = await fakeHolding();
  const conn = await connect(fake, options);
  try {
    await body(conn, held, fake);
  } finally {
    await conn.close();
    await fake.stop();
  }
}

/** The next call the fake got, once it has it. */
async function nextCall(held: [Packet, FakePeer][], n: number): Promise<[Packet, FakePeer]> {
  await waitFor(() => held.length >= n, `call ${n} reached the peer`, 10_000);
  return held[n - 1]!;
}

describe('RPC dispatch', () => {
  it('writes each call with its program, procedure and a serial counted from 1', () =>
    withConn(async (conn, held) => {
      const a = getLibVersion(conn);
      const b = getLibVersion(conn);
      const [first, peer] = await nextCall(held, 1);
      const [second] = await nextCall(held, 2);
      assert.deepEqual(first.header, {
        prog: Program.remote,
        vers: 1,
        proc: libVersion.proc,
        type: MessageType.call,
        serial: 1,
        status: MessageStatus.ok,
      });
      assert.equal(second.header.serial, 2);
      assert.equal(first.payload.length, 0);
      peer.reply(second, libVersionReply);
      peer.reply(first, encodeToBuffer(libVersion.ret, { libVer: 1n }));
      assert.deepEqual(await Promise.all([a, b]), [{ libVer: 1n }, { libVer: 9_000_000n }]);
      assert.equal(conn.inFlight, 0);
    }));

  it('encodes the arguments after the header, the length word counting the whole packet', () => {
    const args = encodePacket(
      header({ proc: 7, type: MessageType.call, serial: 9 }),
      string(64),
      'hi',
    );
    assert.equal(args.readUInt32BE(0), args.length);
    assert.equal(args.length, PREAMBLE + 8);
    assert.deepEqual(readHeader(args), header({ proc: 7, type: MessageType.call, serial: 9 }));
    assert.deepEqual(args.subarray(PREAMBLE), Buffer.from('0000000268690000', 'hex'));
    const big = {
      encode: (w: { reserve(n: number): void }) => w.reserve(PACKET_MAX - PREAMBLE + 1),
      decode: () => undefined,
    };
    assert.throws(
      () => encodePacket(header({}), big as never, undefined),
      (e: Error) => e instanceof ProtocolError && /exceeds the protocol maximum/.test(e.message),
    );
    const fits = {
      encode: (w: { reserve(n: number): void }) => w.reserve(PACKET_MAX - PREAMBLE),
      decode: () => undefined,
    };
    assert.equal(encodePacket(header({}), fits as never, undefined).length, PACKET_MAX);
  });

  it('refuses a call whose arguments do not encode, and goes on with the next', () =>
    withConn(async (conn, held) => {
      await assert.rejects(
        conn.call(Program.remote, 1, uint, -1, uint, { name: 'bad' }),
        (e: Error) => e instanceof XdrError,
      );
      const next = getLibVersion(conn);
      const [call, peer] = await nextCall(held, 1);
      peer.reply(call, libVersionReply);
      assert.equal((await next).libVer, 9_000_000n);
    }));

  it('turns a reply with status error into a LibvirtError, and one with another status into a ProtocolError', () =>
    withConn(async (conn, held) => {
      const failed = getLibVersion(conn);
      const odd = getLibVersion(conn, 'oddStatus');
      const [c1, peer] = await nextCall(held, 1);
      const [c2] = await nextCall(held, 2);
      const err = encodeToBuffer(remoteError, {
        code: 42,
        domain: 10,
        message: 'no domain with matching name',
        level: 2,
        dom: null,
        str1: null,
        str2: null,
        str3: null,
        int1: 0,
        int2: 0,
        net: null,
      });
      peer.reply(c1, err, { status: MessageStatus.error });
      peer.reply(c2, libVersionReply, { status: MessageStatus.continue });
      await assert.rejects(
        failed,
        (e: Error) => e instanceof LibvirtError && e.message.includes('no domain'),
      );
      await assert.rejects(
        odd,
        (e: Error) =>
          e instanceof ProtocolError &&
          /reply to oddStatus has unexpected status 2/.test(e.message),
      );
      assert.equal(conn.closed, false);
    }));

  it('rejects a reply whose payload does not decode, or has bytes left over, and stays open', () =>
    withConn(async (conn, held) => {
      const short = getLibVersion(conn, 'short');
      const long = getLibVersion(conn, 'long');
      const badError = getLibVersion(conn, 'badError');
      const [c1, peer] = await nextCall(held, 1);
      const [c2] = await nextCall(held, 2);
      const [c3] = await nextCall(held, 3);
      peer.reply(c1, libVersionReply.subarray(0, 4));
      peer.reply(c2, Buffer.concat([libVersionReply, Buffer.alloc(4)]));
      peer.reply(c3, Buffer.alloc(4), { status: MessageStatus.error });
      for (const [p, name] of [
        [short, 'short'],
        [long, 'long'],
        [badError, 'badError'],
      ] as const) {
        await assert.rejects(p, (e: Error) => {
          assert.ok(e instanceof ProtocolError, `${name}: ${e.name}`);
          assert.match(e.message, new RegExp(`^cannot decode reply to ${name}: `));
          assert.ok(e.cause instanceof XdrError);
          return true;
        });
      }
      assert.equal(conn.closed, false);
      const next = getLibVersion(conn);
      const [c4] = await nextCall(held, 4);
      peer.reply(c4, libVersionReply);
      assert.equal((await next).libVer, 9_000_000n);
    }));

  it('hands events to listeners, with their header and payload, and survives a listener that throws', () =>
    withConn(async (conn, held) => {
      const events: [PacketHeader, string][] = [];
      const warnings: string[] = [];
      conn.on('warning', (w) => warnings.push(w));
      conn.on('message', (h, payload) => {
        events.push([h, payload.toString('hex')]);
        if (h.proc === 13) throw new Error('listener broke');
      });
      const call = getLibVersion(conn);
      const [c1, peer] = await nextCall(held, 1);
      peer.send(header({ proc: 12, serial: 5 }), Buffer.from('00000001', 'hex'));
      peer.send(header({ proc: 13 }));
      peer.reply(c1, libVersionReply);
      assert.equal((await call).libVer, 9_000_000n);
      assert.deepEqual(events, [
        [header({ proc: 12, serial: 5 }), '00000001'],
        [header({ proc: 13 }), ''],
      ]);
      assert.deepEqual(warnings, ['event listener threw: listener broke']);
    }));

  it('ignores stream and fd-passing packets with a warning each, and drops the link on any other type', () =>
    withConn(async (conn, held) => {
      const warnings: string[] = [];
      conn.on('warning', (w) => warnings.push(w));
      const call = getLibVersion(conn);
      const [c1, peer] = await nextCall(held, 1);
      for (const type of [MessageType.stream, MessageType.streamHole, MessageType.replyWithFds]) {
        peer.send(header({ type, serial: 1 }));
      }
      peer.reply(c1, libVersionReply);
      assert.equal((await call).libVer, 9_000_000n);
      assert.deepEqual(warnings, [
        'ignored packet type 3 for serial 1 (streams and fd passing are not supported)',
        'ignored packet type 6 for serial 1 (streams and fd passing are not supported)',
        'ignored packet type 5 for serial 1 (streams and fd passing are not supported)',
      ]);
      for (const type of [MessageType.call, MessageType.callWithFds, 7]) {
        const { fake, held: h } = await fakeHolding();
        const c = await connect(fake);
        const pending = getLibVersion(c);
        const [, p] = await nextCall(h, 1);
        const closedWith = once(c, 'close');
        p.send(header({ type, serial: 1 }));
        await assert.rejects(
          pending,
          (e: Error) =>
            e instanceof ProtocolError &&
            e.message === `unexpected packet type ${type} from the server`,
        );
        const [reason] = (await closedWith) as [Error];
        assert.ok(reason instanceof ProtocolError);
        assert.equal(c.closed, true);
        await fake.stop();
      }
    }));

  it('stops at the packet that ends the connection: a reply behind it in the same chunk is not delivered', () =>
    withConn(async (conn, held) => {
      const first = getLibVersion(conn);
      const second = getLibVersion(conn);
      const [c1, peer] = await nextCall(held, 1);
      const [c2] = await nextCall(held, 2);
      const reply = (c: Packet) =>
        packet({ ...c.header, type: MessageType.reply, status: MessageStatus.ok }, libVersionReply);
      peer.write(
        Buffer.concat([reply(c1), packet(header({ type: 9 }), Buffer.alloc(0)), reply(c2)]),
      );
      assert.equal((await first).libVer, 9_000_000n);
      await assert.rejects(
        second,
        (e: Error) => e instanceof ProtocolError && /type 9/.test(e.message),
      );
    }));

  it('answers a PING with a PONG and nothing else with anything', () =>
    withConn(async (conn, held, fake) => {
      const call = getLibVersion(conn);
      const [c1, peer] = await nextCall(held, 1);
      const keepalive = (proc: number) => header({ prog: Program.keepalive, proc });
      peer.send(keepalive(2)); // a PONG nobody asked for
      peer.send(keepalive(3));
      peer.send(keepalive(1));
      await waitFor(
        () => fake.calls.some((c) => c.header.prog === Program.keepalive),
        'the client answered the PING',
        10_000,
      );
      // a call after the PONG: had the client answered the others, their answers came first
      const later = getLibVersion(conn);
      const [c2] = await nextCall(held, 2);
      const sent = fake.calls.map((c) => [
        c.header.prog,
        c.header.proc,
        c.header.type,
        c.header.serial,
      ]);
      assert.deepEqual(sent, [
        [Program.remote, libVersion.proc, MessageType.call, 1],
        [Program.keepalive, 2, MessageType.message, 0],
        [Program.remote, libVersion.proc, MessageType.call, 2],
      ]);
      peer.reply(c1, libVersionReply);
      peer.reply(c2, libVersionReply);
      await Promise.all([call, later]);
    }));

  it('drops a late reply to a call that timed out with a warning, once; a second one is a protocol error', () =>
    withConn(async (conn, held) => {
      const warnings: string[] = [];
      conn.on('warning', (w) => warnings.push(w));
      const timedOut = once(conn, 'callTimeout');
      const late = conn.call(
        Program.remote,
        libVersion.proc,
        libVersion.args,
        undefined,
        libVersion.ret,
        {
          timeoutMs: 1,
        },
      );
      await assert.rejects(
        late,
        (e: Error) => e instanceof CallTimeoutError && /procedure \d+ got no reply/.test(e.message),
      );
      await timedOut;
      const [c1, peer] = await nextCall(held, 1);
      const next = getLibVersion(conn);
      const [c2] = await nextCall(held, 2);
      peer.reply(c1, libVersionReply);
      peer.reply(c2, libVersionReply);
      assert.equal((await next).libVer, 9_000_000n);
      assert.deepEqual(warnings, ['dropped a late reply to timed-out call serial 1']);
      const closedWith = once(conn, 'close');
      peer.reply(c1, libVersionReply);
      const [reason] = (await closedWith) as [Error];
      assert.ok(reason instanceof ProtocolError);
      assert.match(
        reason.message,
        new RegExp(`reply for unknown serial 1 \\(procedure ${libVersion.proc}\\)`),
      );
    }));

  it('refuses calls once closed, naming the call', async () => {
    const { fake } = await fakeHolding();
    const conn = await connect(fake);
    await conn.close();
    await assert.rejects(getLibVersion(conn, 'afterClose'), (e: Error) => {
      assert.ok(e instanceof ConnectionClosedError);
      assert.equal(e.message, 'cannot call afterClose: connection is closed');
      return true;
    });
    await assert.rejects(
      conn.call(Program.remote, 66, libVersion.args, undefined, libVersion.ret),
      /cannot call procedure 66: connection is closed/,
    );
    await fake.stop();
  });

  it('sends waiting calls in order as the window frees, skipping those that expired waiting', () =>
    withConn(
      async (conn, held) => {
        const first = getLibVersion(conn, 'first');
        const expired = conn.call(
          Program.remote,
          libVersion.proc,
          libVersion.args,
          undefined,
          libVersion.ret,
          {
            name: 'expired',
            timeoutMs: 1,
          },
        );
        const third = getLibVersion(conn, 'third');
        await assert.rejects(expired, CallTimeoutError);
        const [c1, peer] = await nextCall(held, 1);
        peer.reply(c1, libVersionReply);
        await first;
        const [c3] = await nextCall(held, 2);
        assert.equal(c3.header.serial, 3, 'the expired call never left');
        peer.reply(c3, libVersionReply);
        await third;
        assert.equal(conn.inFlight, 0);
      },
      { maxInFlight: 1 },
    ));
});
