/**
 * Internationalised mail at the listener, as Postfix's smtpd and cleanup treat it:
 * - a U-label domain is accepted with SMTPUTF8 and queued as received; an invalid U-label
 *   is `501 5.1.3 Bad recipient address syntax` / `501 5.1.7 Bad sender address syntax`
 *   with smtpd's and trivial-rewrite's (midna) warnings; with smtputf8_enable = no every
 *   non-ASCII domain is refused so;
 * - the Received: header says `with UTF8SMTP` (`UTF8SMTPS`, `UTF8SMTPA`, `UTF8SMTPSA`)
 *   when the client asked for SMTPUTF8 (RFC 6531 §3.7.3);
 * - smtputf8_autodetect_classes with `smtpd`: a message with a UTF-8 header is queued with
 *   the SMTPUTF8 flag although the client did not ask (not by default);
 * - a `Content-Transfer-Encoding: 8bit` header marks the message 8-bit
 *   (detect_8bit_encoding_header).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawSmtp, startTestSmtpd } from '../harness/smtp-client.ts';
import type { TestSmtpd } from '../harness/smtp-client.ts';

async function session(t: TestSmtpd): Promise<RawSmtp> {
  const c = await RawSmtp.open(t.port);
  await c.reply();
  await c.cmd('EHLO client.example');
  return c;
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');

test('U-label domains: valid ones queued with SMTPUTF8 and a UTF8SMTP Received:, invalid ones refused with Postfix\'s texts', async () => {
  const t = await startTestSmtpd({ mynetworks: '127.0.0.0/8' });
  try {
    const c = await session(t);
    c.send(utf8('MAIL FROM:<üser@bücher-.test> SMTPUTF8\r\n'));
    assert.equal(await c.reply(), '501 5.1.7 Bad sender address syntax');
    c.send(utf8('MAIL FROM:<üser@bücher.test> SMTPUTF8\r\n'));
    assert.equal(await c.reply(), '250 2.1.0 Ok');
    c.send(utf8('RCPT TO:<bob@-straße.test>\r\n'));
    assert.equal(await c.reply(), '501 5.1.3 Bad recipient address syntax');
    c.send(utf8('RCPT TO:<bob@bücher.xn--zz.test>\r\n'));
    assert.equal(await c.reply(), '501 5.1.3 Bad recipient address syntax', 'a fake A-label beside a U-label');
    // An all-ASCII name is not run through IDNA, fake A-label or not (valid_hostname() only).
    assert.equal(await c.cmd('RCPT TO:<carol@xn--zz.test>'), '250 2.1.5 Ok');
    c.send(utf8('RCPT TO:<bob@Straße.test>\r\n'));
    assert.equal(await c.reply(), '250 2.1.5 Ok');
    assert.equal(await c.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
    c.send(utf8('Subject: grüße\r\n\r\nbody\r\n.\r\n'));
    assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as /);
    await c.cmd('QUIT');
    const [m] = await t.messages();
    assert.equal(m!.envelope.sender, 'üser@bücher.test');
    assert.deepEqual(m!.envelope.recipients.map((r) => r.address), ['carol@xn--zz.test', 'bob@Straße.test']);
    assert.equal(m!.envelope.smtputf8, true);
    assert.match(m!.content.toString('utf8'), /^\tby mx\.test\.example \(sealpost\) with UTF8SMTP id \w+;\r$/m);
    const lines = t.log.lines.join('\n');
    assert.match(lines, /smtpd: warning: Illegal address syntax from unknown\[127\.0\.0\.1\] in MAIL command: <üser@bücher-\.test>/);
    assert.match(lines, /trivial-rewrite: warning: midna_domain_to_ascii_create: Problem translating domain "bücher-\.test" to ASCII form: UIDNA_ERROR_TRAILING_HYPHEN/);
    assert.match(lines, /trivial-rewrite: warning: midna_domain_to_ascii_create: Problem translating domain "-straße\.test" to ASCII form: UIDNA_ERROR_LEADING_HYPHEN/);
    assert.match(lines, /Problem translating domain "bücher\.xn--zz\.test" to ASCII form: UIDNA_ERROR_PUNYCODE/);
  } finally {
    await t.stop();
  }
});

test('smtputf8_enable = no: a non-ASCII domain is bad address syntax, the local part is not looked at', async () => {
  const t = await startTestSmtpd({ smtputf8_enable: 'no', mynetworks: '127.0.0.0/8' });
  try {
    const c = await session(t);
    c.send(utf8('MAIL FROM:<alice@bücher.test>\r\n'));
    assert.equal(await c.reply(), '501 5.1.7 Bad sender address syntax');
    c.send(utf8('MAIL FROM:<älice@sender.test>\r\n'));
    assert.equal(await c.reply(), '250 2.1.0 Ok');
    c.send(utf8('RCPT TO:<bob@bücher.test>\r\n'));
    assert.equal(await c.reply(), '501 5.1.3 Bad recipient address syntax');
  } finally {
    await t.stop();
  }
});

test('smtputf8_autodetect_classes: only with `smtpd` in it does a UTF-8 header ask for SMTPUTF8; 8bit encoding header noted', async () => {
  for (const [classes, expected] of [['sendmail, verify', false], ['smtpd', true], ['all', true]] as const) {
    const t = await startTestSmtpd({ smtputf8_autodetect_classes: classes });
    try {
      const c = await session(t);
      await c.cmd('MAIL FROM:<alice@sender.test>');
      await c.cmd('RCPT TO:<bob@localhost>');
      await c.cmd('DATA');
      c.send(utf8('Subject: grüße\r\nContent-Transfer-Encoding: 8bit\r\n\r\nbody\r\n.\r\n'));
      assert.match(await c.reply(), /^250 /);
      const [m] = await t.messages();
      assert.equal(m!.envelope.smtputf8, expected, classes);
      assert.equal(m!.envelope.eightBitMime, true);
      assert.match(m!.content.toString(), /with ESMTP id/, 'the client did not say SMTPUTF8');
    } finally {
      await t.stop();
    }
  }
});
