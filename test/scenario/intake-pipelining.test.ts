/**
 * Command pipelining: allowed after EHLO (PIPELINING), refused before EHLO and
 * after HELO (smtpd_forbid_unauth_pipelining), and plaintext pipelined behind
 * STARTTLS is discarded, never executed (RFC 3207 §6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../harness/cli.ts';
import { RawSmtp, startTestSmtpd } from '../harness/smtp-client.ts';
import { makePki } from '../harness/pki.ts';

test('after EHLO, a pipelined transaction gets every reply in order', async () => {
  const t = await startTestSmtpd();
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    c.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nRCPT TO:<c@localhost>\r\nDATA\r\n');
    assert.equal(await c.reply(), '250 2.1.0 Ok');
    assert.equal(await c.reply(), '250 2.1.5 Ok');
    assert.equal(await c.reply(), '250 2.1.5 Ok');
    assert.equal(await c.reply(), '354 End data with <CR><LF>.<CR><LF>');
    c.send('Subject: p\r\n\r\nx\r\n.\r\nQUIT\r\n');
    assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
    assert.equal(await c.reply(), '221 2.0.0 Bye');
    const [m] = await t.messages();
    assert.deepEqual(m!.envelope.recipients.map((r) => r.address), ['b@localhost', 'c@localhost']);
  } finally {
    await t.stop();
  }
});

test('unauthorised pipelining before EHLO: 554 5.5.0 and disconnect, logged', async () => {
  const t = await startTestSmtpd();
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    c.send('EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n');
    assert.equal(await c.reply(), '554 5.5.0 Error: SMTP protocol synchronization');
    assert.ok(await c.closed());
    assert.ok(t.log.lines.some((l) => l.includes('improper command pipelining after EHLO from unknown[127.0.0.1]: MAIL FROM:<a@example.org>')));
  } finally {
    await t.stop();
  }
});

test('unauthorised pipelining after HELO: refused; with smtpd_forbid_unauth_pipelining = no it works', async () => {
  const t = await startTestSmtpd();
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    assert.equal(await c.cmd('HELO client.example'), '250 mx.test.example');
    c.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\n');
    assert.equal(await c.reply(), '554 5.5.0 Error: SMTP protocol synchronization');
    assert.ok(await c.closed());
  } finally {
    await t.stop();
  }
  const t2 = await startTestSmtpd({ smtpd_forbid_unauth_pipelining: 'no' });
  try {
    const c = await RawSmtp.open(t2.port);
    await c.reply();
    await c.cmd('HELO client.example');
    c.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\n');
    assert.equal(await c.reply(), '250 2.1.0 Ok');
    assert.equal(await c.reply(), '250 2.1.5 Ok');
  } finally {
    await t2.stop();
  }
});

test('RFC 3207 §6: plaintext pipelined behind STARTTLS is discarded, not executed inside TLS', async () => {
  const pkiDir = tempDir('sealpost-pki-');
  const pki = makePki(pkiDir.dir);
  const t = await startTestSmtpd({ smtpd_tls_security_level: 'may', smtpd_tls_chain_files: pki.server.chain });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    const ehlo = await c.cmd('EHLO client.example');
    assert.match(ehlo, /250-STARTTLS/);
    assert.doesNotMatch(ehlo, /REQUIRETLS/);
    c.send('STARTTLS\r\nMAIL FROM:<injected@example.org>\r\nRCPT TO:<victim@localhost>\r\n');
    assert.equal(await c.reply(), '220 2.0.0 Ready to start TLS');
    await c.startTls();
    // The injected MAIL was dropped: the TLS session starts from scratch.
    assert.equal(await c.cmd('RCPT TO:<x@localhost>'), '503 5.5.1 Error: need MAIL command');
    const ehlo2 = await c.cmd('EHLO client.example');
    assert.doesNotMatch(ehlo2, /STARTTLS/);
    assert.match(ehlo2, /250-REQUIRETLS|250 REQUIRETLS/);
    assert.equal(await c.cmd('QUIT'), '221 2.0.0 Bye');
    assert.ok(t.log.lines.some((l) => /Anonymous TLS connection established from unknown\[127\.0\.0\.1\]: TLSv1\.3 with cipher \S+ \(\d+\/\d+ bits\)/.test(l)));
    assert.equal((await t.messages()).length, 0);
  } finally {
    await t.stop();
    pkiDir.cleanup();
  }
});
