/**
 * Limits and failure paths: smtpd_recipient_limit with 10k recipients,
 * message_size_limit (SIZE= and body), the per-client connection limit, the
 * hard error limit, smtpd_timeout, sequencing errors, a full queue (452,
 * nothing queued), and smtp-source pushing a few hundred messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RawSmtp, startTestSmtpd } from '../harness/smtp-client.ts';

test('10k recipients pipelined: the first smtpd_recipient_limit are accepted, the rest get 452 4.5.3', async () => {
  const t = await startTestSmtpd({ smtpd_hard_error_limit: '100000' });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<a@example.org>');
    let cmds = '';
    for (let i = 0; i < 10000; i++) cmds += `RCPT TO:<u${i}@localhost>\r\n`;
    c.send(cmds);
    let ok = 0;
    let limited = 0;
    for (let i = 0; i < 10000; i++) {
      const r = await c.reply();
      if (r === '250 2.1.5 Ok') ok++;
      else if (r === '452 4.5.3 Error: too many recipients') limited++;
    }
    assert.equal(ok, 1000);
    assert.equal(limited, 9000);
    await c.cmd('DATA');
    assert.match(await c.cmd('Subject: many\r\n\r\nx\r\n.'), /^250 /);
    const [m] = await t.messages();
    assert.equal(m!.envelope.recipients.length, 1000);
  } finally {
    await t.stop();
  }
});

test('message_size_limit: SIZE= over the limit and a body over the limit get 552 5.3.4, nothing queued', async () => {
  const t = await startTestSmtpd({ message_size_limit: '1000' });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    assert.match(await c.cmd('EHLO client.example'), /250-SIZE 1000\r\n/);
    assert.equal(await c.cmd('MAIL FROM:<a@example.org> SIZE=1001'), '552 5.3.4 Message size exceeds fixed limit');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org> SIZE=999'), '250 2.1.0 Ok');
    await c.cmd('RCPT TO:<b@localhost>');
    await c.cmd('DATA');
    assert.equal(await c.cmd(`Subject: big\r\n\r\n${'x'.repeat(2000)}\r\n.`), '552 5.3.4 Message size exceeds fixed limit');
    // The session goes on: the transaction was reset.
    assert.equal(await c.cmd('RCPT TO:<b@localhost>'), '503 5.5.1 Error: need MAIL command');
    assert.equal((await t.messages()).length, 0);
  } finally {
    await t.stop();
  }
});

test('smtpd_client_connection_count_limit: 421 4.7.0 for the connection over the limit', async () => {
  const t = await startTestSmtpd({ smtpd_client_connection_count_limit: '2', smtpd_client_event_limit_exceptions: '' });
  try {
    const a = await RawSmtp.open(t.port);
    await a.reply();
    const b = await RawSmtp.open(t.port);
    await b.reply();
    const c = await RawSmtp.open(t.port);
    assert.equal(await c.reply(), '421 4.7.0 mx.test.example Error: too many connections from 127.0.0.1');
    assert.ok(await c.closed());
    assert.ok(t.log.lines.some((l) => l.includes('warning: Connection concurrency limit exceeded: 3 from unknown[127.0.0.1] for service smtp')));
    a.end();
    b.end();
  } finally {
    await t.stop();
  }
});

test('sequencing and syntax errors, then smtpd_hard_error_limit ends the session with 421 4.7.0', async () => {
  const t = await startTestSmtpd({ smtpd_hard_error_limit: '6' });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    assert.equal(await c.cmd('RCPT TO:<b@localhost>'), '503 5.5.1 Error: need MAIL command');
    assert.equal(await c.cmd('DATA'), '503 5.5.1 Error: need RCPT command');
    assert.equal(await c.cmd('FOO'), '500 5.5.2 Error: command not recognized');
    assert.equal(await c.cmd('HELO'), '501 Syntax: HELO hostname');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '250 2.1.0 Ok');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '503 5.5.1 Error: nested MAIL command');
    assert.equal(await c.cmd('STARTTLS'), '502 5.5.1 Error: command not implemented');
    assert.equal(await c.cmd('NOOP'), '421 4.7.0 mx.test.example Error: too many errors');
    assert.ok(await c.closed());
    assert.ok(t.log.lines.some((l) => l.includes('too many errors after STARTTLS from unknown[127.0.0.1]')));
    assert.ok(t.log.lines.some((l) => l.endsWith('disconnect from unknown[127.0.0.1] helo=0/1 starttls=0/1 mail=1/2 rcpt=0/1 data=0/1 unknown=0/1 commands=1/7')), t.log.lines.join('\n'));
  } finally {
    await t.stop();
  }
});

test('VRFY, RSET, NOOP, DATA without valid recipients', async () => {
  const t = await startTestSmtpd({ mynetworks: '192.0.2.0/24' });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal(await c.cmd('VRFY bob'), '252 2.0.0 bob');
    await c.cmd('MAIL FROM:<a@example.org>');
    assert.match(await c.cmd('RCPT TO:<x@remote.example>'), /^454 /);
    assert.equal(await c.cmd('DATA'), '554 5.5.1 Error: no valid recipients');
    assert.equal(await c.cmd('RSET'), '250 2.0.0 Ok');
    assert.equal(await c.cmd('NOOP'), '250 2.0.0 Ok');
  } finally {
    await t.stop();
  }
  const t2 = await startTestSmtpd({ disable_vrfy_command: 'yes' });
  try {
    const c = await RawSmtp.open(t2.port);
    await c.reply();
    assert.doesNotMatch(await c.cmd('EHLO client.example'), /VRFY/);
    assert.equal(await c.cmd('VRFY bob'), '502 5.5.1 VRFY command is disabled');
  } finally {
    await t2.stop();
  }
});

test('smtpd_timeout: 421 4.4.2 and "timeout after" in the log', async () => {
  const t = await startTestSmtpd({ smtpd_timeout: '1s' });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal(await c.reply(3000), '421 4.4.2 mx.test.example Error: timeout exceeded');
    assert.ok(await c.closed());
    assert.ok(t.log.lines.some((l) => l.includes('timeout after EHLO from unknown[127.0.0.1]')));
  } finally {
    await t.stop();
  }
});

test('a lost connection during DATA queues nothing and is logged', async () => {
  const t = await startTestSmtpd();
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@localhost>');
    await c.cmd('DATA');
    c.send('Subject: cut\r\n\r\npartial');
    await new Promise((r) => setTimeout(r, 50));
    c.end();
    for (let i = 0; i < 50 && !t.log.lines.some((l) => l.includes('disconnect from')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(t.log.lines.some((l) => /lost connection after DATA \(\d+ bytes\) from unknown\[127\.0\.0\.1\]/.test(l)));
    assert.equal((await t.messages()).length, 0);
  } finally {
    await t.stop();
  }
});

test('a full queue: 452 4.3.1 Insufficient system storage, nothing queued, no temp file left', async () => {
  const t = await startTestSmtpd({}, {
    spool: {
      io: {
        writeAll: async () => {
          throw Object.assign(new Error('No space left on device'), { code: 'ENOSPC' });
        },
        writeAt: async () => {
          throw Object.assign(new Error('No space left on device'), { code: 'ENOSPC' });
        },
      },
    },
  });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@localhost>');
    await c.cmd('DATA');
    assert.equal(await c.cmd('Subject: full\r\n\r\nx\r\n.'), '452 4.3.1 Insufficient system storage');
    assert.equal(await c.cmd('QUIT'), '221 2.0.0 Bye');
    assert.deepEqual(readdirSync(join(t.dir, 'queue', 'incoming')), []);
    assert.deepEqual(t.queued, []);
    assert.ok(t.log.lines.some((l) => l.includes('warning: unknown[127.0.0.1]: queue file write error')));
  } finally {
    await t.stop();
  }
});

test('smtp-source pushes 5,000 messages of 4 KB over 20 sessions: zero errors, exactly 5,000 queue files', async () => {
  const t = await startTestSmtpd();
  try {
    const out = await new Promise<{ code: number; text: string }>((resolve) => {
      execFile('/usr/sbin/smtp-source', ['-s', '20', '-m', '5000', '-l', '4096', '-f', 'a@example.org', '-t', 'b@localhost', `127.0.0.1:${t.port}`], { timeout: 300000 }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, text: stdout + stderr }),
      );
    });
    assert.equal(out.code, 0, out.text);
    assert.doesNotMatch(out.text, /error|fatal|warning/i);
    assert.equal(t.spool.list('incoming').length, 5000);
    assert.equal(t.queued.length, 5000);
  } finally {
    await t.stop();
  }
});

test('queue_minfree (smtpd_check_queue): MAIL FROM gets 452 4.3.1 when the queue file system is short, SIZE= or not', async () => {
  const t = await startTestSmtpd({ queue_minfree: String(2 ** 52) });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '452 4.3.1 Insufficient system storage');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org> SIZE=10'), '452 4.3.1 Insufficient system storage');
    assert.equal(await c.cmd('RCPT TO:<b@localhost>'), '503 5.5.1 Error: need MAIL command');
    const log = t.log.lines.join('\n');
    assert.match(log, /NOQUEUE: reject: MAIL from unknown\[127\.0\.0\.1\]: 452 4\.3\.1 Insufficient system storage; from=<a@example\.org> proto=ESMTP helo=<client\.example>/);
    assert.match(log, /warning: not enough free space in mail queue: \d+ bytes < 1\.5\*message size limit/);
  } finally {
    await t.stop();
  }
  // The other half of the rule: less than 1.5 x message_size_limit free.
  const big = await startTestSmtpd({ message_size_limit: String(2 ** 52) });
  try {
    const c = await RawSmtp.open(big.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '452 4.3.1 Insufficient system storage');
  } finally {
    await big.stop();
  }
});

test('smtpd_recipient_overshoot_limit: excess RCPTs get 452 and count as errors only past the overshoot limit', async () => {
  const t = await startTestSmtpd({ smtpd_recipient_limit: '2', smtpd_recipient_overshoot_limit: '2', smtpd_hard_error_limit: '2', smtpd_soft_error_limit: '100' });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<a@example.org>');
    assert.equal(await c.cmd('RCPT TO:<b1@localhost>'), '250 2.1.5 Ok');
    assert.equal(await c.cmd('RCPT TO:<b2@localhost>'), '250 2.1.5 Ok');
    // Two overshoots are free, the next two are errors; the hard error limit (2) then ends the session.
    for (let i = 0; i < 4; i++) assert.equal(await c.cmd(`RCPT TO:<x${i}@localhost>`), '452 4.5.3 Error: too many recipients');
    assert.equal(await c.cmd('NOOP'), '421 4.7.0 mx.test.example Error: too many errors');
    assert.ok(await c.closed());
    assert.match(t.log.lines.join('\n'), /disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=4\/6 commands=6\/8/);
  } finally {
    await t.stop();
  }
});
