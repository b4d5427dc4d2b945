/**
 * qmgr-relay — the queue manager end to end in a real daemon: messages come
 * in by SMTP, MX records from the loopback DNS server send them to two
 * receivers, and the log shows Postfix's lines field by field (queue active,
 * to=..., removed). Then: mail left in active/ by a crash is delivered after
 * the next start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { qmgrLab } from './qmgr-lab.ts';

const zone = {
  'one.test': { MX: [[10, 'mx.one.test']] as Array<[number, string]> },
  'mx.one.test': { A: ['127.0.0.2'] },
  'two.test': { MX: [[10, 'mx.two.test']] as Array<[number, string]> },
  'mx.two.test': { A: ['127.0.0.3'] },
};

test('several messages relayed to their MX hosts, with the exact log lines', async () => {
  const [one, two] = await startReceivers([{ name: 'mx.one.test' }, { name: 'mx.two.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: one!.port });
  try {
    await lab.start();
    const a = await lab.submit('alice@sender.test', ['bob@one.test']);
    const b = await lab.submit('alice@sender.test', ['carol@two.test', 'dave@one.test']);
    const c = await lab.submit('', ['erin@two.test']);
    await lab.waitLog(/^sealpost\/qmgr: [0-9A-F]+: removed$/, 3);
    const P = one!.port;
    const sent = (id: string, rcpt: string, host: string, addr: string) =>
      new RegExp(
        `^sealpost/smtp: ${id}: to=<${rcpt}>, relay=${host}\\[${addr}\\]:${P}, (conn_use=\\d+, )?delay=[\\d.]+, delays=[\\d.]+/[\\d.]+/[\\d.]+/[\\d.]+, (tls=[^,]+, )?dsn=2\\.0\\.0, status=sent \\(250 .*\\)$`,
      );
    assert.equal(lab.lines(new RegExp(`^sealpost/qmgr: ${a}: from=<alice@sender\\.test>, size=\\d+, nrcpt=1 \\(queue active\\)$`)).length, 1);
    assert.equal(lab.lines(new RegExp(`^sealpost/qmgr: ${b}: from=<alice@sender\\.test>, size=\\d+, nrcpt=2 \\(queue active\\)$`)).length, 1);
    assert.equal(lab.lines(new RegExp(`^sealpost/qmgr: ${c}: from=<>, size=\\d+, nrcpt=1 \\(queue active\\)$`)).length, 1);
    assert.equal(lab.lines(sent(a, 'bob@one\\.test', 'mx\\.one\\.test', '127\\.0\\.0\\.2')).length, 1, lab.log());
    assert.equal(lab.lines(sent(b, 'carol@two\\.test', 'mx\\.two\\.test', '127\\.0\\.0\\.3')).length, 1, lab.log());
    assert.equal(lab.lines(sent(b, 'dave@one\\.test', 'mx\\.one\\.test', '127\\.0\\.0\\.2')).length, 1, lab.log());
    assert.equal(lab.lines(sent(c, 'erin@two\\.test', 'mx\\.two\\.test', '127\\.0\\.0\\.3')).length, 1, lab.log());
    for (const id of [a, b, c]) assert.equal(lab.lines(new RegExp(`^sealpost/qmgr: ${id}: removed$`)).length, 1);
    // Order per message: queue active, then the outcome, then removed.
    const mine = lab.lines(new RegExp(`: ${a}: `)).map((l) => l.replace(/:.*/, ''));
    assert.deepEqual(mine.slice(-3), ['sealpost/qmgr', 'sealpost/smtp', 'sealpost/qmgr']);
    assert.deepEqual(one!.messages.map((m) => m.rcptTo.join()).sort(), ['bob@one.test', 'dave@one.test']);
    assert.deepEqual(two!.messages.map((m) => `${m.mailFrom}>${m.rcptTo.join()}`).sort(), ['>erin@two.test', 'alice@sender.test>carol@two.test']);
    assert.equal(lab.queued(), 0);
  } finally {
    await lab.cleanup();
    await Promise.all([one!.close(), two!.close()]);
  }
});

test('restart: a message left in active/ (crash) is delivered after the next start', async () => {
  const [one] = await startReceivers([{ name: 'mx.one.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: one!.port });
  try {
    await lab.start();
    await lab.stop();
    const spool = lab.spool;
    const id = await spool.writeMessage({ arrivalTime: Date.now(), sender: 'alice@sender.test', recipients: [{ address: 'bob@one.test' }] }, Buffer.from('Subject: crash\r\n\r\nx\r\n'));
    assert.equal(await spool.move(id, 'incoming', 'active'), true);
    await lab.start();
    await lab.waitLog(new RegExp(`^sealpost/qmgr: ${id}: removed$`));
    assert.equal(one!.messages.length, 1);
    assert.match(one!.messages[0]!.data.toString(), /Subject: crash/);
    assert.equal(lab.queued(), 0);
  } finally {
    await lab.cleanup();
    await one!.close();
  }
});
