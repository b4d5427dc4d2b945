import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquireMasterLock } from '../../../src/daemon/lock.ts';
import { sealpost, tempDir } from '../../harness/cli.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import { asctime } from '../../../src/queue/showq.ts';

async function setup(extra = ''): Promise<{ dir: string; q: string; cleanup: () => void }> {
  const { dir, cleanup } = tempDir();
  const q = join(dir, 'spool');
  writeFileSync(join(dir, 'main.cf'), `queue_directory = ${q}\n${extra}`);
  await createSpool(q);
  return { dir, q, cleanup };
}

const msg = { arrivalTime: 1732766112000, sender: 'alice@example.org', recipients: [{ address: 'bob@example.com' }, { address: 'carol@example.net' }] };

test('postqueue -p and mailq list the queue in Postfix layout (local time)', async () => {
  const { dir, q, cleanup } = await setup();
  try {
    const spool = await createSpool(q);
    const id = await spool.writeMessage(msg, Buffer.alloc(2045, 'x'));
    await spool.move(id, 'incoming', 'deferred');
    await spool.setDelayReason(id, { index: 1, address: 'carol@example.net', status: '4.7.5', reason: 'Server certificate not verified' });
    const expected =
      '-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n' +
      `${id.padEnd(11)}    2045 ${asctime(1732766112).slice(0, 20)} alice@example.org\n` +
      '                                             (Server certificate not verified)\n' +
      '                                         carol@example.net\n' +
      '                                                          (reason unavailable)\n' +
      '                                         bob@example.com\n' +
      '\n-- 1 Kbytes in 1 Request.\n';
    const p = await sealpost(['postqueue', '-c', dir, '-p']);
    assert.equal(p.stderr, '');
    assert.equal(p.code, 0);
    assert.equal(p.stdout, expected);
    const m = await sealpost(['-c', dir], { argv0: 'mailq' });
    assert.equal(m.stdout, expected);
    assert.equal(m.code, 0);
  } finally {
    cleanup();
  }
});

test('postqueue -j prints one JSON object per message with Postfix member order', async () => {
  const { dir, q, cleanup } = await setup();
  try {
    const spool = await createSpool(q);
    // 18 bytes with three CRLFs: Postfix counts 15.
    const id = await spool.writeMessage({ ...msg, sender: '' }, Buffer.from('Subject: x\r\n\r\nhi\r\n'));
    await spool.markDone('incoming', id, 0);
    const r = await sealpost(['postqueue', '-c', dir, '-j']);
    assert.equal(r.code, 0);
    assert.equal(
      r.stdout,
      `{"queue_name": "incoming", "queue_id": "${id}", "arrival_time": 1732766112, "message_size": 15, "forced_expire": false, ` +
        `"sender": "MAILER-DAEMON", "recipients": [{"address": "carol@example.net", "orig_address": "carol@example.net"}]}\n`,
    );
    assert.deepEqual(Object.keys(JSON.parse(r.stdout)), ['queue_name', 'queue_id', 'arrival_time', 'message_size', 'forced_expire', 'sender', 'recipients']);
  } finally {
    cleanup();
  }
});

test('an empty queue, long-ID layout, and a corrupt file are handled', async () => {
  const { dir, q, cleanup } = await setup('enable_long_queue_ids = yes\n');
  try {
    assert.equal((await sealpost(['postqueue', '-c', dir, '-p'])).stdout, 'Mail queue is empty\n');
    writeFileSync(join(q, 'deferred', 'BROKEN'), 'not a queue file');
    const spool = await createSpool(q, { longQueueIds: true });
    await spool.writeMessage(msg, Buffer.from('x'));
    const r = await sealpost(['postqueue', '-c', dir, '-p']);
    assert.match(r.stdout, /^----Queue ID----- --Size-- ---Arrival Time---- --Sender\/Recipient------\n/);
    assert.match(r.stderr, /^sealpost\/postqueue: warning: deferred\/BROKEN: skipping corrupt queue file: /);
    assert.deepEqual(readdirSync(join(q, 'deferred')), ['BROKEN']); // a listing never moves files
  } finally {
    cleanup();
  }
});

test('usage errors: no mode, two modes, stray operands', async () => {
  const { dir, cleanup } = await setup();
  try {
    for (const args of [[], ['-p', '-j'], ['-p', 'extra']]) {
      const r = await sealpost(['postqueue', '-c', dir, ...args]);
      assert.equal(r.code, 64, args.join(' '));
      assert.equal(r.stderr, 'sealpost/postqueue: fatal: usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site\n');
    }
  } finally {
    cleanup();
  }
});

test('flush without a daemon: mail system is down, exit 69, nothing written', async () => {
  const { dir, q, cleanup } = await setup();
  try {
    for (const args of [['-f'], ['-i', 'ABCDEF123'], ['-s', 'example.com']]) {
      const r = await sealpost(['postqueue', '-c', dir, ...args]);
      assert.equal(r.code, 69);
      assert.equal(r.stderr, 'sealpost/postqueue: fatal: Cannot flush mail queue - mail system is down\n');
    }
    assert.deepEqual(readdirSync(join(q, 'public', 'flush')), []);
    const bad = await sealpost(['postqueue', '-c', dir, '-i', '../x']);
    assert.equal(bad.stderr, 'sealpost/postqueue: fatal: Cannot flush queue ID - invalid name: "../x"\n');
    const site = await sealpost(['postqueue', '-c', dir, '-s', 'a b']);
    assert.equal(site.stderr, 'sealpost/postqueue: fatal: Cannot flush mail queue - invalid destination: "a b"\n');
  } finally {
    cleanup();
  }
});

test('flush with a running daemon writes one request file per request', async () => {
  const { dir, q, cleanup } = await setup();
  try {
    // This process holds the master lock: to postqueue, the daemon runs.
    const lock = await acquireMasterLock(q);
    assert.equal((await sealpost(['postqueue', '-c', dir, '-f'])).code, 0);
    assert.equal((await sealpost(['postqueue', '-c', dir, '-i', 'ABCDEF123'])).code, 0);
    assert.equal((await sealpost(['postqueue', '-c', dir, '-s', '[192.0.2.1]'])).code, 0);
    const files = readdirSync(join(q, 'public', 'flush'));
    assert.equal(files.length, 3);
    assert.ok(files.every((f) => !f.startsWith('tmp.')));
    const lines = files.map((f) => readFileSync(join(q, 'public', 'flush', f), 'utf8')).sort();
    assert.deepEqual(lines, ['flush all\n', 'flush queue_id ABCDEF123\n', 'flush site [192.0.2.1]\n']);
    await lock.release();
  } finally {
    cleanup();
  }
});

test('a missing queue directory is one fatal line', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'main.cf'), `queue_directory = ${join(dir, 'nope')}\n`);
    const r = await sealpost(['postqueue', '-c', dir, '-p']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sealpost\/postqueue: fatal: open queue directory .*nope: No such file or directory \(queue_directory in .*main\.cf\)\n$/);
  } finally {
    cleanup();
  }
});
