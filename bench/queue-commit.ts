/**
 * queue-commit.ts (bench) — how to make a queue file durable before `250`,
 * measured four ways on the same workload (issue 14 asks to choose by
 * measurement: a well-kept embedded engine wins unless it measurably loses):
 *   fsync    each file fsynced, renamed, its directory fsynced (directory
 *            fsyncs shared by concurrent writers) — the spool without journal;
 *   journal  our group-commit journal (src/queue/journal.ts): the file written
 *            without fsync, its bytes appended to the journal, one fdatasync
 *            per batch;
 *   lmdb     the same, with LMDB (the `lmdb` package) as the log: one put per
 *            message, lmdb-js batching the puts of an event turn into one
 *            transaction, durable when its flush resolves; remove on delivery;
 *   sqlite   the same, with SQLite (better-sqlite3 12, WAL, synchronous=FULL):
 *            the inserts of an event turn in one transaction; delete on delivery.
 * The workload is the relay's: WRITERS concurrent sessions each writing a
 * 4 KB message through Spool.openMessage()/commit() and waiting for it to be
 * durable, and each message removed ("delivered") right after.
 *
 * Each variant runs in its own child process (fresh heap), the variants
 * interleaved, ROUNDS rounds; printed: msgs/s, CPU per message (the whole
 * process: every thread), and fsync-family calls per message counted with
 * `strace -f -c` when strace is installed (a separate, shorter run: tracing
 * slows the process). lmdb and better-sqlite3 are not dependencies of
 * sealpost: install them beside it to compare
 * (`npm install --no-save lmdb@3.5.6 better-sqlite3@12.11.1`); a variant whose
 * package is missing prints a skip line.
 *
 * `bench()` is imported by bench/run.ts; SEALPOST_BENCH_COMMIT_N (default
 * 4000) and SEALPOST_BENCH_QUICK (fewer messages, one round). Run alone:
 * `node --import tsx bench/queue-commit.ts`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, type CommitLog, type JournalQueue, type JournalStats } from '../src/queue/journal.ts';
import { createSpool, type Spool } from '../src/queue/spool.ts';
import { encodeQueueFile } from '../src/queue/queue-file.ts';

const WRITERS = 20;
/** Optional packages, named through variables: they are not dependencies of sealpost. */
const LMDB = 'lmdb';
const SQLITE = 'better-sqlite3';
const VARIANTS = ['fsync', 'journal', 'lmdb', 'sqlite'] as const;
type Variant = (typeof VARIANTS)[number];

/** LMDB as the commit log. */
async function lmdbLog(dir: string): Promise<CommitLog & { close(): Promise<void> }> {
  const { open } = (await import(LMDB)) as unknown as { open: (o: object) => { put(k: string, v: Buffer): Promise<boolean>; remove(k: string): Promise<boolean>; flushed: Promise<void>; close(): Promise<void> } };
  const db = open({ path: join(dir, 'lmdb'), encoding: 'binary', compression: false });
  const stats: JournalStats = { syncs: 0, messages: 0 };
  return {
    stats,
    async append(_queue: JournalQueue, id: string, bytes: readonly Uint8Array[]) {
      await db.put(id, Buffer.concat(bytes as Uint8Array[]));
      await db.flushed;
      stats.messages++;
    },
    forget(id: string) {
      void db.remove(id);
    },
    close: () => db.close(),
  };
}

