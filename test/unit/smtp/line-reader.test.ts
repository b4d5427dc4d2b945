import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LINE_LENGTH_LIMIT, LineReader } from '../../../src/smtp/line-reader.ts';
import type { SmtpLine } from '../../../src/smtp/line-reader.ts';

const b = (s: string) => Buffer.from(s, 'latin1');

function drain(r: LineReader): Array<{ line: string; bareLf: boolean; bareCr: boolean; tooLong: boolean }> {
  const out = [];
  for (let l: SmtpLine | undefined = r.next(); l; l = r.next()) {
    out.push({ line: l.line.toString('latin1'), bareLf: l.bareLf, bareCr: l.bareCr, tooLong: l.tooLong });
  }
  return out;
}

function feed(chunks: Buffer[], max?: number) {
  const r = new LineReader(max === undefined ? {} : { maxLineLength: max });
  const out = [];
  for (const c of chunks) {
    r.push(c);
    out.push(...drain(r));
  }
  return { lines: out, reader: r };
}

test('CRLF lines, one at a time', () => {
  const r = new LineReader();
  r.push(b('EHLO client.example\r\nMAIL FROM:<a@b>\r\n'));
  assert.deepEqual(drain(r), [
    { line: 'EHLO client.example', bareLf: false, bareCr: false, tooLong: false },
    { line: 'MAIL FROM:<a@b>', bareLf: false, bareCr: false, tooLong: false },
  ]);
  assert.equal(r.next(), undefined);
  assert.equal(r.hasBufferedData(), false);
  assert.equal(DEFAULT_LINE_LENGTH_LIMIT, 2048);
});

test('bare LF ends a line and is flagged; bare CR stays in the line and is flagged', () => {
  assert.deepEqual(feed([b('QUIT\n')]).lines, [{ line: 'QUIT', bareLf: true, bareCr: false, tooLong: false }]);
  assert.deepEqual(feed([b('EH\rLO x\r\n')]).lines, [{ line: 'EH\rLO x', bareLf: false, bareCr: true, tooLong: false }]);
  assert.deepEqual(feed([b('\r\r\n')]).lines, [{ line: '\r', bareLf: false, bareCr: true, tooLong: false }]);
  assert.deepEqual(feed([b('\n\r\n')]).lines, [
    { line: '', bareLf: true, bareCr: false, tooLong: false },
    { line: '', bareLf: false, bareCr: false, tooLong: false },
  ]);
});

test('partial lines wait; CR and LF split across chunks still make CRLF', () => {
  const r = new LineReader();
  r.push(b('EHL'));
  assert.equal(r.next(), undefined);
  assert.equal(r.hasBufferedData(), true);
  assert.equal(r.bufferedLineCount(), 0);
  r.push(b('O x\r'));
  assert.equal(r.next(), undefined);
  r.push(b('\n'));
  assert.deepEqual(drain(r), [{ line: 'EHLO x', bareLf: false, bareCr: false, tooLong: false }]);
});

test('every split point of a command stream gives the same lines', () => {
  const wire = b('EHLO x\r\nMAIL FROM:<a@b>\nRCPT TO:<c\r@d>\r\n\r\nDATA\r\n');
  const whole = feed([wire]).lines;
  assert.equal(whole.length, 5);
  for (let i = 0; i <= wire.length; i++) {
    for (let j = i; j <= wire.length; j++) {
      assert.deepEqual(feed([wire.subarray(0, i), wire.subarray(i, j), wire.subarray(j)]).lines, whole, `split ${i}/${j}`);
    }
  }
});

test('over-long lines are cut to line_length_limit and the rest skipped (smtpd SMTP_GET_FLAG_SKIP)', () => {
  const want = [
    { line: '0123456789', bareLf: false, bareCr: false, tooLong: true },
    { line: 'NOOP', bareLf: false, bareCr: false, tooLong: false },
  ];
  const wire = b('0123456789ABCDEF\r\nNOOP\r\n');
  assert.deepEqual(feed([wire], 10).lines, want);
  assert.deepEqual(feed([...wire].map((c) => Buffer.from([c])), 10).lines, want);
  for (let i = 0; i <= wire.length; i++) {
    assert.deepEqual(feed([wire.subarray(0, i), wire.subarray(i)], 10).lines, want, `split ${i}`);
  }
});

