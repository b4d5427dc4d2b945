import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from '../../harness/cli.ts';
import { MetaCalls } from '../../../src/queue/meta-calls.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import { Journal } from '../../../src/queue/journal.ts';

async function inDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  try {
    await fn(dir);
  } finally {
    cleanup();
  }
}

/** create, rename, unlink and their errors, through `m` (direct or thread pool). */
async function exercise(m: MetaCalls, dir: string, tag: string): Promise<void> {
  const a = join(dir, `${tag}.a`);
  const b = join(dir, `${tag}.b`);
  const fd = await m.create(a, 0o600);
  writeFileSync(fd, 'x');
  closeSync(fd);
  assert.equal(statSync(a).mode & 0o777, 0o600);
  await assert.rejects(m.create(a, 0o600), { code: 'EEXIST' }, 'create is exclusive');
  await m.rename(a, b);
  assert.equal(readFileSync(b, 'utf8'), 'x');
  assert.equal(existsSync(a), false);
  await assert.rejects(m.rename(a, b), { code: 'ENOENT' });
  await m.unlink(b);
  assert.equal(existsSync(b), false);
  await assert.rejects(m.unlink(b), { code: 'ENOENT' });
}

test('fast calls are made directly and stay direct; results and errors are those of the system calls', () =>
  inDir(async (dir) => {
    const m = new MetaCalls({ slowMs: 60_000 });
    await exercise(m, dir, 'fast');
    assert.equal(m.direct, true);
    assert.equal(m.slowSwitches, 0);
  }));

test('a slow call turns to the thread pool for the back-off period, which doubles while calls stay slow and resets after a fast one', () =>
  inDir(async (dir) => {
    // slowMs -1: every direct call counts as slow.
    const m = new MetaCalls({ slowMs: -1, backoffMs: 40, maxBackoffMs: 80 });
    await m.unlink(join(dir, 'none')).catch(() => undefined);
    assert.equal(m.slowSwitches, 1);
    assert.equal(m.direct, false, 'after a slow call the thread pool is used');
    // Through the thread pool: the same results and errors, and no new switch.
    await exercise(m, dir, 'pool');
    assert.equal(m.slowSwitches, 1, 'calls in the thread pool are not timed');
    await sleep(60);
    assert.equal(m.direct, true, 'after the first period (40 ms) the next call is tried directly');
    await m.unlink(join(dir, 'none')).catch(() => undefined);
    assert.equal(m.slowSwitches, 2);
    await sleep(60);
    assert.equal(m.direct, false, 'still slow: the period doubled to 80 ms');
    await sleep(40);
    assert.equal(m.direct, true);
  }));

test('the spool writes, moves and removes queue files through its meta calls, in either mode', () =>
  inDir(async (dir) => {
    for (const [tag, slowMs] of [['direct', 60_000], ['pool', -1]] as const) {
      const spool = await createSpool(join(dir, tag), { metaCalls: { slowMs, backoffMs: 60_000 } });
      const id = await spool.writeMessage({ arrivalTime: Date.now(), sender: 'a@example.org', recipients: [{ address: 'b@example.com' }] }, Buffer.from('Subject: t\n\nhi\n'));
      assert.equal(spool.locate(id), 'incoming');
      assert.equal(await spool.move(id, 'incoming', 'active'), true);
      assert.equal(spool.locate(id), 'active');
      assert.equal(await spool.move(id, 'incoming', 'active'), false, 'a message no longer in `from` is not an error');
      assert.equal(await spool.removeFile('active', id), true);
      assert.equal(spool.locate(id), undefined);
      assert.equal(await spool.removeFile('active', id), false);
      assert.equal(spool.meta.direct, tag === 'direct', tag);
    }
  }));

