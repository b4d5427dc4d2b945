/**
 * journal.test.ts — the group-commit journal (queue/journal.ts) and its
 * daemon side (queue/journal-store.ts): records survive byte for byte, a torn
 * tail is ignored, one fdatasync covers every message written before it
 * started, forget records cancel messages, a failed fdatasync stops the
 * journal, sealed segments are retired once their messages are durable, and
 * recovery gives every acknowledged message a queue file that parses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, fdatasync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRecord, Journal, parseSegment, readJournal } from '../../../src/queue/journal.ts';
import { closeQueueJournal, openQueueJournal, settleQueueJournal } from '../../../src/queue/journal-store.ts';
import { decodeQueueFile } from '../../../src/queue/queue-file.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import { tempDir } from '../../harness/cli.ts';

/** An fdatasync that waits until the test releases it; records how many ran. */
function gatedSync() {
  const gates: Array<() => void> = [];
  let calls = 0;
  return {
    io: {
      fdatasync: () => {
        calls++;
        return new Promise<void>((resolve) => gates.push(resolve));
      },
    },
    get calls() {
      return calls;
    },
    release() {
      const g = gates.splice(0);
      for (const f of g) f();
      return g.length;
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

test('records round-trip; a torn or corrupt tail ends the segment', () => {
  const a = Buffer.concat(encodeRecord('message', 'A1B2C3', 'incoming', Buffer.from('queue file bytes')));
  const b = Buffer.concat(encodeRecord('forget', 'A1B2C3', 'incoming'));
  const seen: string[] = [];
  const end = parseSegment(Buffer.concat([a, b, a.subarray(0, a.length - 3)]), (type, id, queue, payload) => seen.push(`${type} ${id} ${queue} ${payload.toString()}`));
  assert.deepEqual(seen, ['message A1B2C3 incoming queue file bytes', 'forget A1B2C3 incoming ']);
  assert.equal(end, a.length + b.length);
  const corrupt = Buffer.from(a);
  corrupt[corrupt.length - 1] ^= 1;
  assert.equal(parseSegment(corrupt, () => assert.fail('a corrupt record is not read')), 0);
});

test('group commit: one fdatasync covers every message written before it started; later ones wait for the next', async () => {
  const t = tempDir('sealpost-journal-');
  const sync = gatedSync();
  const j = new Journal(t.dir, { io: sync.io, minSyncIntervalMs: 0 });
  try {
    const done: string[] = [];
    const first = ['M1', 'M2', 'M3'].map((id) => j.append('incoming', id, [Buffer.from(`file ${id}`)]).then(() => done.push(id)));
    await tick();
    assert.equal(sync.calls, 1);
    const late = j.append('incoming', 'M4', [Buffer.from('file M4')]).then(() => done.push('M4'));
    await tick();
    assert.equal(sync.calls, 1, 'one fdatasync at a time');
    assert.deepEqual(done, [], 'nothing is durable before the fdatasync completes');
    sync.release();
    await Promise.all(first);
    assert.deepEqual(done.sort(), ['M1', 'M2', 'M3']);
    await tick();
    assert.equal(sync.calls, 2, 'M4 was written after the first fdatasync started: it needs a second one');
    sync.release();
    await late;
    assert.deepEqual(j.stats, { syncs: 2, messages: 4 });
  } finally {
    sync.release();
    await j.close();
    t.cleanup();
  }
});

test('fdatasyncs start at least minSyncIntervalMs apart: under load the next waits and covers more; after a quiet moment one starts at once; close does not wait', async () => {
  const t = tempDir('sealpost-journal-');
  const sync = gatedSync();
  const j = new Journal(t.dir, { io: sync.io, minSyncIntervalMs: 80 });
  try {
    const a = j.append('incoming', 'A1', [Buffer.from('file A1')]);
    await tick();
    assert.equal(sync.calls, 1, 'the first fdatasync starts at once');
    sync.release();
    await a;
    const b = ['B1', 'B2'].map((id) => j.append('incoming', id, [Buffer.from(`file ${id}`)]));
    await tick();
    assert.equal(sync.calls, 1, 'the next waits out the interval');
    const c = j.append('incoming', 'C1', [Buffer.from('file C1')]);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(sync.calls, 2, 'after the interval one fdatasync starts ...');
    sync.release();
    await Promise.all([...b, c]);
    assert.deepEqual(j.stats, { syncs: 2, messages: 4 }, '... and covers every message written while it waited');
    await new Promise((r) => setTimeout(r, 120));
    const d = j.append('incoming', 'D1', [Buffer.from('file D1')]);
    await tick();
    assert.equal(sync.calls, 3, 'after a quiet moment an fdatasync starts at once');
    sync.release();
    await d;
    const e = j.append('incoming', 'E1', [Buffer.from('file E1')]);
    await tick();
    assert.equal(sync.calls, 3);
    const closing = j.close();
    assert.equal(sync.calls, 4, 'close starts the waiting fdatasync at once');
    sync.release();
    await Promise.all([e, closing]);
  } finally {
    sync.release();
    t.cleanup();
  }
});

test('forget cancels a message for recovery; a crash leaves the rest vouched for', async () => {
  const t = tempDir('sealpost-journal-');
  const j = new Journal(t.dir);
  await Promise.all(['A', 'B', 'C'].map((id) => j.append('incoming', id, [Buffer.from(`bytes of ${id}`)])));
  j.forget('B');
  await tick();
  // No close(): the process "dies" here; what the page cache holds is what recovery reads.
  const { entries } = readJournal(t.dir);
  assert.deepEqual(entries.map((e) => [e.id, e.bytes.toString()]), [['A', 'bytes of A'], ['C', 'bytes of C']]);
  await j.close();
  t.cleanup();
});

test('a failed fdatasync rejects the waiting messages and every later append (no 250 after an fsync error)', async () => {
  const t = tempDir('sealpost-journal-');
  const j = new Journal(t.dir, { io: { fdatasync: async () => Promise.reject(Object.assign(new Error('Input/output error'), { code: 'EIO' })) } });
  try {
    await assert.rejects(j.append('incoming', 'X', [Buffer.from('x')]), /queue journal write error: Input\/output error/);
    await assert.rejects(j.append('incoming', 'Y', [Buffer.from('y')]), /queue journal write error/);
  } finally {
    await j.close();
    t.cleanup();
  }
});

test('sealed segments are retired once their messages are durable in their own files, in order', async () => {
  const t = tempDir('sealpost-journal-');
  const spool = await createSpool(t.dir);
  await openQueueJournal(spool, { segmentBytes: 1, settleMs: 60_000 });
  try {
    const id = await spool.writeMessage({ arrivalTime: Date.now(), sender: 'a@example.org', recipients: [{ address: 'b@example.com' }] }, Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    const journalDir = join(t.dir, 'journal');
    assert.equal(readJournal(journalDir).entries.length, 1);
    await settleQueueJournal(spool);
    // The segment holding the message was sealed, the file fsynced, the segment removed.
    assert.equal(readJournal(journalDir).entries.length, 0);
    assert.equal(readdirSync(journalDir).length, 1, 'only the new, empty segment is left');
    assert.ok(existsSync(join(t.dir, 'incoming', id)));
  } finally {
    await closeQueueJournal(spool);
    t.cleanup();
  }
});

test('recovery: a lost queue file is written from the journal; a file that parses is kept; the journal is emptied', async () => {
  const t = tempDir('sealpost-journal-');
  const spool = await createSpool(t.dir);
  await openQueueJournal(spool, { settleMs: 60_000 });
  const env = { arrivalTime: Date.now(), sender: 'a@example.org', recipients: [{ address: 'b@example.com' }] };
  const lost = await spool.writeMessage(env, Buffer.from('Subject: lost\r\n\r\nbody\r\n'));
  const moved = await spool.writeMessage(env, Buffer.from('Subject: moved\r\n\r\nbody\r\n'));
  const torn = await spool.writeMessage(env, Buffer.from('Subject: torn\r\n\r\nbody\r\n'));
  const delivered = await spool.writeMessage(env, Buffer.from('Subject: delivered\r\n\r\nbody\r\n'));
  // What a power loss can leave: one file gone, one truncated; one had moved on; one was delivered.
  unlinkSync(join(t.dir, 'incoming', lost));
  writeFileSync(join(t.dir, 'incoming', torn), readFileSync(join(t.dir, 'incoming', torn)).subarray(0, 50));
  await spool.move(moved, 'incoming', 'deferred');
  spool.journal!.forget(delivered);
  unlinkSync(join(t.dir, 'incoming', delivered));
  await tick();
  // The daemon dies (no closeQueueJournal); the next start recovers.
  const again = await createSpool(t.dir);
  const r = await openQueueJournal(again, { settleMs: 60_000 });
  try {
    assert.deepEqual(r, { vouched: 3, restored: 2 });
    assert.equal(decodeQueueFile(readFileSync(join(t.dir, 'incoming', lost))).content.toString(), 'Subject: lost\r\n\r\nbody\r\n');
    assert.equal(decodeQueueFile(readFileSync(join(t.dir, 'incoming', torn))).content.toString(), 'Subject: torn\r\n\r\nbody\r\n');
    assert.ok(existsSync(join(t.dir, 'deferred', moved)));
    assert.ok(!existsSync(join(t.dir, 'incoming', moved)));
    assert.ok(!existsSync(join(t.dir, 'incoming', delivered)), 'a forgotten message stays gone');
    assert.deepEqual(readJournal(join(t.dir, 'journal')).entries, []);
  } finally {
    await closeQueueJournal(again);
    await closeQueueJournal(spool);
    t.cleanup();
  }
});

test('a clean stop leaves no journal: every message durable in its own file', async () => {
  const t = tempDir('sealpost-journal-');
  const spool = await createSpool(t.dir);
  await openQueueJournal(spool);
  const id = await spool.writeMessage({ arrivalTime: Date.now(), sender: '', recipients: [{ address: 'b@example.com' }] }, Buffer.from('x\r\n'));
  await closeQueueJournal(spool);
  assert.deepEqual(readdirSync(join(t.dir, 'journal')), []);
  assert.ok(existsSync(join(t.dir, 'incoming', id)));
  assert.equal(spool.journal, undefined);
  t.cleanup();
});

test('active gate: admitted new mail is committed into active/ and reported after its journal record is durable; refused mail goes to incoming/; a failed commit leaves no file and reports it', async () => {
  const t = tempDir('sealpost-journal-');
  const spool = await createSpool(t.dir);
  const synced: number[] = [];
  let failSync = false;
  await openQueueJournal(spool, {
    settleMs: 60_000,
    io: {
      fdatasync: (fd) =>
        new Promise<void>((resolve, reject) =>
          fdatasync(fd, (err) => {
            if (failSync) return reject(new Error('EIO (test)'));
            synced.push(Date.now());
            return err ? reject(err) : resolve();
          }),
        ),
    },
  });
  const calls: string[] = [];
  let admit = true;
  spool.activeGate = {
    admit: (id) => {
      calls.push(`admit ${id}`);
      return admit;
    },
    landed: (id, ok) => {
      calls.push(`landed ${id} ${ok} after ${synced.length} fdatasync(s)`);
    },
  };
  const env = { arrivalTime: Date.now(), sender: 'a@example.org', recipients: [{ address: 'b@example.com' }] };
  try {
    const direct = await spool.writeMessage(env, Buffer.from('Subject: direct\r\n\r\nbody\r\n'));
    assert.ok(existsSync(join(t.dir, 'active', direct)), 'admitted: in active/');
    assert.ok(!existsSync(join(t.dir, 'incoming', direct)));
    assert.deepEqual(calls, [`admit ${direct}`, `landed ${direct} true after 1 fdatasync(s)`]);
    assert.equal(readJournal(join(t.dir, 'journal')).entries.find((e) => e.id === direct)?.queue, 'incoming', 'the journal vouches for it as new mail');

    admit = false;
    calls.length = 0;
    const refused = await spool.writeMessage(env, Buffer.from('Subject: refused\r\n\r\nbody\r\n'));
    assert.ok(existsSync(join(t.dir, 'incoming', refused)), 'refused: in incoming/');
    assert.deepEqual(calls, [`admit ${refused}`], 'no landing report for mail that was not admitted');

    admit = true;
    failSync = true;
    calls.length = 0;
    await assert.rejects(spool.writeMessage(env, Buffer.from('Subject: failed\r\n\r\nbody\r\n')));
    assert.equal(calls.length, 2);
    const failedId = calls[0]!.slice('admit '.length);
    assert.equal(calls[1], `landed ${failedId} false after 2 fdatasync(s)`, 'reported as failed (the fdatasync of the two earlier messages only)');
    assert.ok(!existsSync(join(t.dir, 'active', failedId)) && !existsSync(join(t.dir, 'incoming', failedId)), 'no file left behind');
  } finally {
    spool.activeGate = undefined;
    failSync = false;
    await closeQueueJournal(spool).catch(() => undefined);
    t.cleanup();
  }
});
