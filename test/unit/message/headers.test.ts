import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findHeader, parseHeaders, withHeaders } from '../../../src/message/headers.ts';

test('parseHeaders: folded fields, separator, case-insensitive find', () => {
  const c = Buffer.from('Subject: a\r\n  b\r\nFrom: x@y\r\n\r\nbody\r\n');
  const h = parseHeaders(c);
  assert.equal(h.fields.length, 2);
  assert.equal(findHeader(h, 'subject')!.value, 'a  b');
  assert.equal(h.hasSeparator, true);
  assert.equal(c.subarray(h.end).toString(), '\r\nbody\r\n');
});

test('parseHeaders: a non-header line starts the body (no separator)', () => {
  const h = parseHeaders(Buffer.from('Subject: a\nthis is body\n'));
  assert.equal(h.fields.length, 1);
  assert.equal(h.hasSeparator, false);
});

test('withHeaders: prepend and append without re-encoding the rest', () => {
  const raw = Buffer.from('Subject: \xe9\r\n\r\nbody\r\n', 'latin1');
  const out = withHeaders(raw, ['Received: x\n\tby y'], ['Date: now']);
  assert.equal(out.toString('latin1'), 'Received: x\r\n\tby y\r\nSubject: \xe9\r\nDate: now\r\n\r\nbody\r\n');
});

test('withHeaders: body without header gets a separator before it; header-only content gets a line end', () => {
  assert.equal(withHeaders(Buffer.from('just body\r\n'), [], ['Date: d']).toString(), 'Date: d\r\n\r\njust body\r\n');
  assert.equal(withHeaders(Buffer.from('Subject: s'), [], ['Date: d']).toString(), 'Subject: s\r\nDate: d\r\n');
});
