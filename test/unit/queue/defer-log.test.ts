import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeDelayRecord, parseDelayLog } from '../../../src/queue/defer-log.ts';

test('records are name=value lines ended by an empty line', () => {
  assert.equal(
    encodeDelayRecord({ index: 2, address: 'bob@example.com', status: '4.7.5', reason: 'Server certificate not verified' }),
    'recipient=bob@example.com\noffset=2\nstatus=4.7.5\naction=delayed\nreason=Server certificate not verified\n\n',
  );
});

test('the last record per recipient wins; an unfinished record is ignored', () => {
  const log =
    encodeDelayRecord({ index: 0, address: 'a@x', status: '4.4.1', reason: 'connect timeout' }) +
    encodeDelayRecord({ index: 1, address: 'b@x', status: '4.4.1', reason: 'first' }) +
    encodeDelayRecord({ index: 0, address: 'a@x', status: '4.7.5', reason: 'second' }) +
    'recipient=c@x\noffset=2\nreason=half';
  const m = parseDelayLog(log);
  assert.deepEqual([...m.keys()], [0, 1]);
  assert.equal(m.get(0)!.reason, 'second');
  assert.equal(m.get(0)!.status, '4.7.5');
  assert.equal(m.get(1)!.reason, 'first');
});

test('newlines in a reason cannot forge records', () => {
  const m = parseDelayLog(encodeDelayRecord({ index: 0, address: 'a@x', status: '4.0.0', reason: 'x\n\nrecipient=evil\noffset=5\nreason=y' }));
  assert.deepEqual([...m.keys()], [0]);
  assert.equal(m.get(0)!.reason, 'x recipient=evil offset=5 reason=y');
});
