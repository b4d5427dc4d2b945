import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QueueShape, shapeDomain } from '../../../src/reports/queue-shape.ts';

test('qshape domains: lower case, after the last @, dots collapsed and trimmed, MAILER-DAEMON for <>', () => {
  assert.equal(shapeDomain('User@Example.COM'), 'example.com');
  assert.equal(shapeDomain('"a@b"@x.example'), 'x.example');
  assert.equal(shapeDomain('u@.x..example.'), 'x.example');
  assert.equal(shapeDomain(''), 'MAILER-DAEMON');
  assert.equal(shapeDomain('localuser'), 'localuser');
});

test('buckets double from bucket_time (linear with -l), the last is open; headings as qshape prints them', () => {
  const now = 1_000_000;
  const s = new QueueShape({}, now);
  assert.deepEqual(s.headings(), ['T', '5', '10', '20', '40', '80', '160', '320', '640', '1280', '1280+']);
  assert.equal(s.bucket(now - 299), 1);
  assert.equal(s.bucket(now - 300), 2);
  assert.equal(s.bucket(now - 600), 3);
  assert.equal(s.bucket(now - 1_000_000), 10);
  const l = new QueueShape({ linear: true, bucketMinutes: 10, buckets: 4 }, now);
  assert.deepEqual(l.headings(), ['T', '10', '20', '30', '30+']);
  assert.equal(l.bucket(now - 25 * 60), 3);
  assert.deepEqual(new QueueShape({ buckets: 1 }, now).headings(), ['T', '0+']);
});

test('rows: TOTAL and domains by count then length; a name too long keeps its tail after "+"; no pending recipient, no count', () => {
  const s = new QueueShape({ buckets: 3 }, 10_000);
  assert.equal(s.add(9_000, 's@x', []), false);
  const long = `${'x'.repeat(60)}.example.com`;
  s.add(9_999, 's@x', [`a@${long}`, 'b@bb.example', 'c@bb.example']);
  const lines = s.render().split('\n');
  // Columns T, 5, 10, 10+ take 3+3+3+4 characters; the domain column is the other 67 of 80.
  assert.equal(lines[0], `${' '.repeat(67)}  T  5 10 10+`);
  assert.equal(lines[1], `${' '.repeat(62)}TOTAL  3  3  0   0`);
  assert.equal(lines[2], `${' '.repeat(57)}bb.example  2  2  0   0`);
  assert.equal(lines[3], `+${long.slice(long.length - 66)}  1  1  0   0`);
  assert.equal(lines[3]!.length, 80);
});
