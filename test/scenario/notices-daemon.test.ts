/**
 * notices-daemon — delivery status notifications through the running daemon,
 * asserted on what the sender's MX receives:
 * - a 5xx with RET=HDRS, ENVID and ORCPT: the notice carries
 *   Original-Envelope-Id, Original-Recipient and only the returned headers;
 * - NOTIFY=NEVER: no notice at all;
 * - a bounce of a bounce: a message from <> that bounces gets no notice;
 * - delay_warning_time: one "Delayed Mail (still being retried)" notice,
 *   while the message stays queued.
 */
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { SmtpClient } from '../unit/daemon/fixtures/instance.ts';
import { qmgrLab, type QmgrLab } from './qmgr-lab.ts';

const zone = {
  'one.test': { MX: [[10, 'mx.one.test']] as Array<[number, string]> },
  'mx.one.test': { A: ['127.0.0.2'] },
  'sender.test': { MX: [[10, 'mx.sender.test']] as Array<[number, string]> },
  'mx.sender.test': { A: ['127.0.0.3'] },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One SMTP transaction with ESMTP parameters; returns the queue ID. */
async function submitRaw(port: number, mail: string, rcpts: readonly string[], body: string): Promise<string> {
  const { client } = await SmtpClient.connect(port);
  try {
    await client.cmd('EHLO client.example');
    assert.match(await client.cmd(`MAIL FROM:${mail}`), /^250/);
    for (const r of rcpts) assert.match(await client.cmd(`RCPT TO:${r}`), /^250/);
    assert.match(await client.cmd('DATA'), /^354/);
    const reply = await client.cmd(`${body}\r\n.`);
    const m = /queued as ([0-9A-Za-z]+)/.exec(reply);
    assert.ok(m, reply);
    return m[1]!;
  } finally {
    client.close();
  }
}

/** The lab's SMTP listener port, from its master.cf. */
function listenerPort(lab: QmgrLab): number {
  return Number(/^127\.0\.0\.1:(\d+) inet/m.exec(readFileSync(join(lab.configDir, 'master.cf'), 'utf8'))![1]);
}

test('a bounce honours RET=HDRS, ENVID and ORCPT; NOTIFY=NEVER sends none; a bounce is never bounced', async () => {
  const [mx, home] = await startReceivers([{ name: 'mx.one.test', replies: { rcpt: () => '550 5.1.1 no such user' } }, { name: 'mx.sender.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: mx!.port });
  try {
    await lab.start();
    const port = listenerPort(lab);
    const body = 'Subject: secret subject\r\nX-Marker: headers-only\r\n\r\nthe body must not come back\r\n';
    const a = await submitRaw(port, '<alice@sender.test> RET=HDRS ENVID=env-42', ['<bob@one.test> NOTIFY=FAILURE ORCPT=rfc822;bob@original.test'], body);
    const b = await submitRaw(port, '<alice@sender.test>', ['<carol@one.test> NOTIFY=NEVER'], body);
    const c = await submitRaw(port, '<>', ['<dave@one.test>'], body);
    for (const [id, rcpt] of [[a, 'bob'], [b, 'carol'], [c, 'dave']] as const) {
      await lab.waitLog(new RegExp(`^sealpost/smtp: ${id}: to=<${rcpt}@one\\.test>, .*dsn=5\\.1\\.1, status=bounced \\(host mx\\.one\\.test\\[127\\.0\\.0\\.2\\] said: 550 5\\.1\\.1 no such user \\(in reply to RCPT TO command\\)\\)$`));
      await lab.waitLog(new RegExp(`^sealpost/qmgr: ${id}: removed$`));
    }
    await home!.waitForMessages(1, 5000);
    await sleep(500); // nothing else may arrive
    assert.equal(home!.messages.length, 1, 'one notice: not for NOTIFY=NEVER, not for the bounce from <>');
    assert.equal(lab.lines(/sender non-delivery notification/).length, 1);
    const notice = home!.messages[0]!;
    assert.equal(notice.mailFrom, '');
    assert.deepEqual(notice.rcptTo, ['alice@sender.test']);
    const text = notice.data.toString('utf8');
    assert.match(text, /^Original-Envelope-Id: env-42\r?$/m);
    assert.match(text, /^Original-Recipient: rfc822; ?bob@original\.test\r?$/m);
    assert.match(text, /^Final-Recipient: rfc822; ?bob@one\.test\r?$/m);
    assert.match(text, /^Action: failed\r?$/m);
    assert.match(text, /^Status: 5\.1\.1\r?$/m);
    assert.match(text, /^Diagnostic-Code: smtp; ?550 5\.1\.1 no such user\r?$/m);
    assert.match(text, /text\/rfc822-headers/);
    assert.match(text, /X-Marker: headers-only/);
    assert.doesNotMatch(text, /the body must not come back/);
  } finally {
    await lab.cleanup();
    await Promise.all([mx!.close(), home!.close()]);
  }
});

test('delay_warning_time: one delay notice while the message keeps waiting', async () => {
  const [mx, home] = await startReceivers([{ name: 'mx.one.test', replies: { rcpt: () => '451 4.3.0 try later' } }, { name: 'mx.sender.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: mx!.port, mainCf: ['delay_warning_time = 1s', 'maximal_queue_lifetime = 1h'] });
  try {
    await lab.start();
    const id = await lab.submit('alice@sender.test', ['bob@one.test'], 'Subject: slow one\r\n\r\nhello\r\n');
    const [line] = await lab.waitLog(new RegExp(`^sealpost/bounce: ${id}: sender delay notification: [0-9A-F]+$`), 1, 10_000);
    assert.ok(line);
    await home!.waitForMessages(1, 5000);
    await sleep(2500); // further retries must not send a second warning
    assert.equal(lab.lines(new RegExp(`${id}: sender delay notification`)).length, 1);
    assert.equal(home!.messages.length, 1);
    const text = home!.messages[0]!.data.toString('utf8');
    assert.match(text, /^Subject: Delayed Mail \(still being retried\)\r?$/m);
    assert.match(text, /^Action: delayed\r?$/m);
    assert.match(text, /^Final-Recipient: rfc822; ?bob@one\.test\r?$/m);
    assert.ok(lab.spool.locate(id) !== undefined, 'the message itself is still queued');
  } finally {
    await lab.cleanup();
    await Promise.all([mx!.close(), home!.close()]);
  }
});
