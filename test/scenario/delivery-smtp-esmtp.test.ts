import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deliveryLab, outcomeOf, startReceivers } from '../harness/smtp-receiver.ts';

const ZONE = {
  'single.example': { MX: [[10, 'mx.single.example']] as Array<[number, string]> },
  'mx.single.example': { A: ['127.0.0.2'] },
  'xn--bcher-kva.example': { MX: [[10, 'mx.single.example']] as Array<[number, string]> },
};

test('MAIL FROM carries SIZE=, BODY=8BITMIME, RET=, ENVID=; RCPT TO carries NOTIFY= and ORCPT= when DSN is offered', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const r = await lab.deliver({
      recipients: [
        { address: 'a@single.example', notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;alias+2B1@single.example' },
        { address: 'b@single.example', origAddress: 'old-b@single.example' },
      ],
      nexthops: ['single.example'], eightBitMime: true, ret: 'HDRS', envid: 'QQ 1+x',
      content: 'Subject: caf\u00e9\r\n\r\n8bit body \u00e9\r\n',
    });
    assert.equal(outcomeOf(r, 0).status, 'sent');
    const m = rx!.messages[0]!;
    assert.match(m.mailParams, /^SIZE=\d+ BODY=8BITMIME RET=HDRS ENVID=QQ\+201\+2Bx$/);
    assert.deepEqual(m.rcptParams, ['NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alias+2B1@single.example', 'ORCPT=rfc822;old-b@single.example']);
    assert.equal(m.data.toString('utf8'), 'Subject: caf\u00e9\r\n\r\n8bit body \u00e9\r\n');
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('a server without DSN and 8BITMIME gets no DSN parameters and no BODY=', async () => {
  // No SMTPUTF8 either: a server that offers SMTPUTF8 counts as 8BITMIME-capable (smtp_proto.c).
  const [rx] = await startReceivers([{ host: '127.0.0.2', dsn: false, eightBitMime: false, smtputf8: false, size: null }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const o = outcomeOf(await lab.deliver({ recipients: [{ address: 'a@single.example', notify: ['NEVER'] }], nexthops: ['single.example'], eightBitMime: true, ret: 'FULL', envid: 'x' }));
    assert.equal(o.status, 'sent');
    assert.equal(rx!.messages[0]!.mailParams, '');
    assert.deepEqual(rx!.messages[0]!.rcptParams, ['']);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('SMTPUTF8: passed on when offered; bounced 5.6.7 when the envelope needs it and the server does not offer it', async () => {
  const [yes, no] = await startReceivers([{ host: '127.0.0.2' }, { host: '127.0.0.3', smtputf8: false }]);
  const lab = await deliveryLab({ ...ZONE, 'mx.single.example': { A: ['127.0.0.2'] }, 'other.example': { A: ['127.0.0.3'] } }, yes!.port);
  try {
    const ok = outcomeOf(await lab.deliver({ recipients: ['j\u00f6rg@single.example'], nexthops: ['single.example'], smtputf8: true }));
    assert.equal(ok.status, 'sent');
    assert.match(yes!.messages[0]!.mailParams, /(^| )SMTPUTF8( |$)/);
    assert.deepEqual(yes!.messages[0]!.rcptTo, ['j\u00f6rg@single.example']);
    const bad = outcomeOf(await lab.deliver({ recipients: ['j\u00f6rg@single.example'], nexthops: ['[other.example]'], smtputf8: true }));
    assert.deepEqual([bad.status, bad.dsn], ['bounced', '5.6.7']);
    assert.equal(bad.reason, 'SMTPUTF8 is required, but was not offered by host other.example[127.0.0.3]');
    // An ASCII-only message that merely asked for SMTPUTF8 is delivered without it.
    const ascii = outcomeOf(await lab.deliver({ recipients: ['plain@single.example'], nexthops: ['[other.example]'], smtputf8: true }));
    assert.equal(ascii.status, 'sent');
    assert.doesNotMatch(no!.messages[0]!.mailParams, /SMTPUTF8/);
  } finally {
    await lab.close();
    await yes!.close();
    await no!.close();
  }
});

test('dot-stuffing: lines that start with "." arrive intact; bare LF is sent as CRLF', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'], content: 'Subject: dots\r\n\r\n.\r\n..two\r\n.end\nlast' }));
    assert.equal(o.status, 'sent');
    assert.equal(rx!.messages[0]!.data.toString(), 'Subject: dots\r\n\r\n.\r\n..two\r\n.end\r\nlast\r\n');
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('without PIPELINING the client waits for each reply before the next command', async () => {
  const [plain] = await startReceivers([{ host: '127.0.0.2', pipelining: false, delayMs: { mail: 30 } }]);
  const lab = await deliveryLab(ZONE, plain!.port);
  try {
    const r = await lab.deliver({ recipients: ['a@single.example', 'b@single.example'], nexthops: ['single.example'] });
    assert.equal(outcomeOf(r, 0).status, 'sent');
    assert.equal(outcomeOf(r, 1).status, 'sent');
    const t = plain!.transcript;
    const mailAt = t.findIndex((l) => l.startsWith('C: MAIL FROM:<sender@example.org> SIZE='));
    assert.ok(mailAt >= 0, t.join('\n'));
    assert.deepEqual(t.slice(mailAt + 1, mailAt + 6), [
      'S: 250 2.1.0 Ok',
      'C: RCPT TO:<a@single.example> ORCPT=rfc822;a@single.example', 'S: 250 2.1.5 Ok',
      'C: RCPT TO:<b@single.example> ORCPT=rfc822;b@single.example', 'S: 250 2.1.5 Ok',
    ]);
  } finally {
    await lab.close();
    await plain!.close();
  }
});

test('EHLO rejected: HELO fallback, delivery without extensions', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', replies: { ehlo: () => '502 5.5.2 Error: command not recognized' } }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_helo_name: 'helo.client.test' });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'], eightBitMime: true }));
    assert.equal(o.status, 'sent');
    assert.ok(rx!.transcript.includes('C: HELO helo.client.test'));
    assert.equal(rx!.messages[0]!.mailParams, '');
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('smtp_line_length_limit: a 2500-octet line arrives broken into 998-octet lines', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'], content: `Subject: long\r\n\r\n${'z'.repeat(2500)}\r\n` }));
    assert.equal(o.status, 'sent');
    const lines = rx!.messages[0]!.data.toString().split('\r\n');
    assert.deepEqual(lines.slice(2).map((l) => l.length), [998, 998, 506, 0]);
    assert.equal(lines[3]![0], ' ');
  } finally {
    await lab.close();
    await rx!.close();
  }
});
