import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Deadlines } from '#src/libvirt/rpc/deadlines.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('Deadlines', () => {
  it('expires each pending call once, at its own deadline, across different timeouts', async () => {
    const pending = new Set([1, 2, 3, 4]);
    const expired: [number, number, number][] = [];
    const started = Date.now();
    const d = new Deadlines(
      (s) => pending.has(s),
      (s, t) => {
        pending.delete(s);
        expired.push([s, t, Date.now() - started]);
      },
    );
    // a long timeout first, then shorter ones: the short ones must not wait behind it
    d.add(1, 200, pending.size);
    d.add(2, 30, pending.size);
    d.add(3, 60, pending.size);
    d.add(4, 30, pending.size);
    pending.delete(4); // answered in time
    await sleep(300);
    assert.deepEqual(
      expired.map(([s, t]) => [s, t]),
      [
        [2, 30],
        [3, 60],
        [1, 200],
      ],
    );
    const at = new Map(expired.map(([s, , ms]) => [s, ms]));
    assert.ok(at.get(2)! >= 29 && at.get(2)! < 150, `serial 2 expired at ${at.get(2)} ms`);
    assert.ok(at.get(1)! >= 199, `serial 1 expired at ${at.get(1)} ms`);
    d.clear();
  });

  it('fires nothing after clear', async () => {
    let fired = 0;
    const d = new Deadlines(
      () => true,
      () => fired++,
    );
    d.add(1, 10, 1);
    d.clear();
    await sleep(40);
    assert.equal(fired, 0);
  });

  it('keeps its queues bounded by the calls still pending', async () => {
    const pending = new Set<number>();
    let fired = 0;
    const d = new Deadlines(
      (s) => pending.has(s),
      () => fired++,
    );
    for (let s = 1; s <= 10_000; s++) {
      pending.add(s);
      d.add(s, 50, pending.size);
      pending.delete(s); // answered at once
    }
    const queue = (d as unknown as { queues: Map<number, unknown[]> }).queues.get(50)!;
    assert.ok(queue.length <= 130, `queue holds ${queue.length} entries for 0 pending calls`);
    await sleep(80);
    assert.equal(fired, 0);
  });
});
