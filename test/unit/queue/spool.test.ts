import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../harness/cli.ts';
import { parseQueueId } from '../../../src/queue/queue-id.ts';
import { encodeQueueFile } from '../../../src/queue/queue-file.ts';
import { createSpool, openSpool, QueueWriteError } from '../../../src/queue/spool.ts';
import type { Spool } from '../../../src/queue/spool.ts';

const content = Buffer.from('Subject: t\n\nhello\n');
const env = { arrivalTime: 1732766112000, sender: 'alice@example.org', recipients: [{ address: 'bob@example.com' }, { address: 'carol@example.net' }] };

async function withSpool(fn: (spool: Spool, dir: string) => Promise<void>, long = false): Promise<void> {
  const { dir, cleanup } = tempDir();
  try {
    await fn(await createSpool(join(dir, 'q'), { longQueueIds: long }), join(dir, 'q'));
  } finally {
    cleanup();
  }
}

test('writeMessage with a content function writes content that names its own queue ID, once', () =>
  withSpool(async (spool, dir) => {
    const seen: string[] = [];
    const id = await spool.writeMessage(env, (qid) => {
      seen.push(qid);
      return Buffer.from(`Received: by mx id ${qid}\n\nhello\n`);
    });
    assert.deepEqual(seen, [id]);
    assert.deepEqual(readdirSync(join(dir, 'incoming')), [id]);
    const { content: c } = await spool.readMessage('incoming', id);
    assert.equal(c.toString(), `Received: by mx id ${id}\n\nhello\n`);
  }));

test('createSpool makes every directory with mode 0700', () =>
  withSpool(async (_spool, dir) => {
    for (const d of ['maildrop', 'incoming', 'active', 'deferred', 'hold', 'corrupt', 'defer', 'public']) {
      assert.equal(statSync(join(dir, d)).mode & 0o777, 0o700, d);
    }
  }));

test('writeMessage names the file after its inode and leaves no temp file', () =>
  withSpool(async (spool, dir) => {
    const id = await spool.writeMessage(env, content);
    assert.deepEqual(readdirSync(join(dir, 'incoming')), [id]);
    const parsed = parseQueueId(id)!;
    assert.equal(parsed.form, 'short');
    assert.equal(parsed.inode, statSync(join(dir, 'incoming', id), { bigint: true }).ino);
    const { envelope, content: c } = await spool.readMessage('incoming', id);
    assert.ok(c.equals(content));
    assert.equal(envelope.sender, 'alice@example.org');
  }));

test('long queue IDs carry the arrival second', () =>
  withSpool(async (spool) => {
    const before = Math.floor(Date.now() / 1000);
    const id = await spool.writeMessage(env, content);
    const p = parseQueueId(id)!;
    assert.equal(p.form, 'long');
    assert.ok(p.form === 'long' && p.seconds >= before && p.seconds <= before + 2);
  }, true));

test('maildrop submissions go to maildrop', () =>
  withSpool(async (spool) => {
    const id = await spool.writeMessage(env, content, 'maildrop');
    assert.deepEqual(spool.list('maildrop'), [id]);
    assert.equal(spool.locate(id), 'maildrop');
  }));

test('a failed write is a QueueWriteError and leaves no file behind', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const spool = await createSpool(dir, {
      io: {
        async writeAll(fh, data) {
          await fh.write(data, 0, Math.floor(data.length / 2), 0);
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        },
      },
    });
    await assert.rejects(spool.writeMessage(env, content), (err: unknown) => err instanceof QueueWriteError && err.code === 'ENOSPC');
    assert.deepEqual(readdirSync(join(dir, 'incoming')), []);
  } finally {
    cleanup();
  }
});

test('an unwritable queue directory is a QueueWriteError', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const spool = await createSpool(dir);
    // A regular file where the directory should be: open() fails with ENOTDIR for any user.
    const { rmSync } = await import('node:fs');
    rmSync(join(dir, 'incoming'), { recursive: true });
    writeFileSync(join(dir, 'incoming'), '');
    await assert.rejects(spool.writeMessage(env, content), (err: unknown) => err instanceof QueueWriteError && err.code === 'ENOTDIR');
  } finally {
    cleanup();
  }
});

test('markDone flips one byte durably; move, list, locate, remove', () =>
  withSpool(async (spool, dir) => {
    const id = await spool.writeMessage(env, content);
    const before = readFileSync(join(dir, 'incoming', id));
    assert.equal(await spool.markDone('incoming', id, 1), true);
    assert.equal(await spool.markDone('incoming', id, 1), false);
    const after = readFileSync(join(dir, 'incoming', id));
    const diff = [...before].flatMap((b, i) => (b !== after[i] ? [i] : []));
    assert.equal(diff.length, 1);
    assert.deepEqual(spool.readEnvelope('incoming', id).recipients.map((r) => r.status), ['pending', 'done']);
    await assert.rejects(spool.markDone('incoming', id, 2), RangeError);

    assert.equal(await spool.move(id, 'incoming', 'deferred'), true);
    assert.equal(await spool.move(id, 'incoming', 'deferred'), false);
    assert.equal(spool.locate(id), 'deferred');
    assert.deepEqual(spool.list('deferred'), [id]);
    assert.equal(await spool.setForcedExpire('deferred', id), true);
    assert.equal(spool.readEnvelope('deferred', id).forcedExpire, true);

    await spool.setDelayReason(id, { index: 0, address: 'bob@example.com', status: '4.7.5', reason: 'Server certificate not verified' });
    assert.equal(spool.readDelayReasons(id).get(0)!.reason, 'Server certificate not verified');
    assert.ok(spool.delayLogIds().has(id));
    assert.equal(await spool.remove('deferred', id), true);
    assert.equal(spool.locate(id), undefined);
    assert.equal(spool.readDelayReasons(id).size, 0);
    assert.equal(await spool.remove('deferred', id), false);
  }));

