/**
 * A notice keeps the flags of the message it reports on (Postfix's bounce daemon posts it
 * with the original's sendopts): a bounce of mail from a UTF-8 sender that asked for
 * SMTPUTF8 is sent to that sender with `SMTPUTF8` on MAIL FROM (RFC 6531 forbids a UTF-8
 * RCPT TO without it) and `BODY=8BITMIME` (the notice is 8bit).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RawSmtp } from '../harness/smtp-client.ts';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { qmgrLab } from './qmgr-lab.ts';

const zone = {
  'one.test': { MX: [[10, 'mx.one.test']] as Array<[number, string]> },
  'mx.one.test': { A: ['127.0.0.2'] },
  'sender.test': { MX: [[10, 'mx.sender.test']] as Array<[number, string]> },
  'mx.sender.test': { A: ['127.0.0.3'] },
};

test('a bounce to a UTF-8 sender carries SMTPUTF8 and BODY=8BITMIME', { timeout: 60_000 }, async () => {
  const [mx, home] = await startReceivers([{ name: 'mx.one.test', replies: { rcpt: () => '550 5.1.1 no such user' } }, { name: 'mx.sender.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: mx!.port });
  try {
    await lab.start();
    const port = Number(/^127\.0\.0\.1:(\d+) inet/m.exec(readFileSync(join(lab.configDir, 'master.cf'), 'utf8'))![1]);
    const c = await RawSmtp.open(port);
    await c.reply();
    await c.cmd('EHLO client.example');
    c.send(Buffer.from('MAIL FROM:<üser@sender.test> SMTPUTF8\r\n', 'utf8'));
    assert.equal(await c.reply(), '250 2.1.0 Ok');
    assert.equal(await c.cmd('RCPT TO:<bob@one.test>'), '250 2.1.5 Ok');
    await c.cmd('DATA');
    c.send(Buffer.from('Subject: grüße\r\n\r\nbody\r\n.\r\n', 'utf8'));
    assert.match(await c.reply(), /^250 /);
    await c.cmd('QUIT');
    await lab.waitLog(/sender non-delivery notification: \w+$/);
    await home!.waitForMessages(1, 15_000);
    const notice = home!.messages[0]!;
    assert.equal(notice.mailFrom, '');
    assert.deepEqual(notice.rcptTo, ['üser@sender.test']);
    assert.match(notice.mailParams, /\bSMTPUTF8\b/);
    assert.match(notice.mailParams, /\bBODY=8BITMIME\b/);
    assert.match(notice.data.toString('utf8'), /^Final-Recipient: rfc822; bob@one\.test\r$/m);
    assert.match(notice.data.toString('utf8'), /Content-Type: message\/global-delivery-status/);
  } finally {
    await lab.cleanup();
    await Promise.all([mx!.close(), home!.close()]);
  }
});
