/**
 * Unit tests for backoff.ts and expiry.ts: Postfix's retry and expiry arithmetic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelaySec, isDue, nextAttemptTime } from '../../../src/scheduler/backoff.ts';
import { isExpired, isWarningDue } from '../../../src/scheduler/expiry.ts';

const s = { minimalSec: 300, maximalSec: 4000 };

test('the delay is the age in the queue, clamped to minimal/maximal_backoff_time (qmgr_active.c)', () => {
  assert.equal(backoffDelaySec(0, s), 300);
  assert.equal(backoffDelaySec(299.9, s), 300);
  assert.equal(backoffDelaySec(1000, s), 1000);
  assert.equal(backoffDelaySec(1000.7, s), 1000);
  assert.equal(backoffDelaySec(4000, s), 4000);
  assert.equal(backoffDelaySec(90_000, s), 4000);
  assert.equal(backoffDelaySec(-5, s), 300);
});

test('attempts roughly double until the maximum', () => {
  const arrival = 0;
  let now = 0;
  const gaps: number[] = [];
  for (let i = 0; i < 6; i++) {
    const next = nextAttemptTime(now, arrival, s);
    gaps.push((next - now) / 1000);
    now = next;
  }
  assert.deepEqual(gaps, [300, 300, 600, 1200, 2400, 4000]);
});

test('a deferred file is due when its mtime is not in the future', () => {
  assert.equal(isDue(1000, 1000), true);
  assert.equal(isDue(999, 1000), true);
  assert.equal(isDue(1001, 1000), false);
});

const life = { maximalQueueLifetimeSec: 5 * 86400, bounceQueueLifetimeSec: 3600, delayWarningSec: 0 };

test('expiry: maximal_queue_lifetime for senders, bounce_queue_lifetime for the null sender', () => {
  const m = { arrivalTime: 0, sender: 'a@x', forcedExpire: false };
  assert.equal(isExpired(m, 5 * 86400 * 1000 - 1, life), false);
  assert.equal(isExpired(m, 5 * 86400 * 1000, life), true);
  const b = { ...m, sender: '' };
  assert.equal(isExpired(b, 3599_000, life), false);
  assert.equal(isExpired(b, 3600_000, life), true);
});

test('expiry: lifetime 0 means try once; forced expiry always expires', () => {
  assert.equal(isExpired({ arrivalTime: 1000, sender: 'a@x', forcedExpire: false }, 1000, { ...life, maximalQueueLifetimeSec: 0 }), true);
  assert.equal(isExpired({ arrivalTime: 1000, sender: 'a@x', forcedExpire: true }, 1000, life), true);
});

test('delay warning: off at 0, due after delay_warning_time (1 s slack), only once', () => {
  const m = { arrivalTime: 0, sender: 'a@x', forcedExpire: false };
  assert.equal(isWarningDue(m, false, 10 ** 9, life), false);
  const w = { ...life, delayWarningSec: 4 * 3600 };
  assert.equal(isWarningDue(m, false, 4 * 3600 * 1000 - 1001, w), false);
  assert.equal(isWarningDue(m, false, 4 * 3600 * 1000 - 1000, w), true);
  assert.equal(isWarningDue(m, true, 10 ** 9, w), false);
});
