/**
 * A U-label recipient through the running daemon: `user@bücher.test` is routed by MX in its
 * A-label form (the lab DNS serves only `xn--bcher-kva.test` and is asked nothing else),
 * the delivery line names the MX host and the recipient as Postfix does, and:
 * - to a receiver with SMTPUTF8 the envelope goes out in UTF-8 with `SMTPUTF8`;
 * - to a receiver without it the message bounces `5.6.7`, as Postfix 3.11 does: the envelope
 *   needs UTF-8 and smtp(8) never rewrites an address into A-labels (RFC 6531 §3.2 leaves
 *   the choice to the sender; Postfix sends the address as it is or not at all).
 * A domain with no A-label form never reaches DNS: smtpd refuses it (`501 5.1.3`), and the
 * queue manager bounces it `5.1.3 bad address syntax` when it comes another way
 * (test/unit/scheduler/resolve.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RawSmtp } from '../harness/smtp-client.ts';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { qmgrLab } from './qmgr-lab.ts';

const zone = {
  'xn--bcher-kva.test': { MX: [[10, 'mx.xn--bcher-kva.test']] as Array<[number, string]> },
  'mx.xn--bcher-kva.test': { A: ['127.0.0.2'] },
  'xn--mller-kva.test': { MX: [[10, 'mx.xn--mller-kva.test']] as Array<[number, string]> },
  'mx.xn--mller-kva.test': { A: ['127.0.0.3'] },
};

async function submit(port: number, rcpt: string): Promise<string> {
  const c = await RawSmtp.open(port);
  try {
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal(await c.cmd('MAIL FROM:<sender@sender.example> SMTPUTF8'), '250 2.1.0 Ok');
    c.send(Buffer.from(`RCPT TO:<${rcpt}>\r\n`, 'utf8'));
    assert.equal(await c.reply(), '250 2.1.5 Ok');
    await c.cmd('DATA');
    c.send('Subject: idna\r\n\r\nhello\r\n.\r\n');
    const queued = /queued as (\w+)/.exec(await c.reply());
    assert.ok(queued);
    return queued[1]!;
  } finally {
    await c.cmd('QUIT').catch(() => '');
  }
}

test('a U-label recipient is routed by MX in its A-label form; SMTPUTF8 receiver gets UTF-8, the other one is never sent it', { timeout: 60_000 }, async () => {
  const [withUtf8, without] = await startReceivers([
    { host: '127.0.0.2', name: 'mx.xn--bcher-kva.test' },
    { host: '127.0.0.3', name: 'mx.xn--mller-kva.test', smtputf8: false },
  ]);
  const lab = await qmgrLab({ zone, receiverPort: withUtf8!.port, mainCf: ['bounce_notice_recipient = postmaster', 'notify_classes ='] });
  try {
    await lab.start();
    const port = Number(/^127\.0\.0\.1:(\d+) inet/m.exec(readFileSync(join(lab.configDir, 'master.cf'), 'utf8'))![1]);

    const id = await submit(port, 'user@bücher.test');
    await withUtf8!.waitForMessages(1, 15_000);
    const m = withUtf8!.messages[0]!;
    assert.deepEqual(m.rcptTo, ['user@bücher.test']);
    assert.match(m.mailParams, /\bSMTPUTF8\b/);
    const [sent] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${id}: to=<user@bücher\\.test>, relay=mx\\.xn--bcher-kva\\.test\\[127\\.0\\.0\\.2\\]:${withUtf8!.port}, .*status=sent`));
    assert.ok(sent);

    const id2 = await submit(port, 'user@müller.test');
    const [bounced] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${id2}: to=<user@müller\\.test>, relay=mx\\.xn--mller-kva\\.test\\[127\\.0\\.0\\.3\\]:\\d+, .*dsn=5\\.6\\.7, status=bounced \\(SMTPUTF8 is required, but was not offered by host mx\\.xn--mller-kva\\.test\\[127\\.0\\.0\\.3\\]\\)`));
    assert.ok(bounced);
    assert.equal(without!.messages.length, 0);
    assert.ok(!without!.transcript.some((l) => l.startsWith('C: RCPT')), without!.transcript.join('\n'));

    const c = await RawSmtp.open(port);
    await c.reply();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<sender@sender.example> SMTPUTF8');
    c.send(Buffer.from('RCPT TO:<user@bü--cher.test>\r\n', 'utf8'));
    assert.match(await c.reply(), /^501 5\.1\.3 /);
    await c.cmd('QUIT');

    // DNS saw A-labels only.
    const names = lab.dns.queries.map((q) => q.name);
    assert.ok(names.includes('xn--bcher-kva.test') && names.includes('xn--mller-kva.test'), names.join(' '));
    assert.ok(names.every((n) => /^[\x21-\x7e]+$/.test(n)), names.join(' '));
  } finally {
    await lab.cleanup();
    await Promise.all([withUtf8!.close(), without!.close()]);
  }
});