test('scan walks queues in showq order and quarantines corrupt files', () =>
  withSpool(async (spool, dir) => {
    const a = await spool.writeMessage(env, content);
    const b = await spool.writeMessage(env, content);
    await spool.move(a, 'incoming', 'hold');
    await spool.move(b, 'incoming', 'active');
    const full = encodeQueueFile(env, content);
    writeFileSync(join(dir, 'deferred', 'BAD1'), full.subarray(0, full.length - 5)); // truncated
    writeFileSync(join(dir, 'deferred', 'BAD2'), 'garbage');
    writeFileSync(join(dir, 'incoming', 'tmp.1.1'), 'half written'); // a temp file: not a message
    const seen: string[] = [];
    const corrupt: string[] = [];
    const summary = await spool.scan({ onMessage: (e) => seen.push(`${e.queue}/${e.id}`), onCorrupt: (f) => corrupt.push(`${f.queue}/${f.id}: ${f.error}`) });
    assert.deepEqual(seen, [`active/${b}`, `hold/${a}`]);
    assert.equal(summary.messages, 2);
    assert.equal(summary.corrupt, 2);
    assert.match(corrupt[0]!, /^deferred\/BAD1: truncated file/);
    assert.match(corrupt[1]!, /^deferred\/BAD2: truncated header/);
    assert.deepEqual(readdirSync(join(dir, 'corrupt')).sort(), ['BAD1', 'BAD2']);
    assert.deepEqual(spool.list('deferred'), []);
    // The temp file is left for recover().
    assert.equal(await spool.recover(60_000), 0);
    assert.equal(await spool.recover(), 1);
    assert.deepEqual(readdirSync(join(dir, 'incoming')), []);
  }));

test('read-only scan reports but does not move corrupt files', () =>
  withSpool(async (spool, dir) => {
    writeFileSync(join(dir, 'deferred', 'BAD'), 'x'.repeat(100));
    const corrupt: string[] = [];
    await spool.scan({ quarantine: false, onCorrupt: (f) => corrupt.push(f.id) });
    assert.deepEqual(corrupt, ['BAD']);
    assert.deepEqual(spool.list('deferred'), ['BAD']);
  }));

test('requeue writes a new ID with the pending recipients only', () =>
  withSpool(async (spool) => {
    const id = await spool.writeMessage(env, content);
    await spool.move(id, 'incoming', 'deferred');
    await spool.markDone('deferred', id, 0);
    await spool.setForcedExpire('deferred', id);
    const newId = await spool.requeue('deferred', id);
    assert.ok(newId && newId !== id);
    assert.equal(spool.locate(id), undefined);
    const e = spool.readEnvelope('incoming', newId);
    assert.deepEqual(e.recipients.map((r) => r.address), ['carol@example.net']);
    assert.equal(e.arrivalTime, env.arrivalTime);
    assert.equal(e.forcedExpire, false);
    assert.equal(await spool.requeue('deferred', id), undefined);
  }));

test('openSpool names a missing directory', () => {
  assert.throws(() => openSpool('/nonexistent/sealpost-q'), /open queue directory \/nonexistent\/sealpost-q: No such file or directory/);
});

test('a large envelope (many recipients) is read past the first 4 KiB', () =>
  withSpool(async (spool) => {
    const many = Array.from({ length: 500 }, (_, i) => ({ address: `user${i}@example.com` }));
    const id = await spool.writeMessage({ ...env, recipients: many }, content);
    assert.equal(spool.readEnvelope('incoming', id).recipients.length, 500);
  }));

test('mtimes: many files of one queue at once (a worker thread), undefined for one that is gone, in the order asked', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const spool = await createSpool(join(dir, 'q'), { fsync: false });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = await spool.writeMessage({ arrivalTime: Date.now(), sender: 'a@example.org', recipients: [{ address: 'b@example.com' }] }, Buffer.from('x\r\n'));
      await spool.move(id, 'incoming', 'deferred');
      await spool.setNextAttempt('deferred', id, 1_000_000_000_000 + i * 1000);
      ids.push(id);
    }
    const got = await spool.mtimes('deferred', [ids[3]!, 'NOSUCH0000', ...ids]);
    assert.deepEqual(got, [statSync(spool.path('deferred', ids[3]!)).mtimeMs, undefined, ...ids.map((id) => statSync(spool.path('deferred', id)).mtimeMs)]);
    assert.equal(got[2], 1_000_000_000_000);
  } finally {
    cleanup();
  }
});
