/**
 * What a real libvirtd cannot be made to do: garbage, oversized lengths,
 * replies to serials never sent, dying mid-reply, never answering. Each must
 * give the caller a clear error and leave the process healthy.
 *
 * Where time is the subject (call deadlines, keepalive) the test runs the
 * connection on a mock clock (setTimeout and Date; the socket stays real) and
 * moves it tick by tick: what is due at a moment happens on that tick and not
 * one before. "Not yet sent" is shown by a packet the client wrote later that
 * did reach the fake peer (one TCP stream, in order), never by waiting.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
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
import {
  KeepaliveProc,
  MessageStatus,
  MessageType,
  PACKET_MAX,
  Program,
  type Packet,
} from '#src/libvirt/rpc/header.js';

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

/**
 * A connection to the fake whose deadlines and keepalive run on a mock clock
 * starting at 0 (the TCP connect itself on the real one).
 */
async function connectMocked(
  t: TestContext,
  fake: FakeLibvirtd,
  options: { callTimeoutMs?: number; maxInFlight?: number } = {},
): Promise<{ conn: RpcConnection; socket: net.Socket }> {
  const socket = (await new TcpTransport('127.0.0.1', fake.port).connect(1000)) as net.Socket;
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  return { conn: new RpcConnection(socket, { callTimeoutMs: 0, ...options }), socket };
}

/**
 * Options of the tests on a mock clock. Their waits are for packets, which a
 * bug can stop for good (no timer can fire under the mock): this makes such a
 * hang this test's own failure, long before the file's timeout.
 */
const MOCKED = { timeout: 30_000 };

const isPing = (p: Packet): boolean =>
  p.header.prog === Program.keepalive && p.header.proc === KeepaliveProc.ping;
const isRemoteCall = (p: Packet): boolean => p.header.prog === Program.remote;

