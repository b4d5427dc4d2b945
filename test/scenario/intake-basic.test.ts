import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawSmtp, startTestSmtpd } from '../harness/smtp-client.ts';

test('plain session: greeting, EHLO keywords, one message queued with Received and log lines', async () => {
  const t = await startTestSmtpd();
  try {
    const c = await RawSmtp.open(t.port);
    assert.equal(await c.reply(), '220 mx.test.example ESMTP sealpost');
    const ehlo = await c.cmd('EHLO client.example');
    assert.equal(
      ehlo,
      ['250-mx.test.example', '250-PIPELINING', '250-SIZE 10240000', '250-VRFY', '250-ETRN', '250-ENHANCEDSTATUSCODES', '250-8BITMIME', '250-DSN', '250 SMTPUTF8'].join('\r\n'),
    );
    assert.equal(await c.cmd('MAIL FROM:<alice@example.org>'), '250 2.1.0 Ok');
    assert.equal(await c.cmd('RCPT TO:<bob@localhost>'), '250 2.1.5 Ok');
    assert.equal(await c.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
    const r = await c.cmd('Subject: hi\r\n\r\nbody\r\n.');
    const m = /^250 2\.0\.0 Ok: queued as ([0-9A-F]+)$/.exec(r);
    assert.ok(m, r);
    assert.equal(await c.cmd('QUIT'), '221 2.0.0 Bye');
    assert.ok(await c.closed());
    const msgs = await t.messages();
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0]!.id, m[1]);
    const text = msgs[0]!.content.toString();
    assert.match(text, new RegExp(`^Received: from client\\.example \\(unknown \\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby mx\\.test\\.example \\(sealpost\\) with ESMTP id ${m[1]}\\r\\n\\tfor <bob@localhost>; `));
    assert.match(text, /\r\nSubject: hi\r\n/);
    assert.equal(msgs[0]!.envelope.sender, 'alice@example.org');
    assert.deepEqual(msgs[0]!.envelope.recipients.map((x) => x.address), ['bob@localhost']);
    assert.deepEqual(t.queued, [m[1]]);
    const log = t.log.lines.join('\n');
    assert.match(log, /sealpost\/smtpd: connect from unknown\[127\.0\.0\.1\]/);
    assert.match(log, new RegExp(`sealpost/smtpd: ${m[1]}: client=unknown\\[127\\.0\\.0\\.1\\]`));
    assert.match(log, new RegExp(`sealpost/cleanup: ${m[1]}: message-id=<\\d{14}\\.${m[1]}@mx\\.test\\.example>`));
    assert.match(log, /disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5/);
  } finally {
    await t.stop();
  }
});
