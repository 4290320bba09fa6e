/**
 * What a real libvirtd cannot be made to do: garbage, oversized lengths,
 * replies to serials never sent, dying mid-reply, never answering. Each must
 * give the caller a clear error and leave the process healthy.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { FakeLibvirtd, packet, type CallHandler } from '../support/fake-libvirtd.js';
import {
  CallTimeoutError,
  ConnectionClosedError,
  KeepaliveTimeoutError,
  LibvirtClient,
  LibvirtError,
  ProtocolError,
  RpcConnection,
  TcpTransport,
  procedures,
} from '#src/libvirt/index.js';
import { encodeToBuffer } from '#src/libvirt/xdr/codec.js';
import { remoteError } from '#src/libvirt/protocol/types.js';
import { MessageStatus, MessageType, PACKET_MAX, Program } from '#src/libvirt/rpc/header.js';

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => void unhandled.push(e);
before(() => process.on('unhandledRejection', onUnhandled));
after(() => {
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, [], 'no promise may be left rejected without a handler');
});

const libVersion = procedures.connectGetLibVersion;
const libVersionReply = encodeToBuffer(libVersion.ret, { libVer: 9_000_000n });

async function connectRaw(fake: FakeLibvirtd, callTimeoutMs = 5000): Promise<RpcConnection> {
  const socket = await new TcpTransport('127.0.0.1', fake.port).connect(1000);
  return new RpcConnection(socket, { callTimeoutMs });
}

function getLibVersion(conn: RpcConnection, timeoutMs?: number): Promise<{ libVer: bigint }> {
  return conn.call(Program.remote, libVersion.proc, libVersion.args, undefined, libVersion.ret, {
    name: 'connectGetLibVersion',
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

async function withFake(
  handler: CallHandler,
  body: (fake: FakeLibvirtd) => Promise<void>,
): Promise<void> {
  const fake = await FakeLibvirtd.start(handler);
  try {
    await body(fake);
  } finally {
    await fake.stop();
  }
}

function closed(conn: RpcConnection): Promise<Error | null> {
  return new Promise((resolve) => {
    if (conn.closed) resolve(null);
    else conn.once('close', resolve);
  });
}

describe('RPC client against a misbehaving peer', () => {
  it('drops the connection on garbage bytes, rejecting the pending call', () =>
    withFake(
      (_call, peer) => peer.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')),
      async (fake) => {
        const conn = await connectRaw(fake);
        const closing = closed(conn);
        await assert.rejects(getLibVersion(conn), (e: Error) => {
          assert.ok(e instanceof ProtocolError, `got ${e.name}: ${e.message}`);
          assert.match(e.message, /exceeds the protocol maximum/);
          return true;
        });
        assert.ok((await closing) instanceof ProtocolError);
        await assert.rejects(getLibVersion(conn), ConnectionClosedError);
      },
    ));

  it('drops the connection on a length shorter than a header', () =>
    withFake(
      (_call, peer) => peer.write(Buffer.from('0000000400000000', 'hex')),
      async (fake) => {
        const conn = await connectRaw(fake);
        await assert.rejects(
          getLibVersion(conn),
          (e: Error) => e instanceof ProtocolError && /shorter/.test(e.message),
        );
      },
    ));

  it('refuses a length over the protocol maximum without waiting for the bytes', () =>
    withFake(
      (call, peer) => {
        const head = Buffer.alloc(28);
        head.writeUInt32BE(PACKET_MAX + 1, 0);
        head.writeUInt32BE(Program.remote, 4);
        head.writeUInt32BE(1, 8);
        head.writeInt32BE(call.header.proc, 12);
        head.writeInt32BE(MessageType.reply, 16);
        head.writeUInt32BE(call.header.serial, 20);
        peer.write(head);
      },
      async (fake) => {
        const conn = await connectRaw(fake);
        await assert.rejects(
          getLibVersion(conn),
          (e: Error) => e instanceof ProtocolError && /33554437/.test(e.message),
        );
      },
    ));

  it('treats a reply for a serial never sent as a protocol error', () =>
    withFake(
      (call, peer) => peer.reply(call, libVersionReply, { serial: call.header.serial + 100 }),
      async (fake) => {
        const conn = await connectRaw(fake);
        await assert.rejects(
          getLibVersion(conn),
          (e: Error) => e instanceof ProtocolError && /unknown serial 101/.test(e.message),
        );
      },
    ));

  it('rejects pending calls clearly when the peer closes mid-reply', () =>
    withFake(
      (call, peer) => {
        if (call.header.serial === 1) {
          peer.reply(call, libVersionReply);
          return;
        }
        // the second call gets 20 bytes of its reply, then the peer goes away
        const whole = packet(
          { ...call.header, type: MessageType.reply, status: MessageStatus.ok },
          libVersionReply,
        );
        peer.socket.end(whole.subarray(0, 20));
      },
      async (fake) => {
        const conn = await connectRaw(fake);
        assert.equal((await getLibVersion(conn)).libVer, 9_000_000n);
        await assert.rejects(getLibVersion(conn), (e: Error) => {
          assert.ok(e instanceof ConnectionClosedError, `got ${e.name}`);
          assert.match(
            e.message,
            /connectGetLibVersion interrupted: connection closed by peer in the middle of a packet \(20 bytes/,
          );
          return true;
        });
      },
    ));

  it('times out a call the peer never answers, and keeps working afterwards', () => {
    let n = 0;
    return withFake(
      (call, peer) => {
        n++;
        if (n === 1) {
          // answer the first call late, after its deadline
          setTimeout(() => peer.reply(call, libVersionReply), 150);
        } else {
          peer.reply(call, libVersionReply);
        }
      },
      async (fake) => {
        const conn = await connectRaw(fake);
        const warnings: string[] = [];
        conn.on('warning', (w) => warnings.push(w));
        const started = Date.now();
        await assert.rejects(getLibVersion(conn, 50), (e: Error) => {
          assert.ok(e instanceof CallTimeoutError);
          assert.match(e.message, /connectGetLibVersion got no reply within 50 ms/);
          return true;
        });
        assert.ok(Date.now() - started < 1000);
        await new Promise((r) => setTimeout(r, 250));
        // the late reply was dropped quietly; the connection still serves calls
        assert.equal(conn.closed, false);
        assert.match(warnings.join('\n'), /late reply to timed-out call serial 1/);
        assert.equal((await getLibVersion(conn)).libVer, 9_000_000n);
        await conn.close();
      },
    );
  });

  it('fails the handshake of a peer that never answers within the connect deadline', () =>
    withFake(
      () => undefined,
      async (fake) => {
        const started = Date.now();
        await assert.rejects(
          LibvirtClient.connect(`qemu+tcp://127.0.0.1:${fake.port}/system`, {
            connectTimeoutMs: 300,
          }),
          (e: Error) =>
            e instanceof CallTimeoutError && /authList got no reply within 300 ms/.test(e.message),
        );
        assert.ok(Date.now() - started < 2000);
      },
    ));

  it('drops a connection whose peer stops answering keepalive pings', () =>
    withFake(
      () => undefined,
      async (fake) => {
        const conn = await connectRaw(fake, 0);
        conn.startKeepalive(40, 2);
        const pending = getLibVersion(conn);
        await assert.rejects(pending, KeepaliveTimeoutError);
        assert.equal(conn.closed, true);
        const pings = fake.calls.filter(
          (c) => c.header.prog === Program.keepalive && c.header.proc === 1,
        );
        assert.equal(pings.length, 2);
      },
    ));

  it('finds a peer that falls silent dead interval × (count + 1) after its last packet, not later', () => {
    const intervalMs = 200;
    const count = 2;
    const bound = RpcConnection.keepaliveBoundMs(intervalMs, count);
    let lastSent = 0;
    return withFake(
      (call, peer) => {
        // Answers the first call, then nothing: no reply, no PONG.
        if (call.header.prog === Program.keepalive || lastSent !== 0) return;
        peer.reply(call, libVersionReply);
        lastSent = Date.now();
      },
      async (fake) => {
        const conn = await connectRaw(fake, 0);
        conn.startKeepalive(intervalMs, count);
        // The peer's last packet comes a quarter into an interval: a timer that
        // polls once per interval would find it dead up to an interval late.
        await new Promise((r) => setTimeout(r, intervalMs / 4));
        await getLibVersion(conn);
        const pending = getLibVersion(conn); // never answered, no deadline of its own
        const error = await pending.then(
          () => assert.fail('the call cannot succeed'),
          (e: unknown) => e,
        );
        const detectedMs = Date.now() - lastSent;
        assert.ok(error instanceof KeepaliveTimeoutError, String(error));
        assert.match(error.message, /did not answer 2 keepalive pings 200 ms apart/);
        assert.equal(conn.closed, true);
        assert.ok(detectedMs >= bound - 20, `found dead after ${detectedMs} ms, before ${bound}`);
        assert.ok(
          detectedMs < bound + intervalMs / 2,
          `found dead after ${detectedMs} ms, bound ${bound}`,
        );
        const pings = fake.calls.filter(
          (c) => c.header.prog === Program.keepalive && c.header.proc === 1,
        );
        assert.equal(pings.length, count);
      },
    );
  });

  it('keeps a connection whose peer answers the pings, however long it is idle', () =>
    withFake(
      (call, peer) => {
        if (call.header.prog === Program.keepalive) {
          if (call.header.proc === 1) peer.send({ ...call.header, proc: 2 }); // PONG
          return;
        }
        peer.reply(call, libVersionReply);
      },
      async (fake) => {
        const conn = await connectRaw(fake, 0);
        conn.startKeepalive(50, 1);
        await new Promise((r) => setTimeout(r, 500)); // five times the bound
        assert.equal(conn.closed, false);
        assert.equal((await getLibVersion(conn)).libVer, 9_000_000n);
        const pings = fake.calls.filter((c) => c.header.prog === Program.keepalive);
        assert.ok(pings.length >= 5, `${pings.length} pings in 500 ms`);
        await conn.close();
      },
    ));

  it('tells its owner of a call that timed out, and stays open', () =>
    withFake(
      () => undefined,
      async (fake) => {
        const conn = await connectRaw(fake);
        const heard: Error[] = [];
        conn.on('callTimeout', (e) => heard.push(e));
        await assert.rejects(getLibVersion(conn, 100), CallTimeoutError);
        assert.equal(heard.length, 1);
        assert.ok(heard[0] instanceof CallTimeoutError);
        assert.equal(conn.closed, false);
        await conn.close();
      },
    ));

  it('answers a PING with a PONG', () =>
    withFake(
      (call, peer) => {
        if (call.header.prog === Program.keepalive) return;
        peer.send({
          prog: Program.keepalive,
          vers: 1,
          proc: 1,
          type: MessageType.message,
          serial: 0,
          status: MessageStatus.ok,
        });
        setTimeout(() => peer.reply(call, libVersionReply), 50);
      },
      async (fake) => {
        const conn = await connectRaw(fake);
        await getLibVersion(conn);
        const pong = fake.calls.find((c) => c.header.prog === Program.keepalive);
        assert.ok(pong, 'the client answered');
        assert.equal(pong.header.proc, 2);
        assert.equal(pong.header.type, MessageType.message);
        assert.equal(pong.payload.length, 0);
        await conn.close();
      },
    ));

  it('matches replies that arrive out of order to their callers', () => {
    const held: Parameters<CallHandler>[] = [];
    return withFake(
      (call, peer) => {
        held.push([call, peer]);
        if (held.length === 3) {
          for (const [c, p] of held.reverse()) {
            p.reply(c, encodeToBuffer(libVersion.ret, { libVer: BigInt(c.header.serial * 1000) }));
          }
        }
      },
      async (fake) => {
        const conn = await connectRaw(fake);
        const results = await Promise.all([
          getLibVersion(conn),
          getLibVersion(conn),
          getLibVersion(conn),
        ]);
        assert.deepEqual(
          results.map((r) => r.libVer),
          [1000n, 2000n, 3000n],
        );
        await conn.close();
      },
    );
  });

  it('turns an error reply into a LibvirtError with libvirt names', () =>
    withFake(
      (call, peer) =>
        peer.reply(
          call,
          encodeToBuffer(remoteError, {
            code: 83,
            domain: 10,
            message: "block copy still active: disk 'vda' already in active block job",
            level: 2,
            dom: null,
            str1: 'vda',
            str2: null,
            str3: null,
            int1: -1,
            int2: -1,
            net: null,
          }),
          { status: MessageStatus.error },
        ),
      async (fake) => {
        const conn = await connectRaw(fake);
        await assert.rejects(getLibVersion(conn), (e: Error) => {
          assert.ok(e instanceof LibvirtError);
          assert.equal(e.code, 83);
          assert.equal(e.codeName, 'VIR_ERR_BLOCK_COPY_ACTIVE');
          assert.equal(e.domainName, 'VIR_FROM_QEMU');
          assert.equal(e.str1, 'vda');
          assert.equal(e.procedure, 'connectGetLibVersion');
          assert.match(e.message, /already in active block job/);
          return true;
        });
        assert.equal(conn.closed, false);
        await conn.close();
      },
    ));

  it('reports a refused connection as a ConnectError naming the endpoint', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    await assert.rejects(
      LibvirtClient.connect(`test+tcp://127.0.0.1:${port}/default`),
      (e: Error) =>
        e.name === 'ConnectError' &&
        e.message.includes(`tcp:127.0.0.1:${port}`) &&
        /ECONNREFUSED/.test(e.message),
    );
  });
});

describe('the in-flight window', () => {
  it('keeps at most maxInFlight calls on the wire, sends the rest in order as answers come', async () => {
    const held: Parameters<CallHandler>[] = [];
    let maxSeen = 0;
    const fake = await FakeLibvirtd.start((call, peer) => {
      held.push([call, peer]);
      maxSeen = Math.max(maxSeen, held.length);
      // answer the oldest call a little later, one at a time
      setTimeout(() => {
        const [c, p] = held.shift()!;
        p.reply(c, encodeToBuffer(libVersion.ret, { libVer: BigInt(c.header.serial) }));
      }, 5);
    });
    try {
      const socket = await new TcpTransport('127.0.0.1', fake.port).connect(1000);
      const conn = new RpcConnection(socket, { maxInFlight: 2 });
      const results = await Promise.all(Array.from({ length: 7 }, () => getLibVersion(conn)));
      assert.deepEqual(
        results.map((r) => r.libVer),
        [1n, 2n, 3n, 4n, 5n, 6n, 7n],
      );
      assert.equal(maxSeen, 2, 'never more than 2 calls on the wire');
      assert.deepEqual(
        fake.calls.map((c) => c.header.serial),
        [1, 2, 3, 4, 5, 6, 7],
        'sent in the order they were made',
      );
      await conn.close();
    } finally {
      await fake.stop();
    }
  });

  it('expires a call still waiting for the window without ever sending it', async () => {
    const fake = await FakeLibvirtd.start(() => undefined); // never answers
    try {
      const socket = await new TcpTransport('127.0.0.1', fake.port).connect(1000);
      const conn = new RpcConnection(socket, { maxInFlight: 1, callTimeoutMs: 0 });
      const first = getLibVersion(conn, 200);
      const second = getLibVersion(conn, 50);
      await assert.rejects(second, CallTimeoutError);
      await assert.rejects(first, CallTimeoutError);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(
        fake.calls.map((c) => c.header.serial),
        [1],
        'the second call never reached the peer',
      );
      // the window has room again once the first call expired
      const third = getLibVersion(conn, 100);
      await assert.rejects(third, CallTimeoutError);
      assert.deepEqual(
        fake.calls.map((c) => c.header.serial),
        [1, 3],
      );
      await conn.close();
    } finally {
      await fake.stop();
    }
  });
});