/** A promise's outcome: the value, or the error it rejected with (so none is left unhandled). */
function settle<T>(p: Promise<T>): Promise<T | Error> {
  return p.then(
    (v) => v,
    (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
  );
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

  it(
    'times out a call on its deadline tick, drops the reply that comes after, and keeps working',
    MOCKED,
    (t) => {
      const held: Parameters<CallHandler>[] = [];
      return withFake(
        (call, peer) => {
          // the first call is answered by the test, once it has timed out
          if (call.header.serial === 1) held.push([call, peer]);
          else peer.reply(call, libVersionReply);
        },
        async (fake) => {
          const { conn } = await connectMocked(t, fake, { callTimeoutMs: 5000 });
          const warnings: string[] = [];
          conn.on('warning', (w) => warnings.push(w));
          const timeouts: Error[] = [];
          conn.on('callTimeout', (e) => timeouts.push(e));
          const first = settle(getLibVersion(conn, 50));
          await fake.received((c) => c.header.serial === 1);
          t.mock.timers.tick(49);
          assert.deepEqual(timeouts, [], 'still waiting one tick before its deadline');
          t.mock.timers.tick(1);
          assert.equal(timeouts.length, 1, 'timed out on the tick of its deadline');
          const error = await first;
          assert.ok(error instanceof CallTimeoutError, String(error));
          assert.match(error.message, /connectGetLibVersion got no reply within 50 ms/);
          assert.equal(timeouts[0], error, 'the owner heard of the same error');
          // Now the peer answers the timed-out call; the next call's reply comes
          // behind that late one on the same stream, so once it is here the late
          // one has been read (and dropped quietly, not taken for a protocol error).
          const [call, peer] = held[0]!;
          peer.reply(call, libVersionReply);
          assert.equal((await getLibVersion(conn)).libVer, 9_000_000n);
          assert.equal(conn.closed, false);
          assert.match(warnings.join('\n'), /dropped a late reply to timed-out call serial 1/);
          await conn.close();
        },
      );
    },
  );

  it('fails the handshake of a peer that never answers within the connect deadline', (t) =>
    withFake(
      () => undefined,
      async (fake) => {
        // The outcome is the point: the deadline's own timing is shown tick by
        // tick above (and in deadlines.test.ts); how long it took is a diagnostic.
        const started = performance.now();
        await assert.rejects(
          LibvirtClient.connect(`qemu+tcp://127.0.0.1:${fake.port}/system`, {
            connectTimeoutMs: 300,
          }),
          (e: Error) =>
            e instanceof CallTimeoutError && /authList got no reply within 300 ms/.test(e.message),
        );
        assert.ok(
          fake.calls.some((c) => isRemoteCall(c)),
          'the handshake call reached the peer',
        );
        t.diagnostic(`handshake gave up after ${Math.round(performance.now() - started)} ms`);
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

  it(
    'finds a peer that falls silent dead interval × (count + 1) after its last packet, on that tick',
    MOCKED,
    (t) => {
      const intervalMs = 200;
      const count = 2;
      const bound = RpcConnection.keepaliveBoundMs(intervalMs, count);
      return withFake(
        (call, peer) => {
          // Answers the first call, then nothing: no reply, no PONG.
          if (call.header.prog === Program.remote && call.header.serial === 1) {
            peer.reply(call, libVersionReply);
          }
        },
        async (fake) => {
          const { conn } = await connectMocked(t, fake);
          conn.startKeepalive(intervalMs, count);
          // The peer's last packet comes a quarter into an interval: a timer that
          // polls once per interval would find it dead up to an interval late.
          t.mock.timers.tick(intervalMs / 4);
          await getLibVersion(conn);
          const lastPacketAt = Date.now();
          const tickTo = (at: number): void => t.mock.timers.tick(lastPacketAt + at - Date.now());
          // Calls the peer never answers (no deadline of their own): each one that
          // reached the peer shows that whatever the client wrote before it did too.
          const probes: Promise<unknown>[] = [];
          const probe = async (): Promise<void> => {
            const from = fake.calls.length;
            probes.push(settle(getLibVersion(conn)));
            await fake.received(isRemoteCall, from);
          };
          const pings = (): number => fake.calls.filter(isPing).length;
          for (let k = 1; k <= count; k++) {
            tickTo(k * intervalMs - 1);
            await probe();
            assert.equal(
              pings(),
              k - 1,
              `no PING ${k} one tick before ${k * intervalMs} ms of silence`,
            );
            const from = fake.calls.length;
            tickTo(k * intervalMs);
            await fake.received(isPing, from);
            assert.equal(pings(), k, `PING ${k} on the tick of ${k * intervalMs} ms of silence`);
          }
          tickTo(bound - 1);
          assert.equal(conn.closed, false, `alive one tick before ${bound} ms of silence`);
          tickTo(bound);
          assert.equal(conn.closed, true, `dropped on the tick of ${bound} ms of silence`);
          const errors = await Promise.all(probes);
          assert.equal(errors.length, count);
          for (const error of errors) {
            assert.ok(error instanceof KeepaliveTimeoutError, String(error));
            assert.match(
              error.message,
              new RegExp(
                `did not answer 2 keepalive pings 200 ms apart \\(silent for ${bound} ms\\)`,
              ),
            );
          }
          assert.equal(pings(), count, 'no PING after the verdict');
          await assert.rejects(getLibVersion(conn), ConnectionClosedError);
        },
      );
    },
  );

  it('keeps a connection whose peer answers the pings, however long it is idle', MOCKED, (t) =>
    withFake(
      (call, peer) => {
        if (call.header.prog === Program.keepalive) {
          if (call.header.proc === KeepaliveProc.ping) {
            peer.send({ ...call.header, proc: KeepaliveProc.pong });
          }
          return;
        }
        peer.reply(call, libVersionReply);
      },
      async (fake) => {
        const intervalMs = 50;
        const { conn, socket } = await connectMocked(t, fake);
        // The connection's own data listener came first: once this one has seen
        // a PONG's bytes, the connection has read that PONG.
        let received = 0;
        const readAtLeast = (bytes: number): Promise<void> =>
          new Promise((resolve) => {
            const check = (): void => {
              if (received >= bytes) resolve();
              else socket.once('data', check);
            };
            check();
          });
        socket.on('data', (chunk: Buffer) => (received += chunk.length));
        conn.startKeepalive(intervalMs, 1); // dead after 100 ms of silence
        const rounds = 10; // 500 ms idle: five times that
        let from = 0;
        for (let i = 1; i <= rounds; i++) {
          t.mock.timers.tick(intervalMs);
          const ping = await fake.received(isPing, from);
          from = fake.calls.indexOf(ping) + 1;
          await readAtLeast(i * 28); // its PONG: a bare header
          assert.equal(conn.closed, false, `alive after ${i * intervalMs} ms idle`);
        }
        assert.equal(fake.calls.filter(isPing).length, rounds, 'one PING per interval, no more');
        assert.equal((await getLibVersion(conn)).libVer, 9_000_000n);
        await conn.close();
      },
    ),
  );

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

  it('answers a PING with a PONG', () => {
    let held: Packet | null = null;
    return withFake(
      (call, peer) => {
        if (call.header.prog === Program.keepalive) {
          // the reply is held until the PONG is here: the call resolving proves it came
          if (call.header.proc === KeepaliveProc.pong && held) peer.reply(held, libVersionReply);
          return;
        }
        held = call;
        peer.send({
          prog: Program.keepalive,
          vers: 1,
          proc: KeepaliveProc.ping,
          type: MessageType.message,
          serial: 0,
          status: MessageStatus.ok,
        });
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
    );
  });

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
  it(
    'keeps at most maxInFlight calls on the wire, sends the rest in order as answers come',
    MOCKED,
    async (t) => {
      const held: Parameters<CallHandler>[] = [];
      // Holds every call until the test answers it; PINGs go unanswered.
      const fake = await FakeLibvirtd.start((call, peer) => {
        if (isRemoteCall(call)) held.push([call, peer]);
      });
      try {
        const { conn } = await connectMocked(t, fake, { maxInFlight: 2 });
        // A keepalive PING is not subject to the window: once the peer has one,
        // every call the client had written before it is there too.
        const intervalMs = 10;
        conn.startKeepalive(intervalMs, 1000);
        let from = 0;
        const onTheWire = async (): Promise<number[]> => {
          t.mock.timers.tick(intervalMs); // the last packet in was just now: a PING is due
          const ping = await fake.received(isPing, from);
          from = fake.calls.indexOf(ping) + 1;
          return held.map(([c]) => c.header.serial);
        };
        const calls = Array.from({ length: 7 }, () => getLibVersion(conn));
        const answered: bigint[] = [];
        const wire: number[][] = [];
        for (let i = 0; i < calls.length; i++) {
          wire.push(await onTheWire());
          const [c, p] = held.shift()!; // the oldest
          p.reply(c, encodeToBuffer(libVersion.ret, { libVer: BigInt(c.header.serial) }));
          answered.push((await calls[i]!).libVer);
        }
        assert.deepEqual(
          wire,
          [[1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7], [7]],
          'two calls on the wire at a time, the next sent as one is answered',
        );
        assert.deepEqual(answered, [1n, 2n, 3n, 4n, 5n, 6n, 7n]);
        assert.deepEqual(
          fake.calls.filter(isRemoteCall).map((c) => c.header.serial),
          [1, 2, 3, 4, 5, 6, 7],
          'sent in the order they were made',
        );
        await conn.close();
      } finally {
        await fake.stop();
      }
    },
  );

  it('expires a call still waiting for the window without ever sending it', MOCKED, async (t) => {
    const fake = await FakeLibvirtd.start(() => undefined); // never answers
    try {
      const { conn } = await connectMocked(t, fake, { maxInFlight: 1 });
      const timedOut: string[] = [];
      conn.on('callTimeout', (e) => timedOut.push(e.message));
      const call = (name: string, timeoutMs: number): Promise<unknown> =>
        settle(
          conn.call(Program.remote, libVersion.proc, libVersion.args, undefined, libVersion.ret, {
            name,
            timeoutMs,
          }),
        );
      const first = call('first', 200); // on the wire
      const second = call('second', 50); // waits for the window
      await fake.received(isRemoteCall);
      t.mock.timers.tick(49);
      assert.deepEqual(timedOut, []);
      t.mock.timers.tick(1);
      assert.deepEqual(timedOut, ['second got no reply within 50 ms'], 'the waiting one first');
      t.mock.timers.tick(149);
      assert.equal(timedOut.length, 1);
      t.mock.timers.tick(1);
      assert.deepEqual(timedOut, [
        'second got no reply within 50 ms',
        'first got no reply within 200 ms',
      ]);
      assert.ok((await first) instanceof CallTimeoutError);
      assert.ok((await second) instanceof CallTimeoutError);
      // The window has room again once the first call expired. Had the expired
      // second call been sent then, it would have reached the peer before this one.
      const third = call('third', 100);
      await fake.received((c) => c.header.serial === 3);
      assert.deepEqual(
        fake.calls.map((c) => c.header.serial),
        [1, 3],
        'the second call never reached the peer',
      );
      t.mock.timers.tick(100);
      assert.ok((await third) instanceof CallTimeoutError);
      await conn.close();
    } finally {
      await fake.stop();
    }
  });
});