test('the daemon spool reuses the file of a delivered message for the next one: emptied at once, a new ID, no old bytes; spares go when the journal closes', () =>
  inDir(async (dir) => {
    const spool = await createSpool(join(dir, 'q'), { metaCalls: { slowMs: 60_000 } });
    const journal = new Journal(join(dir, 'q', 'journal'), { minSyncIntervalMs: 0 });
    spool.useJournal(journal);
    try {
      const big = Buffer.from(`Subject: big\n\n${'x'.repeat(20_000)}\n`);
      const a = await spool.writeMessage({ arrivalTime: Date.now(), sender: 'a@example.org', recipients: [{ address: 'b@example.com' }] }, big);
      const inode = statSync(spool.path('incoming', a)).ino;
      assert.equal(await spool.move(a, 'incoming', 'active'), true);
      spool.journal!.forget(a);
      assert.equal(await spool.removeFile('active', a), true);
      assert.equal(spool.locate(a), undefined, 'the delivered message is gone from every queue');
      assert.equal(spool.spareFiles, 1);
      assert.deepEqual(readdirSync(join(dir, 'q', 'incoming')), [], 'out of sight of the message queues');
      const spares = readdirSync(join(dir, 'q', 'journal')).filter((n) => !/^\d+$/.test(n));
      assert.equal(spares.length, 1);
      assert.match(spares[0]!, /^tmp\./, 'kept under a temporary name in journal/');
      assert.equal(statSync(join(dir, 'q', 'journal', spares[0]!)).size, 0, 'no old content stays on disk');

      const b = await spool.writeMessage({ arrivalTime: Date.now(), sender: 'c@example.org', recipients: [{ address: 'd@example.com' }] }, Buffer.from('Subject: small\n\nhi\n'));
      assert.notEqual(b, a, 'a new queue ID');
      assert.equal(statSync(spool.path('incoming', b)).ino, inode, 'the same inode');
      assert.equal(spool.spareFiles, 0);
      const env = await spool.readEnvelopeAsync('incoming', b);
      assert.equal(env.sender, 'c@example.org');
      const file = readFileSync(spool.path('incoming', b));
      assert.equal(file.includes(Buffer.from('xxxxxxxx')), false, 'nothing of the bigger old message is left');
      assert.ok(file.length < 1000);

      // Moving out of incoming or deferred is not a delivery: only files leaving active are reused.
      assert.equal(await spool.removeFile('incoming', b), true);
      assert.equal(spool.spareFiles, 0);

      const c = await spool.writeMessage({ arrivalTime: Date.now(), sender: 'e@example.org', recipients: [{ address: 'f@example.com' }] }, Buffer.from('Subject: c\n\nhi\n'));
      await spool.move(c, 'incoming', 'active');
      journal.forget(c);
      await spool.removeFile('active', c);
      assert.equal(spool.spareFiles, 1);
    } finally {
      await journal.close();
      spool.useJournal(undefined);
    }
    assert.equal(spool.spareFiles, 0);
    assert.deepEqual(readdirSync(join(dir, 'q', 'journal')).filter((n) => n.startsWith('tmp.')), [], 'a stopped daemon leaves no spare files');
  }));

test('tools (no journal) never keep spare files', () =>
  inDir(async (dir) => {
    const spool = await createSpool(join(dir, 'q'));
    const id = await spool.writeMessage({ arrivalTime: Date.now(), sender: 'a@example.org', recipients: [{ address: 'b@example.com' }] }, Buffer.from('Subject: t\n\nhi\n'));
    await spool.move(id, 'incoming', 'active');
    await spool.removeFile('active', id);
    assert.equal(spool.spareFiles, 0);
    assert.deepEqual(readdirSync(join(dir, 'q', 'journal')), []);
  }));

test('spare files a crash left are removed by recover() at start', () =>
  inDir(async (dir) => {
    const spool = await createSpool(join(dir, 'q'));
    writeFileSync(join(dir, 'q', 'journal', 'tmp.4242.7'), '');
    writeFileSync(join(dir, 'q', 'journal', '000000000001'), '');
    assert.equal(await spool.recover(), 1);
    assert.deepEqual(readdirSync(join(dir, 'q', 'journal')), ['000000000001'], 'journal segments are left to the journal');
  }));
