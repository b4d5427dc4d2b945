/**
 * outbox.test.ts — messages to a thread posted in one event-loop turn travel
 * as one message, in order (delivery/hosting/outbox.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox } from '../../../../src/delivery/hosting/outbox.ts';

test('items of one turn go as one batch, in order; a lone item goes as itself', async () => {
  const sent: unknown[] = [];
  const port = { postMessage: (m: unknown) => sent.push(m) };
  const box = new Outbox();
  box.post(port, { n: 1 });
  box.post(port, { n: 2 });
  box.post(port, { n: 3 });
  assert.deepEqual(sent, [], 'nothing is posted before the turn ends');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent, [{ kind: 'batch', items: [{ n: 1 }, { n: 2 }, { n: 3 }] }]);
  box.post(port, { n: 4 });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent[1], { n: 4 });
});

test('a new target gets its own message; flush() posts at once', () => {
  const a: unknown[] = [];
  const b: unknown[] = [];
  const box = new Outbox();
  box.post({ postMessage: (m: unknown) => a.push(m) }, 'x');
  box.post({ postMessage: (m: unknown) => b.push(m) }, 'y');
  assert.deepEqual(a, ['x']);
  box.flush();
  assert.deepEqual(b, ['y']);
});
