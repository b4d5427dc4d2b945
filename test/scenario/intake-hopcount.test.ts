/**
 * hopcount_limit through the running daemon, as Postfix applies it (cleanup counts every
 * Received: header of the primary header, its own included, and stops at the limit):
 * - by SMTP the message is refused at the end of DATA: `554 5.4.0 Error: too many hops`,
 *   nothing queued, cleanup's warning logged; one hop fewer is accepted;
 * - by sendmail it is bounced: `cleanup: ID: to=<...>, relay=none, ..., dsn=5.4.0,
 *   status=bounced (too many hops)` and a non-delivery notice reaches the sender.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost } from '../harness/cli.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { qmgrLab } from './qmgr-lab.ts';

const zone = {
  'one.test': { MX: [[10, 'mx.one.test']] as Array<[number, string]> },
  'mx.one.test': { A: ['127.0.0.2'] },
  'sender.test': { MX: [[10, 'mx.sender.test']] as Array<[number, string]> },
  'mx.sender.test': { A: ['127.0.0.3'] },
};

const received = (n: number) => Array.from({ length: n }, (_, i) => `Received: from hop${i}.example by hop${i + 1}.example; Mon, 1 Dec 2026 00:00:00 +0000\r\n`).join('');

async function sendSmtp(port: number, hops: number): Promise<string> {
  const c = await RawSmtp.open(port);
  try {
    await c.reply();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<alice@sender.test>');
    await c.cmd('RCPT TO:<bob@one.test>');
    await c.cmd('DATA');
    c.send(`${received(hops)}Subject: loop\r\n\r\nbody\r\n.\r\n`);
    return await c.reply();
  } finally {
    await c.cmd('QUIT').catch(() => undefined);
  }
}

test('too many Received: headers: refused at the end of DATA by SMTP, bounced with 5.4.0 from sendmail', { timeout: 60_000 }, async () => {
  const [mx, home] = await startReceivers([{ name: 'mx.one.test' }, { name: 'mx.sender.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: mx!.port });
  try {
    await lab.start();
    const port = Number(/^127\.0\.0\.1:(\d+) inet/m.exec(readFileSync(join(lab.configDir, 'master.cf'), 'utf8'))![1]);
    // hopcount_limit = 50: 49 from the client plus ours is 50, too many.
    assert.equal(await sendSmtp(port, 49), '554 5.4.0 Error: too many hops');
    assert.match(await sendSmtp(port, 48), /^250 2\.0\.0 Ok: queued as /);
    const [warning] = await lab.waitLog(/^sealpost\/cleanup: warning: \w+: message rejected: hopcount exceeded$/);
    assert.ok(warning);
    await lab.waitLog(/^sealpost\/smtp: \w+: to=<bob@one\.test>, .*status=sent/);
    assert.equal(mx!.messages.length, 1, 'only the message within the limit was relayed');
    assert.equal((mx!.messages[0]!.data.toString().match(/^Received:/gm) ?? []).length, 49);

    const r = await sealpost(['sendmail', '-C', lab.configDir, '-f', 'alice@sender.test', 'bob@one.test'], {
      stdin: `${received(49)}Subject: local loop\n\nbody\n`,
      env: { PATH: process.env.PATH, MAIL_CONFIG: lab.configDir },
    });
    assert.equal(r.code, 0, r.stderr);
    const [line] = await lab.waitLog(/^sealpost\/cleanup: \w+: to=<bob@one\.test>, relay=none, delay=[\d.]+, delays=[\d.]+\/0\/0\/0, dsn=5\.4\.0, status=bounced \(too many hops\)$/);
    const id = /cleanup: (\w+):/.exec(line!)![1]!;
    assert.equal(lab.lines(new RegExp(`^sealpost/pickup: ${id}: uid=\\d+ from=<alice@sender\\.test>$`)).length, 1, lab.lines().join("\n"));
    assert.ok(lab.lines(new RegExp(`^sealpost/cleanup: warning: ${id}: message rejected: hopcount exceeded$`)).length === 1);
    await lab.waitLog(new RegExp(`^sealpost/bounce: ${id}: sender non-delivery notification: \\w+$`));
    await home!.waitForMessages(1, 15_000);
    const notice = home!.messages[0]!;
    assert.equal(notice.mailFrom, '');
    assert.deepEqual(notice.rcptTo, ['alice@sender.test']);
    const text = notice.data.toString();
    assert.match(text, /^Subject: Undelivered Mail Returned to Sender\r$/m);
    assert.match(text, /^Final-Recipient: rfc822; bob@one\.test\r$/m);
    assert.match(text, /^Status: 5\.4\.0\r$/m);
    assert.match(text, /^Diagnostic-Code: X-sealpost; too many hops\r$/m);
    assert.match(text, /<bob@one\.test>: too many hops/);
    assert.match(text, /Subject: local loop/);
    assert.equal(mx!.messages.length, 1, 'the looping local message was not relayed');
    assert.equal(lab.spool.list('maildrop').length, 0);
  } finally {
    await lab.cleanup();
    await Promise.all([mx!.close(), home!.close()]);
  }
});
