import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseEnvelope, CleanupFilter, finalEnvelope, normaliseRecipients, qualify } from '../../../src/intake/cleanup.ts';
import { formatReceived } from '../../../src/message/received.ts';
import type { CleanupSettings, Transaction } from '../../../src/intake/cleanup.ts';

const s: CleanupSettings = { myorigin: 'example.org', myhostname: 'mx.example.org', mailName: 'sealpost', tlsRequiredEnable: true, addMissingHeaders: true };
const t: Transaction = {
  sender: 'alice',
  recipients: [{ address: 'bob' }, { address: 'BOB@example.org' }, { address: 'bob@example.org', notify: ['NEVER'] }, { address: 'carol@x.example' }],
  smtputf8: false,
  eightBitMime: false,
  requireTls: false,
  arrival: new Date(Date.UTC(2026, 10, 28, 12, 0, 0)),
  client: { name: 'unknown', address: '192.0.2.1' },
};

test('qualify: $myorigin is appended to bare local parts only', () => {
  assert.equal(qualify('u', 'ex.org'), 'u@ex.org');
  assert.equal(qualify('u@x', 'ex.org'), 'u@x');
  assert.equal(qualify('', 'ex.org'), '');
});

test('normaliseRecipients: duplicates (case-insensitive, same DSN) dropped, first kept; other DSN params kept apart', () => {
  const r = normaliseRecipients(t.recipients, 'example.org');
  assert.deepEqual(
    r.map((x) => [x.address, x.notify]),
    [
      ['bob@example.org', undefined],
      ['bob@example.org', ['NEVER']],
      ['carol@x.example', undefined],
    ],
  );
  assert.equal(r[0]!.origAddress, 'bob');
});

/** Run the filter over `data` cut into pieces of `step` bytes. */
function run(data: Buffer, settings: CleanupSettings = s, tr: Transaction = t, id = 'ABC123', step = data.length || 1) {
  const base = baseEnvelope(tr, settings);
  const received = formatReceived({ ...ctx.received, queueId: id, recipients: base.recipients.map((r) => r.address), date: tr.arrival });
  const f = new CleanupFilter(base, id, [received], settings);
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += step) out.push(...f.push(data.subarray(i, i + step)));
  out.push(...f.end());
  const facts = f.facts();
  return { content: Buffer.concat(out), facts, messageId: facts.messageId, envelope: finalEnvelope(base, facts, settings) };
}

const ctx = { received: { helo: 'h.example', clientName: 'unknown', clientAddress: '192.0.2.1', myhostname: 'mx.example.org', mailName: 'sealpost', protocol: 'ESMTP' } };

test('envelope: sender qualified, TLS-Required: No noted only when enabled', () => {
  const data = Buffer.from('TLS-Required: no\r\n\r\nx\r\n');
  assert.equal(run(data).envelope.sender, 'alice@example.org');
  assert.equal(run(data).envelope.tlsRequiredNo, true);
  assert.equal(run(data, { ...s, tlsRequiredEnable: false }).envelope.tlsRequiredNo, false);
  assert.equal(run(Buffer.from('Subject: x\r\n\r\n')).envelope.tlsRequiredNo, false);
});

test('content: Received first; missing From/Date/Message-Id appended when allowed', () => {
  const data = Buffer.from('Subject: x\r\n\r\nbody\r\n');
  const { content, messageId } = run(data);
  const text = content.toString();
  assert.match(text, /^Received: from h\.example \(unknown \[192\.0\.2\.1\]\)\r\n\tby mx\.example\.org \(sealpost\) with ESMTP id ABC123;\r\n/);
  assert.match(text, /\r\nSubject: x\r\nFrom: alice@example\.org\r\nDate: .+\r\nMessage-Id: <\d{14}\.ABC123@mx\.example\.org>\r\n\r\nbody\r\n$/);
  assert.match(messageId, /^<\d{14}\.ABC123@mx\.example\.org>$/);
});

test('content: nothing added for remote clients (local_header_rewrite_clients); existing Message-ID reported', () => {
  const { content, messageId } = run(Buffer.from('Message-ID: <m@x>\r\n\r\nbody\r\n'), { ...s, addMissingHeaders: false });
  assert.doesNotMatch(content.toString(), /^(From|Date):/m);
  assert.equal(messageId, '<m@x>');
});

test('content: the null sender becomes From: MAILER-DAEMON', () => {
  const { content } = run(Buffer.from('Subject: x\r\n\r\n'), s, { ...t, sender: '' });
  assert.match(content.toString(), /\r\nFrom: MAILER-DAEMON\r\n/);
});

