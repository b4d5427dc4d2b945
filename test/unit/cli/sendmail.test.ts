import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSpool } from '../../../src/queue/spool.ts';
import { headerRecipients, normaliseInput, parseAddressList, removeBcc } from '../../../src/intake/maildrop.ts';
import { sealpost, tempDir } from '../../harness/cli.ts';
import { run } from '../../../src/cli/sealpost.ts';
import { PassThrough } from 'node:stream';

function setup() {
  const t = tempDir();
  const etc = join(t.dir, 'etc');
  mkdirSync(etc);
  writeFileSync(join(etc, 'main.cf'), `queue_directory = ${t.dir}/q\nmyhostname = mx.example.org\n`);
  const run = (args: string[], stdin: string, argv0?: string) =>
    sealpost(argv0 ? args : ['sendmail', ...args], { stdin, env: { PATH: process.env.PATH, MAIL_CONFIG: etc }, ...(argv0 ? { argv0 } : {}) });
  const onlyMessage = async () => {
    const spool = openSpool(join(t.dir, 'q'));
    const ids = spool.list('maildrop');
    assert.equal(ids.length, 1);
    return spool.readMessage('maildrop', ids[0]!);
  };
  return { ...t, etc, run, onlyMessage };
}

test('address lists as in To:/Cc:', () => {
  assert.deepEqual(parseAddressList('a@x, "Doe, J" <j@y>, Bob (the builder) <b@z>'), ['a@x', 'j@y', 'b@z']);
  assert.deepEqual(parseAddressList('team: c@x, d@x;, e@x'), ['c@x', 'd@x', 'e@x']);
  assert.deepEqual(parseAddressList('undisclosed-recipients:;'), []);
  assert.deepEqual(parseAddressList('"quoted local"@x'), ['"quotedlocal"@x'.replace('quotedlocal', 'quoted local').replace(/\s/g, '')]);
});

test('input: a lone dot ends it unless -i; mbox From line dropped; CRLF; Bcc removed', () => {
  assert.equal(normaliseInput(Buffer.from('From a@b Sat Nov 28\nSubject: x\n\nl1\n.\nl2\n'), { ignoreDots: false }).toString(), 'Subject: x\r\n\r\nl1\r\n');
  assert.equal(normaliseInput(Buffer.from('Subject: x\n\nl1\n.\nl2'), { ignoreDots: true }).toString(), 'Subject: x\r\n\r\nl1\r\n.\r\nl2\r\n');
  assert.equal(normaliseInput(Buffer.from('Subject: x\nbody without separator\n'), { ignoreDots: true }).toString(), 'Subject: x\r\n\r\nbody without separator\r\n');
  const msg = Buffer.from('To: a@x\r\nBcc: s@y,\r\n t@y\r\nCc: c@x\r\n\r\nBcc: in body\r\n');
  assert.deepEqual(headerRecipients(msg), ['a@x', 's@y', 't@y', 'c@x']);
  assert.equal(removeBcc(msg).toString(), 'To: a@x\r\nCc: c@x\r\n\r\nBcc: in body\r\n');
  assert.deepEqual(headerRecipients(Buffer.from('To: a@x\r\nResent-To: r@x\r\n\r\n')), ['r@x']);
});

