/**
 * qmgr-expiry — a message that only ever gets 4xx expires after
 * maximal_queue_lifetime (1 s here): qmgr logs `status=expired, returned to
 * sender`, the non-delivery notice (RFC 3464, from <>) is queued and
 * delivered to the sender's own MX, and the original is removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { qmgrLab } from './qmgr-lab.ts';

const zone = {
  'one.test': { MX: [[10, 'mx.one.test']] as Array<[number, string]> },
  'mx.one.test': { A: ['127.0.0.2'] },
  'sender.test': { MX: [[10, 'mx.sender.test']] as Array<[number, string]> },
  'mx.sender.test': { A: ['127.0.0.3'] },
};

test('expiry returns the message to its sender with a DSN that the sender domain receives', async () => {
  const [mx, home] = await startReceivers([
    { name: 'mx.one.test', replies: { rcpt: () => '450 4.2.0 mailbox busy' } },
    { name: 'mx.sender.test' },
  ]);
  const lab = await qmgrLab({ zone, receiverPort: mx!.port, mainCf: ['maximal_queue_lifetime = 1s'] });
  try {
    await lab.start();
    const id = await lab.submit('alice@sender.test', ['bob@one.test'], 'Subject: will expire\r\n\r\nhello\r\n');
    await lab.waitLog(new RegExp(`^sealpost/qmgr: ${id}: from=<alice@sender\\.test>, status=expired, returned to sender$`), 1, 10_000);
    const [notice] = await lab.waitLog(new RegExp(`^sealpost/bounce: ${id}: sender non-delivery notification: [0-9A-F]+$`));
    const dsnId = /notification: ([0-9A-F]+)$/.exec(notice!)![1]!;
    await lab.waitLog(new RegExp(`^sealpost/qmgr: ${id}: removed$`));
    assert.ok(lab.lines(new RegExp(`^sealpost/smtp: ${id}: to=<bob@one\\.test>, .*dsn=4\\.2\\.0, status=deferred \\(host mx\\.one\\.test\\[127\\.0\\.0\\.2\\] said: 450 4\\.2\\.0 mailbox busy`)).length >= 1);
    // The notice: null sender, to the original sender, delivered to the sender's MX.
    await lab.waitLog(new RegExp(`^sealpost/qmgr: ${dsnId}: from=<>, size=\\d+, nrcpt=1 \\(queue active\\)$`));
    await lab.waitLog(new RegExp(`^sealpost/smtp: ${dsnId}: to=<alice@sender\\.test>, relay=mx\\.sender\\.test\\[127\\.0\\.0\\.3\\]:\\d+, .*status=sent`));
    await home!.waitForMessages(1, 5000);
    const m = home!.messages[0]!;
    assert.equal(m.mailFrom, '');
    assert.deepEqual(m.rcptTo, ['alice@sender.test']);
    const text = m.data.toString('utf8');
    assert.match(text, /report-type=delivery-status/);
    assert.match(text, /Final-Recipient: rfc822; ?bob@one\.test/);
    assert.match(text, /Action: failed/);
    assert.match(text, /Subject: will expire/);
    await lab.waitLog(new RegExp(`^sealpost/qmgr: ${dsnId}: removed$`));
    assert.equal(lab.queued(), 0);
  } finally {
    await lab.cleanup();
    await Promise.all([mx!.close(), home!.close()]);
  }
});
