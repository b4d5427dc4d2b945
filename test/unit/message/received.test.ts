import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReceived, mailDate, rfcAddress, withKeyword } from '../../../src/message/received.ts';

const base = {
  helo: 'client.example',
  clientName: 'unknown',
  clientAddress: '192.0.2.1',
  myhostname: 'mx.example.org',
  mailName: 'sealpost',
  protocol: 'ESMTP',
  queueId: '3F2A81C0B4',
  date: new Date(Date.UTC(2026, 10, 8, 12, 0, 0)),
};

test('mailDate: Postfix mail_date() shape, day space-padded', () => {
  assert.equal(mailDate(base.date, true), 'Sun,  8 Nov 2026 12:00:00 +0000 (UTC)');
});

test('Received: one recipient gets "for <rcpt>"', () => {
  assert.equal(
    formatReceived({ ...base, recipients: ['bob@example.org'] }, true),
    'Received: from client.example (unknown [192.0.2.1])\n\tby mx.example.org (sealpost) with ESMTP id 3F2A81C0B4\n\tfor <bob@example.org>; Sun,  8 Nov 2026 12:00:00 +0000 (UTC)',
  );
});

test('Received: several recipients, TLS comment, IPv6 literal, no HELO', () => {
  const r = formatReceived(
    { ...base, helo: undefined, clientAddress: '2001:db8::1', recipients: ['a@x', 'b@x'], tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', bits: 256, algBits: 256 } },
    true,
  );
  assert.equal(
    r,
    'Received: from unknown (unknown [IPv6:2001:db8::1])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n\t(No client certificate requested)\n\tby mx.example.org (sealpost) with ESMTP id 3F2A81C0B4;\n\tSun,  8 Nov 2026 12:00:00 +0000 (UTC)',
  );
  assert.equal(rfcAddress('192.0.2.1'), '192.0.2.1');
});

test('Received: a local part that needs quoting is quoted in "for"', () => {
  assert.match(formatReceived({ ...base, recipients: ['a b@x'] }, true), /for <"a b"@x>;/);
});

test('RFC 6531 §3.7.3 with-keywords: UTF8SMTP plus RFC 3848 S and A, only for ESMTP (smtpd.c)', () => {
  assert.equal(withKeyword('ESMTP', true), 'UTF8SMTP');
  assert.equal(withKeyword('ESMTPS', true), 'UTF8SMTPS');
  assert.equal(withKeyword('ESMTPA', true), 'UTF8SMTPA');
  assert.equal(withKeyword('ESMTPSA', true), 'UTF8SMTPSA');
  assert.equal(withKeyword('ESMTPSA', false), 'ESMTPSA');
  assert.equal(withKeyword('SMTP', true), 'SMTP');
});
