import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PacketDecoder } from '#src/libvirt/rpc/packet-decoder.js';
import {
  MessageStatus,
  MessageType,
  PACKET_MAX,
  Program,
  type Packet,
} from '#src/libvirt/rpc/header.js';
import { ProtocolError } from '#src/libvirt/errors.js';
import { packet } from '../support/fake-libvirtd.js';

const reply = packet(
  {
    prog: Program.remote,
    vers: 1,
    proc: 157,
    type: MessageType.reply,
    serial: 1,
    status: MessageStatus.ok,
  },
  Buffer.from('00000000008954f0', 'hex'),
);
const emptyReply = packet(
  {
    prog: Program.remote,
    vers: 1,
    proc: 2,
    type: MessageType.reply,
    serial: 2,
    status: MessageStatus.ok,
  },
  Buffer.alloc(0),
);
const event = packet(
  {
    prog: Program.remote,
    vers: 1,
    proc: 339,
    type: MessageType.message,
    serial: 0,
    status: MessageStatus.ok,
  },
  Buffer.alloc(64, 0xab),
);
const ping = packet(
  {
    prog: Program.keepalive,
    vers: 1,
    proc: 1,
    type: MessageType.message,
    serial: 0,
    status: MessageStatus.ok,
  },
  Buffer.alloc(0),
);
const stream = Buffer.concat([reply, emptyReply, event, ping]);

function summary(packets: Packet[]): string[] {
  return packets.map(
    (p) => `${p.header.prog}/${p.header.proc}/${p.header.serial}:${p.payload.toString('hex')}`,
  );
}

const expected = summary(new PacketDecoder().push(stream));

describe('PacketDecoder', () => {
  it('decodes a stream of packets fed whole', () => {
    assert.equal(expected.length, 4);
    assert.equal(expected[0], `${Program.remote}/157/1:00000000008954f0`);
    assert.equal(expected[1], `${Program.remote}/2/2:`);
    assert.equal(expected[2], `${Program.remote}/339/0:${'ab'.repeat(64)}`);
    assert.equal(expected[3], `${Program.keepalive}/1/0:`);
  });

  it('decodes the same stream fed byte by byte', () => {
    const d = new PacketDecoder();
    const out: Packet[] = [];
    for (let i = 0; i < stream.length; i++) out.push(...d.push(stream.subarray(i, i + 1)));
    assert.deepEqual(summary(out), expected);
    assert.equal(d.pending, 0);
  });

  it('decodes the same stream split at every boundary', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new PacketDecoder();
      const out = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      assert.deepEqual(summary(out), expected, `split at ${cut}`);
    }
  });

  it('decodes the same stream split at every pair of boundaries', () => {
    for (let a = 0; a <= stream.length; a += 3) {
      for (let b = a; b <= stream.length; b += 5) {
        const d = new PacketDecoder();
        const out = [
          ...d.push(stream.subarray(0, a)),
          ...d.push(stream.subarray(a, b)),
          ...d.push(stream.subarray(b)),
        ];
        assert.deepEqual(summary(out), expected, `split at ${a} and ${b}`);
      }
    }
  });

  it('holds an incomplete packet until the rest arrives', () => {
    const d = new PacketDecoder();
    assert.deepEqual(d.push(reply.subarray(0, reply.length - 1)), []);
    assert.equal(d.pending, reply.length - 1);
    assert.equal(d.push(reply.subarray(reply.length - 1)).length, 1);
  });

  it('refuses a length shorter than the header', () => {
    const d = new PacketDecoder();
    assert.throws(
      () => d.push(Buffer.from('0000001b', 'hex')),
      (e) => e instanceof ProtocolError && /shorter/.test(e.message),
    );
    // The stream cannot be resynchronised: the decoder stays failed.
    assert.throws(() => d.push(reply), ProtocolError);
  });

  it('refuses a length over the protocol maximum before buffering it', () => {
    const d = new PacketDecoder();
    const len = Buffer.alloc(4);
    len.writeUInt32BE(PACKET_MAX + 1);
    assert.throws(
      () => d.push(len),
      (e) => e instanceof ProtocolError && /exceeds the protocol maximum/.test(e.message),
    );
  });

  it('accepts a packet of exactly the maximum length', () => {
    const d = new PacketDecoder();
    const head = Buffer.from(reply.subarray(0, 28));
    head.writeUInt32BE(PACKET_MAX, 0);
    assert.deepEqual(d.push(head), []);
    assert.equal(d.push(Buffer.alloc(PACKET_MAX - 28)).length, 1);
  });
});
