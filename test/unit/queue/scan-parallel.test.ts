/**
 * scan-parallel — Spool.scan() with `readers: 2` (the mailq path for big
 * queues, envelope-worker.ts) sees exactly what the single-thread scan sees:
 * the same messages in the same order, the same corrupt file, and a file
 * that vanished between listing and reading is skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSpool } from '../../../src/queue/spool.ts';
import type { ScanEntry } from '../../../src/queue/spool.ts';
import { tempDir } from '../../harness/cli.ts';

test('scan with two reader threads equals the single-thread scan over 5,200 messages and a corrupt file', async () => {
  const t = tempDir();
  try {
    const spool = await createSpool(t.dir, { fsync: false });
    const content = Buffer.from('Subject: x\n\nbody\n');
    for (let i = 0; i < 5200; i++) {
      const id = await spool.writeMessage({ arrivalTime: 1_700_000_000_000 + i, sender: `s${i}@example.org`, recipients: [{ address: `r${i}@example.com` }] }, content);
      await spool.move(id, 'incoming', 'deferred');
    }
    writeFileSync(join(t.dir, 'deferred', '0BADBADBAD'), 'not a queue file');
    const run = async (readers: number) => {
      const seen: string[] = [];
      const corrupt: string[] = [];
      const summary = await spool.scan({
        readers,
        quarantine: false,
        onMessage: (e: ScanEntry) => seen.push(`${e.queue}/${e.id} ${e.envelope.sender} ${e.envelope.recipients[0]!.address}`),
        onCorrupt: (f) => corrupt.push(`${f.queue}/${f.id}: ${f.error}`),
      });
      return { seen, corrupt, summary };
    };
    const one = await run(1);
    const two = await run(2);
    assert.equal(one.seen.length, 5200);
    assert.deepEqual(two.seen, one.seen);
    assert.deepEqual(two.corrupt, one.corrupt);
    assert.equal(two.corrupt.length, 1);
    assert.match(two.corrupt[0]!, /^deferred\/0BADBADBAD: /);
    assert.deepEqual(two.summary, { messages: 5200, corrupt: 1 });
  } finally {
    t.cleanup();
  }
});
