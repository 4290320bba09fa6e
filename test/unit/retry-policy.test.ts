/**
 * The retry policy the README states for a job whose host cannot be reached: backoff
 * 1, 2, 4 … s with at most 30 s between tries (±20 % jitter), 3 tries for a short job,
 * and about 15 minutes of tries for a block job, which libvirt goes on running.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobOptions, retryAttempts, retryDelay, RETRY_BACKOFF } from '#jobs/queues.js';
import { JOB_TYPES, isBlockJobType, type JobType } from '#jobs/job-types.js';

const TYPES = Object.keys(JOB_TYPES) as JobType[];

/** Every value retryDelay gives for attempt `n` over many draws of its jitter: [min, max]. */
function range(n: number, draws = 2000): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < draws; i++) {
    const d = retryDelay(n);
    lo = Math.min(lo, d);
    hi = Math.max(hi, d);
  }
  return [lo, hi];
}

describe('retry policy', () => {
  it('doubles from 1 s with ±20 % jitter, capped at 30 s', () => {
    const expected: [number, number][] = [
      [1, 1000],
      [2, 2000],
      [3, 4000],
      [4, 8000],
      [5, 16_000],
      [6, 30_000], // 32 s capped
      [7, 30_000],
      [34, 30_000],
    ];
    for (const [attempt, base] of expected) {
      const [lo, hi] = range(attempt);
      assert.ok(
        lo >= base * 0.8 && hi <= base * 1.2,
        `attempt ${attempt}: ${lo}..${hi} around ${base}`,
      );
      // the jitter is used, both ways (2000 draws: the chance of missing ±10 % is nil)
      assert.ok(lo < base * 0.9 && hi > base * 1.1, `attempt ${attempt} jitters: ${lo}..${hi}`);
    }
  });

  it('tries a short job 3 times and a block job for about 15 minutes', () => {
    for (const type of TYPES) {
      assert.equal(retryAttempts(type), isBlockJobType(type) ? 35 : 3, type);
      const opts = jobOptions('job_x', type);
      assert.equal(opts.attempts, retryAttempts(type));
      assert.deepEqual(opts.backoff, { type: RETRY_BACKOFF });
      assert.equal(opts.jobId, 'job_x', "BullMQ's id is the record's: a second add is a no-op");
    }
    // The waits between a block job's 35 tries add up to about 15 minutes: 1+2+4+8+16 s,
    // then 29 × 30 s = 901 s without jitter; the mean of many draws lands within 1 % of it.
    const blockType = TYPES.find(isBlockJobType)!;
    let total = 0;
    const draws = 2000;
    for (let n = 1; n < retryAttempts(blockType); n++) {
      for (let i = 0; i < draws; i++) total += retryDelay(n) / draws;
    }
    assert.ok(Math.abs(total - 901_000) < 9_010, `the waits add up to ${Math.round(total)} ms`);
  });
});
