/**
 * journal-store.ts — the daemon's side of the group-commit journal
 * (journal.ts): recovery at start, settling sealed segments while it runs,
 * and a clean journal at stop.
 *
 * Contract:
 * - `openQueueJournal(spool)` runs before the daemon accepts mail and before
 *   the queue manager scans: every message the journal still vouches for
 *   (acknowledged with 250, not yet forgotten) gets a queue file that parses,
 *   made durable with fsync — the file as it is when it exists and parses
 *   (it may have moved to another queue, its status bytes may have changed),
 *   else the journal's copy written into its queue. Then the old segments go
 *   and the spool writes through a new journal (Spool.useJournal).
 * - While the daemon runs, every `settleMs` the current segment is sealed
 *   when big or old enough (journal.ts), and the messages still live in
 *   sealed segments (deferred or held mail, mail in delivery) are made
 *   durable in their own files (fsync of the file and its directory); then
 *   the journal retires those segments. So the journal stays small: it only
 *   ever holds the last seconds of mail.
 * - `closeQueueJournal(spool)` (daemon stop): what is pending is written and
 *   fsynced, every live message is made durable in its own file, and the
 *   segments are removed: a stopped daemon leaves a plain Postfix-style spool
 *   that every tool (and postsuper) may change freely.
 * - Recovery limit: a message deleted with `postsuper -d` while it was being
 *   received or delivered, just before a crash of the daemon, may come back
 *   after the crash (the journal still vouched for it). Nothing acknowledged
 *   is ever lost.
 *
 * Not here: the record format and the group commit (journal.ts), queue files
 * (spool.ts).
 */
import { chownSync, closeSync, fsyncSync, statSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { isNotFound } from '../lib/fs-errors.ts';
import { Journal, JOURNAL_DIR, readJournal, type JournalEntry, type JournalOptions } from './journal.ts';
import { decodeQueueFile } from './queue-file.ts';
import type { MessageQueue, Spool } from './spool.ts';

export interface QueueJournalOptions extends JournalOptions {
  /** How often sealed segments are settled (default 1 s). */
  readonly settleMs?: number;
}

export interface JournalRecovery {
  /** Messages the journal vouched for after a crash. */
  readonly vouched: number;
  /** ... whose queue file had to be written from the journal. */
  readonly restored: number;
}

class Maintenance {
  private readonly timer: NodeJS.Timeout;
  private running: Promise<void> | undefined;

  constructor(private readonly spool: Spool, readonly journal: Journal, settleMs: number) {
    this.timer = setInterval(() => void this.tick(), settleMs);
    this.timer.unref();
  }

  tick(): Promise<void> {
    this.running ??= (async () => {
      try {
        this.journal.maybeSeal();
        for (const { ids } of this.journal.sealedLive()) {
          await makeDurable(this.spool, ids);
          this.journal.settled(ids);
        }
      } catch {
        // A file that cannot be fsynced stays vouched for by the journal; the next tick tries again.
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.journal.close();
    await makeDurable(this.spool, this.journal.allLive());
    this.journal.removeAll();
  }
}

const maintenance = new WeakMap<Spool, Maintenance>();

/** Where the file of `id` is now (two looks: a move may be under way). */
function locate(spool: Spool, id: string): MessageQueue | undefined {
  return (spool.locate(id) ?? spool.locate(id)) as MessageQueue | undefined;
}

/** fsync each message's file and then each directory holding one (messages that are gone are skipped). */
async function makeDurable(spool: Spool, ids: readonly string[]): Promise<void> {
  const dirs = new Set<string>();
  for (const id of ids) {
    const queue = locate(spool, id);
    if (!queue) continue;
    try {
      const fh = await open(spool.path(queue, id), 'r');
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
      dirs.add(join(spool.dir, queue));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  for (const dir of dirs) {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

/** Does the file at `path` parse (both checksums)? */
function parses(path: string): boolean {
  try {
    decodeQueueFile(readFileSync(path));
    return true;
  } catch {
    return false;
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Give one vouched-for message a durable queue file; true when it was written from the journal. */
function restore(spool: Spool, e: JournalEntry, dirs: Set<string>): boolean {
  const queue = locate(spool, e.id);
  if (queue && parses(spool.path(queue, e.id))) {
    fsyncPath(spool.path(queue, e.id));
    dirs.add(join(spool.dir, queue));
    return false;
  }
  const target = queue ?? e.queue;
  const tmp = join(spool.dir, target, `tmp.journal.${e.id}`);
  writeFileSync(tmp, e.bytes, { mode: 0o600 });
  // Recovery runs as root before the privilege drop: the file belongs to the queue's owner.
  if (process.geteuid?.() === 0) {
    const st = statSync(join(spool.dir, target));
    chownSync(tmp, st.uid, st.gid);
  }
  fsyncPath(tmp);
  renameSync(tmp, spool.path(target, e.id));
  dirs.add(join(spool.dir, target));
  return true;
}

/** Recover from the journal left by a crash, then write through a new one (see the header). */
export async function openQueueJournal(spool: Spool, opts: QueueJournalOptions = {}): Promise<JournalRecovery> {
  const dir = join(spool.dir, JOURNAL_DIR);
  const { entries, segments } = readJournal(dir);
  const dirs = new Set<string>();
  let restored = 0;
  for (const e of entries) if (restore(spool, e, dirs)) restored++;
  for (const d of dirs) fsyncPath(d);
  for (const s of segments) {
    try {
      unlinkSync(s);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  const journal = new Journal(dir, opts);
  spool.useJournal(journal);
  maintenance.set(spool, new Maintenance(spool, journal, opts.settleMs ?? 1000));
  return { vouched: entries.length, restored };
}

/** Seal and settle now (tests; the timer does it every settleMs). */
export function settleQueueJournal(spool: Spool): Promise<void> {
  return maintenance.get(spool)?.tick() ?? Promise.resolve();
}

/** Daemon stop: everything durable in its own file, no journal left (see the header). */
export async function closeQueueJournal(spool: Spool): Promise<void> {
  const m = maintenance.get(spool);
  if (!m) return;
  maintenance.delete(spool);
  await m.close();
  spool.useJournal(undefined);
}
