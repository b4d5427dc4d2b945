/**
 * queue.ts (bench) — the queue's three hot paths at 100k messages:
 * durable intake (writeMessage with fsync, msgs/s), the `mailq` listing over
 * 100k deferred messages (target < 2 s) and the restart scan (target < 5 s),
 * plus the peak RSS. Uses a temporary spool, removed afterwards.
 *
 * `bench()` is imported by bench/run.ts; `SEALPOST_BENCH_QUEUE_N` changes the
 * message count (default 100000). Run alone: `node --import tsx bench/queue.ts`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listQueue } from '../src/queue/listing.ts';
import { asctime } from '../src/queue/showq.ts';
import { createSpool } from '../src/queue/spool.ts';
import { freePort, procFigures, stopDaemon, waitListening } from './relay.ts';

const CONCURRENCY = 64;

/**
 * The daemon itself over the same 100k deferred messages (next attempt in an
 * hour): the time from `sealpost start-fg` to listening (restart), its peak
 * RSS after a deferred-queue scan and a `postqueue -f` (every message moved
 * to active and scheduled to a destination that refuses connections), and
 * the time of the `mailq` command as a user runs it (a child process).
 */
async function daemonFigures(dir: string, n: number): Promise<void> {
  const hourFromNow = new Date(Date.now() + 3600_000);
  for (const id of readdirSync(join(dir, 'deferred'))) utimesSync(join(dir, 'deferred', id), hourFromNow, hourFromNow);
  const conf = join(dir, 'etc');
  mkdirSync(conf, { recursive: true });
  const port = await freePort();
  const dead = await freePort();
  writeFileSync(
    join(conf, 'main.cf'),
    [
      `queue_directory = ${dir}`,
      `data_directory = ${conf}/data`,
      `maillog_file = ${conf}/maillog`,
      'compatibility_level = 3.11',
      `relayhost = [127.0.0.1]:${dead}`,
      'smtp_tls_security_level = none',
      'queue_run_delay = 300s',
      '',
    ].join('\n'),
  );
  writeFileSync(join(conf, 'master.cf'), `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
  let t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, ['bin/sealpost.js', 'start-fg', '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitListening(port, 'sealpost');
    console.log(`queue: daemon restart with ${n} deferred messages: listening after ${seconds(t0).toFixed(2)} s (target < 5 s)`);
    t0 = process.hrtime.bigint();
    const out = execFileSync(process.execPath, ['bin/sealpost.js', 'mailq', '-c', conf], { maxBuffer: 1 << 30 });
    console.log(`queue: \`sealpost mailq\` (a child process) over ${n} queued messages: ${seconds(t0).toFixed(2)} s, ${out.length} bytes (target < 2 s)`);
    execFileSync(process.execPath, ['bin/sealpost.js', 'postqueue', '-c', conf, '-f']);
    const deadline = Date.now() + 120_000;
    // Wait until the flush has moved everything through active/ and back to deferred/.
    await new Promise((r) => setTimeout(r, 2000));
    while (Date.now() < deadline && readdirSync(join(dir, 'active')).length > 0) await new Promise((r) => setTimeout(r, 500));
    const proc = procFigures(child.pid!);
    console.log(`queue: daemon peak RSS with ${n} messages queued, after a flush of all of them: ${proc.peakRssMiB.toFixed(0)} MiB (target <= 200 MB)`);
  } finally {
    await stopDaemon(child);
  }
}

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
    await listQueue(spool, { format: 'compat', threads: 2, longQueueIds: false, asctime: (s) => asctime(s), emptyAddress: 'MAILER-DAEMON', write: async (c) => void (bytes += c.length) });
    const mailq = seconds(t0);
    console.log(`queue: mailq over ${n} deferred messages: ${mailq.toFixed(2)} s (${bytes} bytes of output; target < 2 s)`);

    t0 = process.hrtime.bigint();
    const summary = await spool.scan({ onMessage: () => undefined });
    const scan = seconds(t0);
    console.log(`queue: restart scan of ${summary.messages} messages: ${scan.toFixed(2)} s (target < 5 s)`);
    console.log(`queue: peak RSS of this bench process ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
    await daemonFigures(dir, n);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
