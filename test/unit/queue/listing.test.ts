/**
 * Golden tests for the mailq / postqueue -j listing: each test/golden/mailq/NAME.in
 * describes a queue (messages with fixed IDs, queues, sizes, reasons); the spool is
 * built for real, listed, and compared byte for byte with NAME.ref (mailq layout)
 * and, when present, NAME.json.ref (JSON lines). Times are rendered in UTC.
 * Set UPDATE_GOLDEN=1 to write missing .ref files (review them before committing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../harness/cli.ts';
import { listQueue } from '../../../src/queue/listing.ts';
import { asctime } from '../../../src/queue/showq.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import type { MessageQueue } from '../../../src/queue/spool.ts';

const GOLDEN = fileURLToPath(new URL('../../golden/mailq/', import.meta.url));

interface GoldenRecipient {
  address: string;
  reason?: string;
  done?: boolean;
}
interface GoldenMessage {
  queue: MessageQueue;
  id: string;
  arrival: number;
  size: number;
  sender: string;
  forced_expire?: boolean;
  recipients: GoldenRecipient[];
}
interface GoldenCase {
  long_queue_ids: boolean;
  messages: GoldenMessage[];
}

async function render(spec: GoldenCase, format: 'compat' | 'json'): Promise<string> {
  const { dir, cleanup } = tempDir();
  try {
    const spool = await createSpool(dir, { fsync: false });
    for (const m of spec.messages) {
      const tmpId = await spool.writeMessage(
        { arrivalTime: m.arrival * 1000, sender: m.sender, recipients: m.recipients.map((r) => ({ address: r.address })) },
        Buffer.alloc(m.size, 'x'),
      );
      renameSync(spool.path('incoming', tmpId), spool.path(m.queue, m.id));
      for (const [i, r] of m.recipients.entries()) {
        if (r.done) await spool.markDone(m.queue, m.id, i);
        if (r.reason !== undefined) await spool.setDelayReason(m.id, { index: i, address: r.address, status: '4.0.0', reason: r.reason });
      }
      if (m.forced_expire) await spool.setForcedExpire(m.queue, m.id);
    }
    let out = '';
    await listQueue(spool, {
      format,
      longQueueIds: spec.long_queue_ids,
      asctime: (s) => asctime(s, true),
      emptyAddress: 'MAILER-DAEMON',
      write: async (chunk) => void (out += chunk),
    });
    return out;
  } finally {
    cleanup();
  }
}

function compare(refPath: string, actual: string): void {
  if (!existsSync(refPath) && process.env.UPDATE_GOLDEN === '1') writeFileSync(refPath, actual);
  assert.ok(existsSync(refPath), `${refPath} is missing (UPDATE_GOLDEN=1 writes it)`);
  assert.equal(actual, readFileSync(refPath, 'utf8'));
}

const cases = readdirSync(GOLDEN).filter((f) => f.endsWith('.in')).sort();

test('there are golden cases', () => {
  assert.ok(cases.length >= 9);
});

for (const file of cases) {
  const name = file.slice(0, -3);
  test(`mailq golden: ${name}`, async () => {
    const spec = JSON.parse(readFileSync(join(GOLDEN, file), 'utf8')) as GoldenCase;
    compare(join(GOLDEN, `${name}.ref`), await render(spec, 'compat'));
    if (existsSync(join(GOLDEN, `${name}.json.ref`)) || process.env.UPDATE_GOLDEN === '1') {
      compare(join(GOLDEN, `${name}.json.ref`), await render(spec, 'json'));
    }
  });
}
