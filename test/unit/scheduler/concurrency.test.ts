/**
 * Unit tests for concurrency.ts and destination-queue.ts: slow start, feedback,
 * dead destinations, rate delay, FIFO order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrencyWindow, parseFeedback } from '../../../src/scheduler/concurrency.ts';
import { DestinationQueue } from '../../../src/scheduler/destination-queue.ts';

const base = { limit: 20, initial: 5, positive: 1, negative: 1, failedCohortLimit: 1 } as const;

test('feedback values: numbers, N/M and 1/concurrency', () => {
  assert.equal(parseFeedback('1'), 1);
  assert.equal(parseFeedback('0.5'), 0.5);
  assert.equal(parseFeedback('1/4'), 0.25);
  assert.equal(parseFeedback('1/concurrency'), 'window');
  assert.equal(parseFeedback('lots'), undefined);
});

test('slow start: initial window, +1 per success while in use, capped at the limit', () => {
  const w = new ConcurrencyWindow({ ...base, limit: 7 });
  assert.equal(w.window, 5);
  assert.equal(w.canStart(4), true);
  assert.equal(w.canStart(5), false);
  w.succeeded(5);
  assert.equal(w.window, 6);
  w.succeeded(5);
  assert.equal(w.window, 7);
  w.succeeded(7);
  assert.equal(w.window, 7, 'never above the limit');
});

test('no growth while the window is not used (window >= busy + initial)', () => {
  const w = new ConcurrencyWindow(base);
  for (let i = 0; i < 10; i++) w.succeeded(1);
  assert.equal(w.window, 6);
});

test('the initial window never exceeds the destination limit', () => {
  assert.equal(new ConcurrencyWindow({ ...base, limit: 2 }).window, 2);
});

test('failures: 1/window per failure accumulates into a failed cohort, then the destination is dead', () => {
  const w = new ConcurrencyWindow(base);
  // 1/5 + 1/4 + 1/3 = 0.78 < 1; + 1/2 ≥ 1
  assert.equal(w.failed(), false);
  assert.equal(w.window, 4);
  assert.equal(w.failed(), false);
  assert.equal(w.failed(), false);
  assert.equal(w.failed(), true);
  assert.equal(w.dead, true);
  assert.equal(w.canStart(0), false);
  w.revive();
  assert.equal(w.window, 5);
});

test('a success resets the failed cohort count', () => {
  const w = new ConcurrencyWindow({ ...base, initial: 1, limit: 1 });
  assert.equal(w.failed(), true, 'window 1: one failure is a full cohort');
  w.revive();
  const v = new ConcurrencyWindow({ ...base, initial: 2 });
  v.failed();
  v.succeeded(1);
  assert.equal(v.failed(), false);
});

test('destination queue: FIFO, window-limited, kill drains, revive restarts', () => {
  const q = new DestinationQueue<number>({ transport: 'smtp', nexthops: ['example.com'], fallbackRelays: [] }, { ...base, initial: 2, rateDelayMs: 0 });
  for (let i = 0; i < 5; i++) q.add(i);
  assert.equal(q.ready(0), true);
  assert.equal(q.take(0), 0);
  assert.equal(q.take(0), 1);
  assert.equal(q.ready(0), false, 'window 2 is full');
  assert.equal(q.complete(false), false);
  assert.equal(q.ready(0), true);
  assert.deepEqual(q.kill({ reason: 'connect to x: refused', dsn: '4.4.1' }, 1000), [2, 3, 4]);
  assert.equal(q.size, 0);
  q.add(9);
  q.revive();
  assert.equal(q.deadReason, undefined);
  assert.equal(q.take(5), 9);
  assert.equal(q.describe(), 'smtp:example.com');
});

test('destination queue: a rate delay allows one start per delay and one delivery at a time', () => {
  const q = new DestinationQueue<string>({ transport: 'smtp', nexthops: ['a'], fallbackRelays: [] }, { ...base, rateDelayMs: 1000 });
  q.add('x');
  q.add('y');
  assert.equal(q.take(100), 'x');
  q.complete(false);
  assert.equal(q.ready(500), false);
  assert.equal(q.nextStartAt(500), 1100);
  assert.equal(q.ready(1100), true);
});
