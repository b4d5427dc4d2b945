import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildContent, buildEnvelope, normaliseRecipients, qualify } from '../../../src/intake/cleanup.ts';
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

test('buildEnvelope: sender qualified, TLS-Required: No noted only when enabled', () => {
  const data = Buffer.from('TLS-Required: no\r\n\r\nx\r\n');
  assert.equal(buildEnvelope(t, data, s).sender, 'alice@example.org');
  assert.equal(buildEnvelope(t, data, s).tlsRequiredNo, true);
  assert.equal(buildEnvelope(t, data, { ...s, tlsRequiredEnable: false }).tlsRequiredNo, false);
  assert.equal(buildEnvelope(t, Buffer.from('Subject: x\r\n\r\n'), s).tlsRequiredNo, false);
});

const ctx = { received: { helo: 'h.example', clientName: 'unknown', clientAddress: '192.0.2.1', myhostname: 'mx.example.org', mailName: 'sealpost', protocol: 'ESMTP' } };

test('buildContent: Received first; missing From/Date/Message-Id appended when allowed', () => {
  const data = Buffer.from('Subject: x\r\n\r\nbody\r\n');
  const env = buildEnvelope(t, data, s);
  const { content, messageId } = buildContent(data, env, t, ctx, s, 'ABC123');
  const text = content.toString();
  assert.match(text, /^Received: from h\.example \(unknown \[192\.0\.2\.1\]\)\r\n\tby mx\.example\.org \(sealpost\) with ESMTP id ABC123;\r\n/);
  assert.match(text, /\r\nSubject: x\r\nFrom: alice@example\.org\r\nDate: .+\r\nMessage-Id: <\d{14}\.ABC123@mx\.example\.org>\r\n\r\nbody\r\n$/);
  assert.match(messageId!, /^<\d{14}\.ABC123@mx\.example\.org>$/);
});

test('buildContent: nothing added for remote clients (local_header_rewrite_clients); existing Message-ID reported', () => {
  const data = Buffer.from('Message-ID: <m@x>\r\n\r\nbody\r\n');
  const env = buildEnvelope(t, data, s);
  const { content, messageId } = buildContent(data, env, t, ctx, { ...s, addMissingHeaders: false }, 'ID1');
  assert.doesNotMatch(content.toString(), /^(From|Date):/m);
  assert.equal(messageId, '<m@x>');
});

test('buildContent: the null sender becomes From: MAILER-DAEMON', () => {
  const t0 = { ...t, sender: '' };
  const data = Buffer.from('Subject: x\r\n\r\n');
  const { content } = buildContent(data, buildEnvelope(t0, data, s), t0, ctx, s, 'ID');
  assert.match(content.toString(), /\r\nFrom: MAILER-DAEMON\r\n/);
});
