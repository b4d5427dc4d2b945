import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ReplyParser,
  ReplyProtocolError,
  SmtpReply,
  formatReply,
  formatSmtpReply,
  parseReply,
  printable,
} from '../../../src/smtp/reply.ts';
import type { ReplyParseItem } from '../../../src/smtp/reply.ts';

function one(text: string): SmtpReply {
  const r = parseReply(text);
  assert.ok(r instanceof SmtpReply, `expected a reply, got ${JSON.stringify(r)}`);
  return r;
}

function err(items: ReplyParseItem[]): ReplyProtocolError {
  const e = items.find((i): i is ReplyProtocolError => i instanceof ReplyProtocolError);
  assert.ok(e, `expected a protocol error in ${JSON.stringify(items)}`);
  return e;
}

test('single-line reply with enhanced code: stripped from the text, kept in enhanced', () => {
  const r = one('250 2.0.0 Ok: queued as 3F2A81C0D2\r\n');
  assert.equal(r.code, 250);
  assert.equal(r.enhanced, '2.0.0');
  assert.deepEqual(r.lines, ['Ok: queued as 3F2A81C0D2']);
  assert.equal(r.text(), '250 2.0.0 Ok: queued as 3F2A81C0D2');
  assert.equal(r.message(), 'Ok: queued as 3F2A81C0D2');
  assert.equal(r.isPositive(), true);
  assert.equal(r.isTransient(), false);
  assert.equal(r.isPermanent(), false);
  assert.equal(r.dsn(), '2.0.0');
});

test('multi-line reply: joined with single spaces as Postfix logs it', () => {
  const wire =
    '550-5.1.1 The email account that you tried to reach does not exist.\r\n' +
    '550-5.1.1 Please try double-checking the recipient address.\r\n' +
    '550 5.1.1 https://support.example/NoSuchUser x1si\r\n';
  const r = one(wire);
  assert.equal(r.code, 550);
  assert.equal(r.enhanced, '5.1.1');
  assert.deepEqual(r.lines, [
    'The email account that you tried to reach does not exist.',
    'Please try double-checking the recipient address.',
    'https://support.example/NoSuchUser x1si',
  ]);
  assert.equal(
    r.text(),
    '550-5.1.1 The email account that you tried to reach does not exist. 550-5.1.1 Please try double-checking the recipient address. 550 5.1.1 https://support.example/NoSuchUser x1si',
  );
  assert.equal(r.isPermanent(), true);
});

test('no enhanced code: enhanced undefined, dsn() derives one', () => {
  const r = one('421 mx.example.com Service not available\r\n');
  assert.equal(r.enhanced, undefined);
  assert.equal(r.dsn(), '4.0.0');
  assert.equal(r.isTransient(), true);
  assert.deepEqual(r.lines, ['mx.example.com Service not available']);
  const i = one('354 End data with <CR><LF>.<CR><LF>\r\n');
  assert.equal(i.isIntermediate(), true);
  assert.equal(i.isPositive(), true);
  assert.equal(i.dsn(), undefined);
});

test('an enhanced code of another class is not taken (Postfix keeps it as text)', () => {
  const r = one('550 4.1.1 odd server\r\n');
  assert.equal(r.enhanced, undefined);
  assert.deepEqual(r.lines, ['4.1.1 odd server']);
  assert.equal(r.dsn(), '5.0.0');
});

test('code-only lines and empty continuation lines', () => {
  const r = one('250\r\n');
  assert.deepEqual(r.lines, ['']);
  assert.equal(r.text(), '250');
  const m = one('250-\r\n250-x\r\n250\r\n');
  assert.deepEqual(m.lines, ['', 'x', '']);
  assert.equal(m.text(), '250- 250-x 250');
  const e = one('250 2.0.0\r\n');
  assert.equal(e.enhanced, '2.0.0');
  assert.deepEqual(e.lines, ['']);
});