test('content: the same bytes whatever the chunking; a header without separator or without a final line end', () => {
  const cases = [
    'Subject: x\r\nX-Long: a\r\n b\r\n\r\nbody\r\n\r\n.\r\nmore\r\n',
    'Subject: x\r\nnot a header line\r\nbody\r\n', // the header ends at the first non-header line
    'Subject: x', // no line end at all
    '', // empty content
    ' leading blank\r\nSubject: y\r\n\r\n', // a continuation without a field: the body starts at once
    'Subject : obsolete\r\n\r\nb\r\n', // RFC 5322 §4.5 "name :"
  ];
  for (const c of cases) {
    const whole = run(Buffer.from(c)).content;
    for (const step of [1, 2, 3, 7]) assert.deepEqual(run(Buffer.from(c), s, t, 'ABC123', step).content, whole, `${JSON.stringify(c)} in pieces of ${step}`);
  }
  assert.match(run(Buffer.from('Subject: x\r\nnot a header line\r\nbody\r\n')).content.toString(), /Subject: x\r\nFrom: [^\r]*\r\nDate: [^\r]*\r\nMessage-Id: [^\r]*\r\n\r\nnot a header line\r\nbody\r\n$/);
  assert.match(run(Buffer.from('Subject: x')).content.toString(), /Subject: x\r\nFrom: [^\r]*\r\nDate: [^\r]*\r\nMessage-Id: [^\r]*\r\n$/);
  assert.match(run(Buffer.from(' leading blank\r\nSubject: y\r\n\r\n')).content.toString(), /\)\r\nFrom: [^\r]*\r\nDate: [^\r]*\r\nMessage-Id: [^\r]*\r\n\r\n leading blank\r\nSubject: y\r\n\r\n$/);
  assert.equal(run(Buffer.from('Subject : obsolete\r\n\r\nb\r\n')).facts.hops, 1);
});

test('cleanup_replace_stray_cr_lf: every stray CR or LF becomes a space, in every end-of-DATA smuggling shape', () => {
  for (const shape of ['\r.\r', '\r.\r\n', '\r\n.\r', '\n.\r', '\r.\n', '\n.\n', '\n.\r\n', '\r\n.\n']) {
    const data = Buffer.from(`Subject: x\r\n\r\nfirst${shape}MAIL FROM:<evil@example.org>\r\n`);
    for (const step of [1, 2, 1000]) {
      const { content, facts } = run(data, s, t, 'ID', step);
      const body = content.subarray(content.indexOf('\r\n\r\n') + 4).toString('latin1');
      assert.doesNotMatch(body.replace(/\r\n/g, ''), /[\r\n]/, `${JSON.stringify(shape)}: only CRLF line ends remain`);
      assert.ok(facts.strayReplaced > 0);
    }
  }
  const kept = run(Buffer.from('Subject: x\r\n\r\na\rb\r\n'), { ...s, replaceStrayCrLf: false }).content;
  assert.ok(kept.includes(Buffer.from('a\rb\r\n')));
  assert.ok(run(Buffer.from('Subject: x\r\n\r\na\rb\r\n')).content.includes(Buffer.from('a b\r\n')));
  assert.ok(run(Buffer.from('Subject: x\r\n\r\nab\r')).content.toString().endsWith('ab '));
});

test('hop count: every primary Received: plus ours; hopcount_limit or more is too many (nested ones do not count)', () => {
  const hdr = (n: number) => 'Received: from a by b\r\n'.repeat(n);
  assert.equal(run(Buffer.from(`${hdr(48)}Subject: x\r\n\r\nb\r\n`)).facts.hops, 49);
  assert.equal(run(Buffer.from(`${hdr(48)}Subject: x\r\n\r\nb\r\n`)).facts.tooManyHops, false);
  assert.equal(run(Buffer.from(`${hdr(49)}Subject: x\r\n\r\nb\r\n`)).facts.tooManyHops, true);
  assert.equal(run(Buffer.from(`Subject: x\r\n\r\n${hdr(60)}`)).facts.hops, 1);
  assert.equal(run(Buffer.from(`${hdr(4)}\r\n`), { ...s, hopcountLimit: 5 }).facts.tooManyHops, true);
});

test('SMTPUTF8 autodetection and 8-bit detection from the primary header', () => {
  const auto = { ...s, autodetectSmtputf8: true };
  assert.equal(run(Buffer.from('Subject: caf\xc3\xa9\r\n\r\nb\r\n', 'latin1'), auto).envelope.smtputf8, true);
  assert.equal(run(Buffer.from('Subject: caf\xc3\xa9\r\n\r\nb\r\n', 'latin1')).envelope.smtputf8, false); // smtpd is not in the default classes
  assert.equal(run(Buffer.from('Subject: x\r\n\r\nb\xc3\xa9\r\n', 'latin1'), auto).envelope.smtputf8, false); // the body does not count
  assert.equal(run(Buffer.from('Subject: x\r\n\r\n'), auto, { ...t, recipients: [{ address: 'bö@x.example' }] }).envelope.smtputf8, true);
  assert.equal(run(Buffer.from('Content-Transfer-Encoding: 8bit\r\n\r\nb\r\n')).envelope.eightBitMime, true);
  assert.equal(run(Buffer.from('Content-Transfer-Encoding: 8bit\r\n\r\nb\r\n'), { ...s, detect8BitEncodingHeader: false }).envelope.eightBitMime, false);
  assert.equal(run(Buffer.from('Content-Transfer-Encoding: quoted-printable\r\n\r\nb\r\n')).envelope.eightBitMime, false);
});