/** SQLite (WAL, synchronous=FULL) as the commit log: one transaction per event turn. */
async function sqliteLog(dir: string): Promise<CommitLog & { close(): Promise<void> }> {
  const Database = ((await import(SQLITE)) as unknown as { default: new (f: string) => SqliteDb }).default;
  const db = new Database(join(dir, 'log.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE IF NOT EXISTS m (id TEXT PRIMARY KEY, bytes BLOB)');
  const ins = db.prepare('INSERT INTO m (id, bytes) VALUES (?, ?)');
  const del = db.prepare('DELETE FROM m WHERE id = ?');
  const stats: JournalStats = { syncs: 0, messages: 0 };
  let batch: Array<{ id: string; bytes: Buffer; done: () => void }> = [];
  let forgets: string[] = [];
  let scheduled = false;
  const run = db.transaction((items: typeof batch, gone: string[]) => {
    for (const it of items) ins.run(it.id, it.bytes);
    for (const id of gone) del.run(id);
  });
  const flush = () => {
    scheduled = false;
    const items = batch;
    const gone = forgets;
    batch = [];
    forgets = [];
    run(items, gone);
    stats.syncs++;
    stats.messages += items.length;
    for (const it of items) it.done();
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return {
    stats,
    append(_queue: JournalQueue, id: string, bytes: readonly Uint8Array[]) {
      return new Promise<void>((done) => {
        batch.push({ id, bytes: Buffer.concat(bytes as Uint8Array[]), done });
        schedule();
      });
    },
    forget(id: string) {
      forgets.push(id);
      schedule();
    },
    close: async () => db.close(),
  };
}

interface SqliteDb {
  pragma(s: string): unknown;
  exec(s: string): void;
  prepare(s: string): { run(...a: unknown[]): unknown };
  transaction<A extends unknown[]>(f: (...a: A) => void): (...a: A) => void;
  close(): void;
}

/** The workload in this process: prints one JSON line {n, secs, cpuMs}. */
async function child(variant: Variant, n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `sealpost-bench-commit-${variant}-`));
  try {
    let log: (CommitLog & { close(): Promise<void> }) | undefined;
    if (variant === 'journal') {
      mkdirSync(join(dir, 'journal-dir'));
      const j = new Journal(join(dir, 'journal-dir'), {});
      log = j;
    } else if (variant === 'lmdb') log = await lmdbLog(dir);
    else if (variant === 'sqlite') log = await sqliteLog(dir);
    const spool: Spool = await createSpool(join(dir, 'q'), log ? { journal: log } : {});
    const content = Buffer.from(`Subject: bench\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(50));
    const env = { arrivalTime: Date.now(), sender: 'bench@example.org', recipients: [{ address: 'sink@example.com' }] };
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let next = 0;
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        for (let i = next++; i < n; i = next++) {
          const f = await spool.openMessage('incoming');
          await f.commit([encodeQueueFile(env, content)]);
          // Delivered: the store forgets it and removes the file.
          log?.forget(f.id);
          await spool.removeFile('incoming', f.id);
        }
      }),
    );
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    await log?.close();
    process.stdout.write(`${JSON.stringify({ n, secs, cpuMs: (c.user + c.system) / 1000 })}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function available(v: Variant): Promise<boolean> {
  if (v === 'lmdb' || v === 'sqlite') {
    try {
      await import(v === 'lmdb' ? LMDB : SQLITE);
    } catch {
      return false;
    }
  }
  return true;
}

function runChild(v: Variant, n: number, strace: boolean): { n: number; secs: number; cpuMs: number; fsyncs?: number } {
  const self = [process.execPath, '--import', 'tsx', 'bench/queue-commit.ts', '--child', v, String(n)];
  if (!strace) return JSON.parse(execFileSync(self[0]!, self.slice(1), { encoding: 'utf8' }).trim().split('\n').pop()!);
  const out = join(tmpdir(), `sealpost-commit-strace-${process.pid}-${v}`);
  const r = spawnSync('strace', ['-f', '-c', '-e', 'trace=fsync,fdatasync,msync,sync_file_range', '-o', out, ...self], { encoding: 'utf8' });
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
  let fsyncs = 0;
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync|msync|sync_file_range)$/.exec(line);
    if (m) fsyncs += Number(m[1]);
  }
  rmSync(out, { force: true });
  return { ...res, fsyncs };
}

export async function bench(): Promise<void> {
  const quick = process.env.SEALPOST_BENCH_QUICK !== undefined;
  const n = Number(process.env.SEALPOST_BENCH_COMMIT_N ?? (quick ? 1500 : 4000));
  const rounds = quick ? 1 : 3;
  const variants: Variant[] = [];
  for (const v of VARIANTS) {
    if (await available(v)) variants.push(v);
    else process.stdout.write(`queue-commit: ${v} skipped (install it beside sealpost to compare: npm install --no-save lmdb@3.5.6 better-sqlite3@12.11.1)\n`);
  }
  const results = new Map<Variant, Array<{ rate: number; cpu: number }>>();
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const x = runChild(v, n, false);
      results.set(v, [...(results.get(v) ?? []), { rate: x.n / x.secs, cpu: x.cpuMs / x.n }]);
    }
  }
  const traced = existsSync('/usr/bin/strace');
  for (const v of variants) {
    const xs = results.get(v)!;
    const rate = median(xs.map((x) => x.rate));
    const cpu = median(xs.map((x) => x.cpu));
    const f = traced ? runChild(v, Math.min(n, 1000), true) : undefined;
    process.stdout.write(
      `queue-commit: ${v.padEnd(7)} ${WRITERS} writers x 4 KB: ${rate.toFixed(0)} msgs/s, CPU ${cpu.toFixed(3)} ms/msg` +
        `${f ? `, ${(f.fsyncs! / f.n).toFixed(2)} fsync-family calls/msg (strace)` : ''} (median of ${rounds}; load ${loadavg()})\n`,
    );
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

if (process.argv[2] === '--child') await child(process.argv[3] as Variant, Number(process.argv[4]));
else if (import.meta.url === `file://${process.argv[1]}`) await bench();