test('bare LF line ends are tolerated, like Postfix smtp_get()', () => {
  const p = new ReplyParser();
  const items = p.push(Buffer.from('220 mx ESMTP\n250-a\r\n250 b\n'));
  assert.equal(items.length, 2);
  assert.deepEqual((items[0] as SmtpReply).lines, ['mx ESMTP']);
  assert.deepEqual((items[1] as SmtpReply).lines, ['a', 'b']);
});

test('streaming: every split point of a pipelined reply stream gives the same replies', () => {
  const wire = Buffer.from('250 2.1.0 Ok\r\n250-2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n');
  const whole = new ReplyParser().push(wire).map((r) => (r as SmtpReply).text());
  assert.equal(whole.length, 3);
  for (let i = 0; i <= wire.length; i++) {
    for (const j of [i, Math.min(wire.length, i + 1), Math.min(wire.length, i + 7)]) {
      const p = new ReplyParser();
      const got = [...p.push(wire.subarray(0, i)), ...p.push(wire.subarray(i, j)), ...p.push(wire.subarray(j))];
      assert.deepEqual(got.map((r) => (r as SmtpReply).text()), whole, `split ${i}/${j}`);
      assert.equal(p.inReply, false);
    }
  }
});

test('byte-at-a-time feeding works', () => {
  const wire = Buffer.from('250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n');
  const p = new ReplyParser();
  const got: ReplyParseItem[] = [];
  for (const b of wire) got.push(...p.push(Buffer.from([b])));
  assert.equal(got.length, 1);
  assert.deepEqual((got[0] as SmtpReply).lines, ['mx.example.com', 'PIPELINING', 'SIZE 10240000']);
});

test('mismatched codes in a multi-line reply are a protocol error value', () => {
  const p = new ReplyParser();
  const e = err(p.push(Buffer.from('250-first\r\n251 second\r\n')));
  assert.equal(e.kind, 'code-mismatch');
  assert.equal(e.line, '251 second');
  assert.equal(p.poisoned, true);
  assert.deepEqual(p.push(Buffer.from('250 ok\r\n')), []);
});

test('malformed lines are protocol error values, never throws', () => {
  for (const bad of ['hello\r\n', '25 x\r\n', '2500 x\r\n', '250x\r\n', '250_x\r\n', '\r\n', ' 250 x\r\n', 'abc def\r\n']) {
    const e = err(new ReplyParser().push(Buffer.from(bad)));
    assert.equal(e.kind, 'malformed-line', JSON.stringify(bad));
  }
  for (const bad of ['100 x\r\n', '600 x\r\n', '000 x\r\n', '999 x\r\n']) {
    assert.equal(err(new ReplyParser().push(Buffer.from(bad))).kind, 'bad-code', bad);
  }
});

test('replies before an error are still returned, in order', () => {
  const items = new ReplyParser().push(Buffer.from('250 ok\r\nbogus\r\n250 later\r\n'));
  assert.equal(items.length, 2);
  assert.ok(items[0] instanceof SmtpReply);
  assert.ok(items[1] instanceof ReplyProtocolError);
});

test('line length limit: over-long lines are an error, even before the LF arrives', () => {
  const p = new ReplyParser({ maxLineLength: 10 });
  assert.equal(p.push(Buffer.from('250 123456')).length, 0); // exactly 10 octets, unterminated
  assert.deepEqual((p.push(Buffer.from('\r\n'))[0] as SmtpReply).lines, ['123456']);
  const q = new ReplyParser({ maxLineLength: 10 });
  assert.equal(err(q.push(Buffer.from('250 12345678'))).kind, 'line-too-long');
  const r = new ReplyParser({ maxLineLength: 10 });
  assert.equal(err(r.push(Buffer.from('250 1234567\r\n'))).kind, 'line-too-long');
  // The CR of CRLF does not count.
  const s = new ReplyParser({ maxLineLength: 10 });
  assert.ok(s.push(Buffer.from('250 123456\r'))[0] === undefined);
  assert.ok(s.push(Buffer.from('\n'))[0] instanceof SmtpReply);
});

