import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost, tempDir } from '../../harness/cli.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import { asctime } from '../../../src/queue/showq.ts';

const content = Buffer.from('Subject: hello\r\nFrom: alice@example.org\r\n\r\nline one\r\nline two\r\n');

async function setup(): Promise<{ dir: string; id: string; cleanup: () => void }> {
  const { dir, cleanup } = tempDir();
  const q = join(dir, 'spool');
  writeFileSync(join(dir, 'main.cf'), `queue_directory = ${q}\n`);
  const spool = await createSpool(q, { fsync: false });
  const id = await spool.writeMessage(
    {
      arrivalTime: 1732766112000,
      sender: 'alice@example.org',
      recipients: [{ address: 'bob@example.com', orcpt: 'rfc822;bob@example.com', notify: ['FAILURE', 'DELAY'] }, { address: 'carol@example.net' }],
      envid: 'E1',
      ret: 'HDRS',
      eightBitMime: true,
      requireTls: true,
      client: { name: 'mail.example.org', address: '192.0.2.1', helo: 'mail.example.org', protocol: 'ESMTPS' },
    },
    content,
  );
  await spool.move(id, 'incoming', 'deferred');
  await spool.markDone('deferred', id, 1);
  return { dir, id, cleanup };
}

test('postcat -q prints envelope, contents and end markers like Postfix', async () => {
  const { dir, id, cleanup } = await setup();
  try {
    const r = await sealpost(['postcat', '-c', dir, '-q', id]);
    assert.equal(r.code, 0);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], `*** ENVELOPE RECORDS deferred/${id} ***`);
    // Six %15ld fields: message_size (header + body, CRLF counted as one byte), content
    // offset, recipient count, 0, content bytes as stored, SMTPUTF8.
    assert.match(lines[1]!, /^message_size: +58 +\d+ +2 +0 +63 +0$/);
    assert.equal(lines[1]!.length, 'message_size: '.length + 6 * 15 + 5);
    assert.equal(lines[2], `message_arrival_time: ${asctime(1732766112).trimEnd()}`);
    assert.deepEqual(lines.slice(3), [
      'named_attribute: log_client_name=mail.example.org',
      'named_attribute: log_client_address=192.0.2.1',
      'named_attribute: log_helo_name=mail.example.org',
      'named_attribute: log_protocol_name=ESMTPS',
      'named_attribute: encoding=8bit',
      'named_attribute: requiretls=yes',
      'dsn_envelope_id: E1',
      'dsn_return_flags: 2',
      'sender: alice@example.org',
      'dsn_original_recipient: rfc822;bob@example.com',
      'dsn_notify_flags: 12',
      'original_recipient: bob@example.com',
      'recipient: bob@example.com',
      'original_recipient: carol@example.net',
      'done_recipient: carol@example.net',
      `*** MESSAGE CONTENTS deferred/${id} ***`,
      'Subject: hello',
      'From: alice@example.org',
      '',
      'line one',
      'line two',
      `*** HEADER EXTRACTED deferred/${id} ***`,
      `*** MESSAGE FILE END deferred/${id} ***`,
      '',
    ]);
  } finally {
    cleanup();
  }
});

test('-h and -b print only the header or the body; -e only the envelope', async () => {
  const { dir, id, cleanup } = await setup();
  try {
    assert.equal((await sealpost(['postcat', '-c', dir, '-h', '-q', id])).stdout, 'Subject: hello\nFrom: alice@example.org\n\n');
    assert.equal((await sealpost(['postcat', '-c', dir, '-bq', id])).stdout, 'line one\nline two\n');
    const e = (await sealpost(['postcat', '-c', dir, '-e', '-q', id])).stdout;
    assert.match(e, /^\*\*\* ENVELOPE RECORDS/);
    assert.doesNotMatch(e, /line one/);
    assert.match(e, /\*\*\* MESSAGE FILE END deferred\/\w+ \*\*\*\n$/);
  } finally {
    cleanup();
  }
});

test('missing, invalid and corrupt queue files', async () => {
  const { dir, cleanup } = await setup();
  try {
    const missing = await sealpost(['postcat', '-c', dir, '-q', 'ABCDEF0123']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'sealpost/postcat: fatal: open queue file ABCDEF0123: No such file or directory\n');
    const bad = await sealpost(['postcat', '-c', dir, '-q', '../etc/passwd']);
    assert.equal(bad.stderr, 'sealpost/postcat: fatal: bad mail queue ID: ../etc/passwd\n');
    writeFileSync(join(dir, 'spool', 'hold', 'BROKEN'), 'junk');
    const corrupt = await sealpost(['postcat', '-c', dir, '-q', 'BROKEN']);
    assert.equal(corrupt.stdout, '');
    assert.match(corrupt.stderr, /^sealpost\/postcat: warning: hold\/BROKEN: input is not a valid queue file \(truncated header/);
  } finally {
    cleanup();
  }
});

test('without -q the operands are files, and stdin is read when there are none', async () => {
  const { dir, id, cleanup } = await setup();
  try {
    const path = join(dir, 'spool', 'deferred', id);
    const r = await sealpost(['postcat', '-h', path]);
    assert.equal(r.stdout, 'Subject: hello\nFrom: alice@example.org\n\n');
    const s = await sealpost(['postcat', '-b'], { stdin: 'not a queue file' });
    assert.equal(s.stdout, '');
    assert.match(s.stderr, /^sealpost\/postcat: warning: stdin: input is not a valid queue file/);
  } finally {
    cleanup();
  }
});
