/**
 * SMTP smuggling and malformed input: only <CR><LF>.<CR><LF> ends DATA, in
 * every variant; NULs and over-long lines never split or break a message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawSmtp, startTestSmtpd } from '../harness/smtp-client.ts';
import type { TestSmtpd } from '../harness/smtp-client.ts';

async function begin(t: TestSmtpd): Promise<RawSmtp> {
  const c = await RawSmtp.open(t.port);
  await c.reply();
  await c.cmd('EHLO client.example');
  assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '250 2.1.0 Ok');
  assert.equal(await c.cmd('RCPT TO:<b@localhost>'), '250 2.1.5 Ok');
  assert.equal(await c.cmd('DATA'), '354 End data with <CR><LF>.<CR><LF>');
  return c;
}

const VARIANTS: Array<[string, string]> = [
  ['<LF>.<LF>', '\n.\n'],
  ['<LF>.<CR><LF>', '\n.\r\n'],
  ['<CR>.<CR>', '\r.\r'],
  ['<CR><LF>.<LF>', '\r\n.\n'],
  ['<CR>.<CR><LF>', '\r.\r\n'],
  ['<CR><LF>.<CR>', '\r\n.\r'],
];

for (const [name, seq] of VARIANTS) {
  test(`smuggling ${name}: one DATA stays one message, the smuggled commands are content`, async () => {
    const t = await startTestSmtpd();
    try {
      const c = await begin(t);
      // Everything in one write, as a smuggling attacker would send it.
      c.send(`Subject: one\r\n\r\nfirst${seq}MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n`);
      const r = await c.reply();
      assert.match(r, /^250 2\.0\.0 Ok: queued as /);
      assert.equal(await c.cmd('QUIT'), '221 2.0.0 Bye');
      const msgs = await t.messages();
      assert.equal(msgs.length, 1, 'exactly one message');
      const body = msgs[0]!.content.toString('latin1');
      assert.match(body, /MAIL FROM:<evil@example\.org>/);
      assert.match(body, /Subject: smuggled/);
      assert.deepEqual(msgs[0]!.envelope.recipients.map((x) => x.address), ['b@localhost']);
    } finally {
      await t.stop();
    }
  });
}

test('bare LF in DATA is stored as CRLF with the default smtpd_forbid_bare_newline = normalize', async () => {
  const t = await startTestSmtpd();
  try {
    const c = await begin(t);
    c.send('Subject: lf\n\nline1\nline2\r\n.\r\n');
    assert.match(await c.reply(), /^250 /);
    const [m] = await t.messages();
    const text = m!.content.toString();
    assert.match(text, /\r\nSubject: lf\r\n/);
    assert.match(text, /\r\n\r\nline1\r\nline2\r\n$/);
    assert.doesNotMatch(text, /[^\r]\n/);
  } finally {
    await t.stop();
  }
});

test('smtpd_forbid_bare_newline = reject: 550 5.5.2 and disconnect, nothing queued (client outside the exclusions)', async () => {
  const t = await startTestSmtpd({ smtpd_forbid_bare_newline: 'reject', mynetworks: '192.0.2.0/24' });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<a@example.org>');
    assert.equal(await c.cmd('RCPT TO:<b@localhost>'), '250 2.1.5 Ok');
    await c.cmd('DATA');
    c.send('Subject: lf\n\nbody\r\n.\r\n');
    assert.equal(await c.reply(), '550 5.5.2 mx.test.example Error: bare <LF> received');
    assert.ok(await c.closed());
    assert.equal((await t.messages()).length, 0);
  } finally {
    await t.stop();
  }
});

test('smtpd_forbid_bare_newline = reject: a command ending in bare LF is refused', async () => {
  const t = await startTestSmtpd({ smtpd_forbid_bare_newline: 'reject', mynetworks: '192.0.2.0/24' });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    c.send('EHLO client.example\n');
    assert.equal(await c.reply(), '550 5.5.2 mx.test.example Error: bare <LF> received');
    assert.ok(await c.closed());
  } finally {
    await t.stop();
  }
});

test('smtpd_forbid_bare_newline = reject does not apply to clients in $mynetworks (the exclusions)', async () => {
  const t = await startTestSmtpd({ smtpd_forbid_bare_newline: 'reject' });
  try {
    const c = await begin(t);
    c.send('Subject: lf\n\nbody\r\n.\r\n');
    assert.match(await c.reply(), /^250 /);
  } finally {
    await t.stop();
  }
});

test('NUL bytes in content are kept and do not end DATA; NUL in a command is bad syntax', async () => {
  const t = await startTestSmtpd();
  try {
    const c = await begin(t);
    c.send(Buffer.from('Subject: nul\r\n\r\na\0b\r\n\0.\r\n.\r\n', 'latin1'));
    assert.match(await c.reply(), /^250 /);
    assert.equal(await c.cmd('NOOP\0'), '500 5.5.2 Error: bad syntax');
    const [m] = await t.messages();
    assert.ok(m!.content.includes(Buffer.from('a\0b\r\n\0.\r\n', 'latin1')));
  } finally {
    await t.stop();
  }
});

test('over-long lines: content lines are kept, an over-long command is cut and fails; an over-long address is refused', async () => {
  const t = await startTestSmtpd();
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal(await c.cmd(`MAIL FROM:<${'a'.repeat(5000)}@example.org>`), '501 5.1.7 Bad sender address syntax');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '250 2.1.0 Ok');
    assert.equal(await c.cmd(`RCPT TO:<${'b'.repeat(3000)}@localhost>`), '501 5.1.3 Bad recipient address syntax');
    assert.equal(await c.cmd('RCPT TO:<b@localhost>'), '250 2.1.5 Ok');
    await c.cmd('DATA');
    const long = 'x'.repeat(10000);
    c.send(`Subject: long\r\n\r\n${long}\r\n.\r\n`);
    assert.match(await c.reply(), /^250 /);
    assert.equal(await c.cmd('NOOP'), '250 2.0.0 Ok');
    const [m] = await t.messages();
    assert.ok(m!.content.toString().includes(long));
  } finally {
    await t.stop();
  }
});