test('maximum number of lines per reply', () => {
  const p = new ReplyParser({ maxLines: 3 });
  assert.ok(p.push(Buffer.from('250-a\r\n250-b\r\n250 c\r\n'))[0] instanceof SmtpReply);
  const e = err(p.push(Buffer.from('250-a\r\n250-b\r\n250-c\r\n250 d\r\n')));
  assert.equal(e.kind, 'too-many-lines');
});

test('finish() reports a reply cut off by the end of the stream', () => {
  const p = new ReplyParser();
  p.push(Buffer.from('250-a\r\n'));
  assert.equal(err(p.finish()).kind, 'incomplete');
  const q = new ReplyParser();
  q.push(Buffer.from('250 partial'));
  assert.equal(err(q.finish()).kind, 'incomplete');
  const r = new ReplyParser();
  r.push(Buffer.from('250 ok\r\n'));
  assert.deepEqual(r.finish(), []);
});

test('text() censors control characters as printable() does; UTF-8 text stays', () => {
  const r = one('550 5.7.1 bad\x01thing \u00e9t\u00e9\r\n');
  assert.equal(r.text(), '550 5.7.1 bad?thing \u00e9t\u00e9');
  assert.equal(printable('a\tb\x7fc'), 'a?b?c');
  const inv = new ReplyParser().push(Buffer.from([0x32, 0x35, 0x30, 0x20, 0xff, 0x0d, 0x0a]));
  assert.equal((inv[0] as SmtpReply).text(), '250 ?');
});

test('withCommand records the command and keeps everything else', () => {
  const r = one('250 2.1.5 Ok\r\n').withCommand('RCPT TO');
  assert.equal(r.command, 'RCPT TO');
  assert.equal(r.text(), '250 2.1.5 Ok');
  assert.ok(Object.isFrozen(r));
});

test('formatReply builds the wire form', () => {
  assert.equal(formatReply(250, '2.0.0', ['Ok: queued as ABC']), '250 2.0.0 Ok: queued as ABC\r\n');
  assert.equal(formatReply(250, undefined, 'Ok'), '250 Ok\r\n');
  assert.equal(formatReply(550, '5.7.1', ['a', 'b', 'c']), '550-5.7.1 a\r\n550-5.7.1 b\r\n550 5.7.1 c\r\n');
  assert.equal(formatReply(220, undefined, []), '220 \r\n');
  assert.equal(formatReply(250, '2.0.0', ['']), '250 2.0.0\r\n');
  assert.throws(() => formatReply(250, undefined, ['a\r\n250 injected']), RangeError);
  assert.throws(() => formatReply(250, undefined, ['a\nb']), RangeError);
  assert.throws(() => formatReply(99, undefined, ['x']), RangeError);
  assert.throws(() => formatReply(250.5, undefined, ['x']), RangeError);
});

test('format then parse round-trips', () => {
  const wire = formatReply(451, '4.3.0', ['Temporary lookup failure', 'try again']);
  const r = one(wire);
  assert.equal(r.code, 451);
  assert.equal(r.enhanced, '4.3.0');
  assert.deepEqual(r.lines, ['Temporary lookup failure', 'try again']);
  assert.equal(formatSmtpReply(r), wire);
  const built = new SmtpReply(250, ['a', 'b'], { enhanced: '2.0.0' });
  assert.equal(built.text(), '250-2.0.0 a 250 2.0.0 b');
});

test('golden: a real smtp-sink session parses into the expected replies at every split point', async () => {
  const { readFileSync } = await import('node:fs');
  const wire = readFileSync(new URL('../../golden/smtp/smtp-sink-session.in', import.meta.url));
  const ref = readFileSync(new URL('../../golden/smtp/smtp-sink-session.ref', import.meta.url), 'utf8').split('\n').slice(0, -1);
  for (let i = 0; i <= wire.length; i += 7) {
    const p = new ReplyParser();
    const got = [...p.push(wire.subarray(0, i)), ...p.push(wire.subarray(i)), ...p.finish()];
    assert.deepEqual(got.map((r) => (r instanceof SmtpReply ? r.text() : r.kind)), ref, `split ${i}`);
  }
});
