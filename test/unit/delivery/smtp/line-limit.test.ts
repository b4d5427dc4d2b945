import { test } from 'node:test';
import assert from 'node:assert/strict';
import { breakLongLines, hasLongLine } from '../../../../src/delivery/smtp/line-limit.ts';

test('short lines are untouched and not copied', () => {
  const b = Buffer.from(`Subject: x\r\n\r\n${'a'.repeat(998)}\r\nend`);
  assert.equal(hasLongLine(b, 998), false);
  assert.equal(breakLongLines(b, 998), b);
  assert.equal(breakLongLines(Buffer.from('x'.repeat(5000)), 0).length, 5000);
});

test('a long line is cut into limit-octet pieces, continuations start with a space (Postfix smtp_text_out)', () => {
  const out = breakLongLines(Buffer.from(`A: ${'b'.repeat(22)}\r\nnext\n`), 10);
  assert.equal(out.toString(), 'A: bbbbbbb\r\n bbbbbbbbb\r\n bbbbbb\r\nnext\n');
  for (const line of out.toString().split(/\r?\n/)) assert.ok(line.length <= 10);
});

test('a long last line without a line end', () => {
  assert.equal(breakLongLines(Buffer.from('0123456789abc'), 10).toString(), '0123456789\r\n abc');
});
