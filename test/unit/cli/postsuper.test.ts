import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost, tempDir } from '../../harness/cli.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import type { MessageQueue, Spool } from '../../../src/queue/spool.ts';

const msg = { arrivalTime: 1732766112000, sender: 'alice@example.org', recipients: [{ address: 'bob@example.com' }, { address: 'carol@example.net' }] };

async function setup(): Promise<{ dir: string; spool: Spool; put: (q: MessageQueue) => Promise<string>; cleanup: () => void }> {
  const { dir, cleanup } = tempDir();
  const q = join(dir, 'spool');
  writeFileSync(join(dir, 'main.cf'), `queue_directory = ${q}\n`);
  const spool = await createSpool(q, { fsync: false });
  const put = async (queue: MessageQueue): Promise<string> => {
    const id = await spool.writeMessage(msg, Buffer.from('Subject: t\n\nbody\n'));
    if (queue !== 'incoming') await spool.move(id, 'incoming', queue);
    return id;
  };
  return { dir, spool, put, cleanup };
}

test('-d ID removes one message and its delay log, with Postfix messages', async () => {
  const { dir, spool, put, cleanup } = await setup();
  try {
    const id = await put('deferred');
    await spool.setDelayReason(id, { index: 0, address: 'bob@example.com', status: '4.0.0', reason: 'x' });
    const r = await sealpost(['postsuper', '-c', dir, '-d', id]);
    assert.equal(r.code, 0);
    assert.equal(r.stderr, `sealpost/postsuper: ${id}: removed\nsealpost/postsuper: Deleted: 1 message\n`);
    assert.equal(spool.locate(id), undefined);
    assert.equal(spool.delayLogIds().has(id), false);
    const again = await sealpost(['postsuper', '-c', dir, '-d', id]);
    assert.equal(again.stderr, 'sealpost/postsuper: Deleted: 0 messages\n');
  } finally {
    cleanup();
  }
});

test('-d ALL with a queue argument only touches that queue; "all" is not ALL', async () => {
  const { dir, spool, put, cleanup } = await setup();
  try {
    const d1 = await put('deferred');
    const d2 = await put('deferred');
    const h = await put('hold');
    const r = await sealpost(['postsuper', '-c', dir, '-d', 'ALL', 'deferred']);
    assert.equal(r.stderr, 'sealpost/postsuper: Deleted: 2 messages\n');
    assert.equal(spool.locate(d1), undefined);
    assert.equal(spool.locate(d2), undefined);
    assert.equal(spool.locate(h), 'hold');
    // ALL must be upper case: "all" is just a (well-formed, absent) queue ID.
    const lower = await sealpost(['postsuper', '-c', dir, '-d', 'all']);
    assert.equal(lower.stderr, 'sealpost/postsuper: Deleted: 0 messages\n');
    assert.equal(spool.locate(h), 'hold');
  } finally {
    cleanup();
  }
});

test('-h holds, -H releases to deferred, -h never takes maildrop mail', async () => {
  const { dir, spool, put, cleanup } = await setup();
  try {
    const a = await put('active');
    const m = await put('maildrop');
    let r = await sealpost(['postsuper', '-c', dir, '-h', a, '-h', m]);
    assert.equal(r.stderr, `sealpost/postsuper: ${a}: placed on hold\nsealpost/postsuper: Placed on hold: 1 message\n`);
    assert.equal(spool.locate(a), 'hold');
    assert.equal(spool.locate(m), 'maildrop');
    r = await sealpost(['postsuper', '-c', dir, '-H', 'ALL']);
    assert.equal(r.stderr, 'sealpost/postsuper: Released from hold: 1 message\n');
    assert.equal(spool.locate(a), 'deferred');
  } finally {
    cleanup();
  }
});

test('-e marks forced expiry once; -f also releases from hold', async () => {
  const { dir, spool, put, cleanup } = await setup();
  try {
    const d = await put('deferred');
    const h = await put('hold');
    let r = await sealpost(['postsuper', '-c', dir, '-e', d]);
    assert.equal(r.stderr, `sealpost/postsuper: ${d}: expired\nsealpost/postsuper: Force-expired: 1 message\n`);
    assert.equal(spool.readEnvelope('deferred', d).forcedExpire, true);
    r = await sealpost(['postsuper', '-c', dir, '-e', d]);
    assert.equal(r.stderr, 'sealpost/postsuper: Force-expired: 0 messages\n');
    r = await sealpost(['postsuper', '-c', dir, '-f', h]);
    assert.equal(
      r.stderr,
      `sealpost/postsuper: ${h}: expired\nsealpost/postsuper: ${h}: released from hold\n` +
        'sealpost/postsuper: Force-expired: 1 message\nsealpost/postsuper: Released from hold: 1 message\n',
    );
    assert.equal(spool.readEnvelope('deferred', h).forcedExpire, true);
  } finally {
    cleanup();
  }
});

test('-r requeues into incoming under a new ID; - reads IDs from stdin', async () => {
  const { dir, spool, put, cleanup } = await setup();
  try {
    const a = await put('deferred');
    const b = await put('hold');
    const r = await sealpost(['postsuper', '-c', dir, '-r', '-'], { stdin: `${a}\n${b}\nbad/id\n` });
    assert.equal(
      r.stderr,
      `sealpost/postsuper: ${a}: requeued\nsealpost/postsuper: ${b}: requeued\nsealpost/postsuper: warning: invalid mail queue id: bad/id\nsealpost/postsuper: Requeued: 2 messages\n`,
    );
    assert.equal(spool.locate(a), undefined);
    assert.equal(spool.locate(b), undefined);
    assert.equal(spool.list('incoming').length, 2);
  } finally {
    cleanup();
  }
});

test('an unknown queue name is fatal; reports come in Postfix order', async () => {
  const { dir, put, cleanup } = await setup();
  try {
    const bad = await sealpost(['postsuper', '-c', dir, '-d', 'ALL', 'bogus']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'sealpost/postsuper: fatal: invalid directory name: bogus\n');
    const id = await put('deferred');
    const r = await sealpost(['postsuper', '-c', dir, '-h', id, '-d', 'NOSUCH1', '-r', 'NOSUCH2']);
    assert.equal(
      r.stderr,
      `sealpost/postsuper: ${id}: placed on hold\nsealpost/postsuper: Requeued: 0 messages\nsealpost/postsuper: Deleted: 0 messages\nsealpost/postsuper: Placed on hold: 1 message\n`,
    );
  } finally {
    cleanup();
  }
});

test('ALL over more messages than it works on at once: every one requeued, then expired and released, counted once', async () => {
  const { dir, spool, put, cleanup } = await setup();
  try {
    const held: string[] = [];
    for (let i = 0; i < 50; i++) await put('deferred');
    for (let i = 0; i < 30; i++) held.push(await put('hold'));
    const r = await sealpost(['postsuper', '-c', dir, '-r', 'ALL', 'deferred']);
    assert.equal(r.stderr, 'sealpost/postsuper: Requeued: 50 messages\n');
    assert.equal(spool.list('deferred').length, 0);
    assert.equal(spool.list('incoming').length, 50);
    const f = await sealpost(['postsuper', '-c', dir, '-f', 'ALL', 'hold']);
    assert.equal(f.stderr, 'sealpost/postsuper: Force-expired: 30 messages\nsealpost/postsuper: Released from hold: 30 messages\n');
    assert.equal(spool.list('hold').length, 0);
    assert.deepEqual(spool.list('deferred').sort(), [...held].sort());
  } finally {
    cleanup();
  }
});
