/**
 * The per-connection deadline queue, on a mock clock (setTimeout and Date):
 * each call expires on the very tick its deadline is reached, not one
 * before, in deadline order whatever the order of their timeouts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Deadlines } from '#src/libvirt/rpc/deadlines.js';

describe('Deadlines', () => {
  it('expires each pending call once, at its own deadline, across different timeouts', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const pending = new Set([1, 2, 3, 4]);
    /** [serial, timeout, mock time it expired at] */
    const expired: [number, number, number][] = [];
    const d = new Deadlines(
      (s) => pending.has(s),
      (s, timeoutMs) => {
        pending.delete(s);
        expired.push([s, timeoutMs, Date.now()]);
      },
    );
    // a long timeout first, then shorter ones: the short ones must not wait behind it
    d.add(1, 200, pending.size);
    d.add(2, 30, pending.size);
    d.add(3, 60, pending.size);
    d.add(4, 30, pending.size);
    pending.delete(4); // answered in time

    t.mock.timers.tick(29);
    assert.deepEqual(expired, [], 'nothing expires before the first deadline');
    t.mock.timers.tick(1);
    assert.deepEqual(expired, [[2, 30, 30]], 'serial 2 expires on its deadline; 4 was answered');
    t.mock.timers.tick(29);
    assert.deepEqual(expired, [[2, 30, 30]], 'nothing more before 60');
    t.mock.timers.tick(1);
    assert.deepEqual(expired, [
      [2, 30, 30],
      [3, 60, 60],
    ]);
    t.mock.timers.tick(139);
    assert.equal(expired.length, 2, 'the 200 ms call is still pending at 199');
    t.mock.timers.tick(1);
    assert.deepEqual(expired, [
      [2, 30, 30],
      [3, 60, 60],
      [1, 200, 200],
    ]);
    t.mock.timers.tick(10_000);
    assert.equal(expired.length, 3, 'each call expires once');
    d.clear();
  });

  it('expires calls with the same timeout in the order they were made, each on its own tick', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const pending = new Set([1, 2, 3]);
    const expired: [number, number][] = [];
    const d = new Deadlines(
      (s) => pending.has(s),
      (s) => {
        pending.delete(s);
        expired.push([s, Date.now()]);
      },
    );
    d.add(1, 50, pending.size);
    t.mock.timers.tick(10);
    d.add(2, 50, pending.size);
    t.mock.timers.tick(10);
    d.add(3, 50, pending.size);
    t.mock.timers.tick(29); // t = 49
    assert.deepEqual(expired, []);
    t.mock.timers.tick(1); // 50
    assert.deepEqual(expired, [[1, 50]]);
    t.mock.timers.tick(9); // 59
    assert.deepEqual(expired, [[1, 50]]);
    t.mock.timers.tick(1); // 60
    assert.deepEqual(expired, [
      [1, 50],
      [2, 60],
    ]);
    t.mock.timers.tick(10); // 70
    assert.deepEqual(expired, [
      [1, 50],
      [2, 60],
      [3, 70],
    ]);
    d.clear();
  });

  it('fires nothing after clear, though it still serves calls added later', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const fired: number[] = [];
    const d = new Deadlines(
      () => true,
      (s) => fired.push(s),
    );
    d.add(1, 10, 1);
    d.clear();
    // The proof that the cleared call would have fired by now: one added after
    // the clear, with a later deadline, does fire.
    d.add(2, 20, 1);
    t.mock.timers.tick(19);
    assert.deepEqual(fired, []);
    t.mock.timers.tick(1);
    assert.deepEqual(fired, [2], 'only the call added after clear expired');
    d.clear();
  });

  it('keeps its queues bounded by the calls still pending', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const pending = new Set<number>();
    const fired: number[] = [];
    const d = new Deadlines(
      (s) => pending.has(s),
      (s) => fired.push(s),
    );
    for (let s = 1; s <= 10_000; s++) {
      pending.add(s);
      d.add(s, 50, pending.size);
      pending.delete(s); // answered at once
    }
    // One call left unanswered, made last: the proof that the timer still runs.
    pending.add(10_001);
    d.add(10_001, 50, pending.size);
    const queue = (d as unknown as { queues: Map<number, unknown[]> }).queues.get(50)!;
    assert.ok(queue.length <= 130, `queue holds ${queue.length} entries for 1 pending call`);
    t.mock.timers.tick(49);
    assert.deepEqual(fired, []);
    t.mock.timers.tick(1);
    assert.deepEqual(fired, [10_001], 'only the unanswered call expired');
    d.clear();
  });
});