test('a line of exactly the limit is not too long, even when its LF comes later', () => {
  const want = [{ line: '0123456789', bareLf: false, bareCr: false, tooLong: false }];
  assert.deepEqual(feed([b('0123456789\r\n')], 10).lines, want);
  assert.deepEqual(feed([b('0123456789\r'), b('\n')], 10).lines, want);
  assert.deepEqual(feed([b('0123456789'), b('\r'), b('\n')], 10).lines, want);
  assert.deepEqual(feed([b('01234567890\r\n')], 10).lines, [{ line: '0123456789', bareLf: false, bareCr: false, tooLong: true }]);
});

test('flags survive in skipped over-long lines', () => {
  const bareLf = feed([b('0123456789ABC'), b('DEF\n')], 10).lines;
  assert.deepEqual(bareLf, [{ line: '0123456789', bareLf: true, bareCr: false, tooLong: true }]);
  const crSplit = feed([b('0123456789ABC\r'), b('\n')], 10).lines;
  assert.deepEqual(crSplit, [{ line: '0123456789', bareLf: false, bareCr: false, tooLong: true }]);
  const bareCr = feed([b('0123456789A\rB'), b('C\r\n')], 10).lines;
  assert.deepEqual(bareCr, [{ line: '0123456789', bareLf: false, bareCr: true, tooLong: true }]);
  const crThenMore = feed([b('0123456789ABC\r'), b('X\r\n')], 10).lines;
  assert.deepEqual(crThenMore, [{ line: '0123456789', bareLf: false, bareCr: true, tooLong: true }]);
});

test('memory stays bounded by the limit however much a line carries', () => {
  const r = new LineReader({ maxLineLength: 100 });
  const big = Buffer.alloc(64 * 1024, 0x41);
  for (let i = 0; i < 16; i++) {
    r.push(big);
    assert.equal(r.next(), undefined);
    assert.ok(r.bufferedLength() <= 101, `buffered ${r.bufferedLength()}`);
  }
  r.push(b('\r\nQUIT\r\n'));
  const lines = drain(r);
  assert.equal(lines.length, 2);
  assert.equal(lines[0]?.line.length, 100);
  assert.equal(lines[0]?.tooLong, true);
  assert.equal(lines[1]?.line, 'QUIT');
});

test('RFC 3207 §6: plaintext pipelined behind STARTTLS is seen and discarded', () => {
  const r = new LineReader();
  r.push(b('STARTTLS\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\npart'));
  assert.equal(r.next()?.line.toString(), 'STARTTLS');
  assert.equal(r.hasBufferedData(), true);
  assert.equal(r.bufferedLineCount(), 2);
  assert.equal(r.bufferedLength(), 36);
  assert.equal(r.discard(), 36);
  assert.equal(r.hasBufferedData(), false);
  assert.equal(r.next(), undefined);
  // A clean STARTTLS leaves nothing behind.
  const c = new LineReader();
  c.push(b('STARTTLS\r\n'));
  c.next();
  assert.equal(c.hasBufferedData(), false);
  assert.equal(c.bufferedLineCount(), 0);
});

test('takeBuffered hands the raw bytes to the DATA reader', () => {
  const r = new LineReader();
  r.push(b('DATA\r\nSubject: x\r\n\r\nbody\n.\r\n'));
  assert.equal(r.next()?.line.toString(), 'DATA');
  assert.equal(r.takeBuffered().toString('latin1'), 'Subject: x\r\n\r\nbody\n.\r\n');
  assert.equal(r.hasBufferedData(), false);
  r.push(b('QUIT\r\n'));
  assert.equal(r.next()?.line.toString(), 'QUIT');
});

test('discard drops a half-skipped over-long line too; bad limits are refused', () => {
  const r = new LineReader({ maxLineLength: 4 });
  r.push(b('ABCDEFGH'));
  assert.equal(r.hasBufferedData(), true);
  r.discard();
  assert.equal(r.hasBufferedData(), false);
  r.push(b('OK\r\n'));
  assert.deepEqual(drain(r), [{ line: 'OK', bareLf: false, bareCr: false, tooLong: false }]);
  assert.throws(() => new LineReader({ maxLineLength: 0 }), RangeError);
});
