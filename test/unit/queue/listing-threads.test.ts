/**
 * listing-threads — mailq over a big queue with worker threads (listing.ts
 * `threads`, listing-worker.ts) prints exactly what the single-thread walk
 * prints: the same bytes in mailq and postqueue -j form over 5,200 messages
 * in two queues, with delay reasons, a held message and a corrupt file (one
 * identical warning either way).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listQueue } from '../../../src/queue/listing.ts';
import { asctime } from '../../../src/queue/showq.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import { tempDir } from '../../harness/cli.ts';

test('threaded listing equals the single-thread listing, byte for byte, in both formats', { timeout: 120_000 }, async () => {
  const t = tempDir();
  try {
    const spool = await createSpool(t.dir, { fsync: false });
    const content = Buffer.from('Subject: x\n\nbody\n');
    for (let i = 0; i < 5200; i++) {
      const id = await spool.writeMessage(
        { arrivalTime: 1_700_000_000_000 + i * 1000, sender: i % 97 === 0 ? '' : `s${i}@example.org`, recipients: [{ address: `r${i}@example.com` }, { address: `q${i}@example.net` }] },
        content,
      );
      await spool.move(id, 'incoming', i === 7 ? 'hold' : 'deferred');
      if (i % 10 === 0) await spool.setDelayReason(id, { index: 1, address: `q${i}@example.net`, status: '4.7.5', reason: 'Server certificate not verified' });
    }
    writeFileSync(join(t.dir, 'deferred', '0BADBADBAD'), 'not a queue file');
    const run = async (format: 'compat' | 'json', threads: number) => {
      let out = '';
      const warnings: string[] = [];
      const r = await listQueue(spool, {
        format,
        threads,
        longQueueIds: false,
        asctime: (s) => asctime(s),
        emptyAddress: 'MAILER-DAEMON',
        write: async (c) => void (out += c),
        onWarning: (m) => warnings.push(m),
      });
      return { out, warnings, messages: r.messages };
    };
    for (const format of ['compat', 'json'] as const) {
      const one = await run(format, 1);
      const two = await run(format, 2);
      assert.equal(one.messages, 5200);
      assert.equal(two.messages, one.messages);
      assert.equal(two.out, one.out, `${format} output differs`);
      assert.deepEqual(two.warnings, one.warnings);
      assert.equal(two.warnings.length, 1);
      assert.match(two.warnings[0]!, /^deferred\/0BADBADBAD: skipping corrupt queue file: /);
    }
  } finally {
    t.cleanup();
  }
});
