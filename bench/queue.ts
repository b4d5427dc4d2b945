/**
 * queue.ts (bench) — the queue's three hot paths at 100k messages:
 * durable intake (writeMessage with fsync, msgs/s), the `mailq` listing over
 * 100k deferred messages (target < 2 s) and the restart scan (target < 5 s),
 * plus the peak RSS. Uses a temporary spool, removed afterwards.
 *
 * `bench()` is imported by bench/run.ts; `SEALPOST_BENCH_QUEUE_N` changes the
 * message count (default 100000). Run alone: `node --import tsx bench/queue.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listQueue } from '../src/queue/listing.ts';
import { asctime } from '../src/queue/showq.ts';
import { createSpool } from '../src/queue/spool.ts';

const CONCURRENCY = 64;

function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export async function bench(): Promise<void> {
  const n = Number(process.env.SEALPOST_BENCH_QUEUE_N ?? 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-queue-'));
  try {
    const spool = await createSpool(dir, { fsync: true });
    const content = Buffer.from('From: alice@example.org\nTo: bob@example.com\nSubject: bench\n\n' + 'x'.repeat(400) + '\n');
    const ids: string[] = new Array(n);
    let next = 0;
    let t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < n; i = next++) {
          ids[i] = await spool.writeMessage(
            { arrivalTime: Date.now(), sender: 'alice@example.org', recipients: [{ address: `bob${i}@example.com` }, { address: 'carol@example.net' }] },
            content,
          );
        }
      }),
    );
    const write = seconds(t0);
    console.log(`queue: writeMessage (fsync file + directory, ${CONCURRENCY} in flight): ${n} msgs in ${write.toFixed(2)} s = ${Math.round(n / write)} msgs/s`);

    for (let i = 0; i < n; i++) {
      await spool.move(ids[i]!, 'incoming', 'deferred');
      if (i % 10 === 0) await spool.setDelayReason(ids[i]!, { index: 0, address: `bob${i}@example.com`, status: '4.7.5', reason: 'Server certificate not verified' });
    }

    t0 = process.hrtime.bigint();
    let bytes = 0;
    await listQueue(spool, { format: 'compat', longQueueIds: false, asctime: (s) => asctime(s), emptyAddress: 'MAILER-DAEMON', write: async (c) => void (bytes += c.length) });
    const mailq = seconds(t0);
    console.log(`queue: mailq over ${n} deferred messages: ${mailq.toFixed(2)} s (${bytes} bytes of output; target < 2 s)`);

    t0 = process.hrtime.bigint();
    const summary = await spool.scan({ onMessage: () => undefined });
    const scan = seconds(t0);
    console.log(`queue: restart scan of ${summary.messages} messages: ${scan.toFixed(2)} s (target < 5 s)`);
    console.log(`queue: peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
