import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { installSignals, signalNumber } from '../../../src/daemon/signals.ts';

test('a running reload finishes before the stop; pending reloads are dropped; stop runs once; a second stop forces; uninstall removes handlers', async () => {
  const src = new EventEmitter();
  const events: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const off = installSignals(
    {
      reload: async () => {
        events.push('reload start');
        await gate;
        events.push('reload end');
      },
      stop: async (s) => void events.push(`stop ${s}`),
      forceStop: (s) => void events.push(`force ${s}`),
    },
    src,
  );
  src.emit('SIGHUP');
  await new Promise((r) => setImmediate(r));
  src.emit('SIGHUP');
  src.emit('SIGTERM');
  src.emit('SIGINT');
  src.emit('SIGHUP');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(events, ['reload start', 'force SIGINT']);
  release();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(events, ['reload start', 'force SIGINT', 'reload end', 'stop SIGTERM']);
  off();
  assert.equal(src.listenerCount('SIGHUP') + src.listenerCount('SIGTERM') + src.listenerCount('SIGINT'), 0);
  assert.equal(signalNumber('SIGTERM'), 15);
  assert.equal(signalNumber('SIGINT'), 2);
});