test('-t with Bcc removal, -f, -F, -N/-R/-V recorded, bare names qualified', async () => {
  const t = setup();
  try {
    const r = await t.run(['-t', '-f', '<alice@example.org>', '-F', 'Alice A.', '-N', 'success, failure', '-R', 'full', '-V', 'ENV1', 'extra'], 'To: Bob <bob@example.com>\nBcc: hidden@example.net\nSubject: t\n\nbody\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const { envelope, content } = await t.onlyMessage();
    assert.equal(envelope.sender, 'alice@example.org');
    assert.deepEqual(envelope.recipients.map((x) => x.address), ['extra@mx.example.org', 'bob@example.com', 'hidden@example.net']);
    assert.deepEqual(envelope.recipients.map((x) => x.notify), [['SUCCESS', 'FAILURE'], ['SUCCESS', 'FAILURE'], ['SUCCESS', 'FAILURE']]);
    assert.equal(envelope.ret, 'FULL');
    assert.equal(envelope.envid, 'ENV1');
    assert.equal(content.toString(), 'To: Bob <bob@example.com>\r\nSubject: t\r\nFrom: "Alice A." <alice@example.org>\r\n\r\nbody\r\n');
  } finally {
    t.cleanup();
  }
});

test('-i and -oi keep lone dots; the default stops at one; argv0 sendmail; -f <> is the null sender', async () => {
  const t = setup();
  try {
    assert.equal((await t.run(['-oi', '-f', '<>', 'bob@example.com'], 'Subject: a\n\n.\nafter\n', 'sendmail')).code, 0);
    let m = await t.onlyMessage();
    assert.equal(m.envelope.sender, '');
    assert.equal(m.content.toString(), 'Subject: a\r\n\r\n.\r\nafter\r\n');
    const t2 = setup();
    try {
      assert.equal((await t2.run(['bob@example.com'], 'Subject: a\n\n.\nafter\n')).code, 0);
      m = await t2.onlyMessage();
      assert.equal(m.content.toString(), 'Subject: a\r\n\r\n');
    } finally {
      t2.cleanup();
    }
  } finally {
    t.cleanup();
  }
});

test('errors: no recipients, bad options, bad -N/-R warned and ignored, unsupported -b modes, unwritable queue', async () => {
  const t = setup();
  try {
    // Every sendmail fatal exits 75 (EX_TEMPFAIL), as Postfix's does (its msg_cleanup handler).
    const none = await t.run(['-t'], 'Subject: x\n\nb\n');
    assert.equal(none.code, 75);
    assert.match(none.stderr, /^sendmail: fatal: \S+\(\d+\): No recipient addresses found in message header\n$/);
    const noargs = await t.run([], 'Subject: x\n\nb\n');
    assert.equal(noargs.code, 75);
    assert.match(noargs.stderr, /Recipient addresses must be specified on the command line or via the -t option/);
    const badopt = await t.run(['-Z', 'a@b'], '');
    assert.equal(badopt.code, 75);
    assert.equal(badopt.stderr, "sendmail: invalid option -- 'Z'\nsendmail: fatal: usage: sendmail [options]\n");
    const warnings = await t.run(['-N', 'bogus', '-R', 'bogus', 'a@example.com'], 'Subject: x\n\nb\n');
    assert.equal(warnings.code, 0);
    assert.equal(
      warnings.stderr,
      'sendmail: warning: unknown DSN NOTIFY command value "bogus" in "bogus"\nsendmail: warning: bad -N option value: \'bogus\' -- ignored\nsendmail: warning: bad -R option value -- ignored\n',
    );
    const m = await t.onlyMessage();
    assert.equal(m.envelope.recipients[0]!.notify, undefined);
    assert.equal(m.envelope.ret, undefined);
    const bx = await t.run(['-bx'], '');
    assert.equal(bx.code, 75);
    assert.equal(bx.stderr, 'sendmail: fatal: unsupported: -bx\n');
    assert.equal((await t.run(['-bi'], '')).code, 0);
    writeFileSync(join(t.etc, 'main.cf'), `queue_directory = ${join(t.etc, 'main.cf')}/q\n`);
    const tf = await t.run(['a@example.com'], 'Subject: x\n\nb\n');
    assert.equal(tf.code, 75);
    assert.match(tf.stderr, /^sendmail: fatal: \S+\(\d+\): queue file write error: /);
  } finally {
    t.cleanup();
  }
});

test('-bp lists the queue like mailq', async () => {
  const t = setup();
  try {
    assert.equal((await t.run(['bob@example.com'], 'Subject: x\n\nb\n')).code, 0);
    const r = await t.run(['-bp'], '');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^-Queue ID- /);
    assert.match(r.stdout, /bob@example\.com/);
    assert.match(r.stdout, /-- 0 Kbytes in 1 Request\.\n$/);
  } finally {
    t.cleanup();
  }
});

test('-bs: an SMTP session on stdin/stdout queues the message', async () => {
  const t = setup();
  try {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    const done = run('sendmail', ['-bs'], { stdin, stdout, stderr, env: { PATH: process.env.PATH, MAIL_CONFIG: t.etc } });
    // Speak like an interactive client: one command per reply.
    const expect = async (re: RegExp): Promise<void> => {
      for (let i = 0; i < 200 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 10));
      assert.match(out, re);
    };
    await expect(/^220 mx\.example\.org ESMTP/);
    for (const [cmd, reply] of [
      ['EHLO local', /250 SMTPUTF8\r\n$/],
      ['MAIL FROM:<a@example.org>', /250 2\.1\.0 Ok\r\n$/],
      ['RCPT TO:<b@example.com>', /250 2\.1\.5 Ok\r\n$/],
      ['DATA', /354 .*\r\n$/],
      ['Subject: bs\r\n\r\nhi\r\n.', /250 2\.0\.0 Ok: queued as [0-9A-F]+\r\n$/],
      ['QUIT', /221 2\.0\.0 Bye\r\n$/],
    ] as const) {
      stdin.write(`${cmd}\r\n`);
      await expect(reply);
    }
    stdin.end();
    assert.equal(await done, 0);
    const spool = openSpool(join(t.dir, 'q'));
    assert.equal(spool.list('incoming').length, 1);
  } finally {
    t.cleanup();
  }
});
