/**
 * queue-gauge.ts — how many messages wait in each queue and how old the
 * oldest one is, read cheaply from the spool at scrape time.
 *
 * Contract:
 * - `QueueGauge` is the seam metrics use; `SpoolQueueGauge` implements it
 *   over the queue directories: it counts directory entries (readdir, never
 *   opening a queue file; `tmp.*` files being written are not counted) on
 *   every call.
 * - The oldest message's age is the age of the oldest queue file, from its
 *   creation time (statx birth time, which a rename between queues keeps;
 *   the modification time where the file system records no birth time, except
 *   in deferred/ where the mtime is the next attempt time and the file is
 *   skipped). Stat'ing every file costs more than counting, so ages are
 *   refreshed at most every `ageRefreshMs` (default 60 s), a queue of 1,000
 *   files or more in bulk by a worker thread (queue/stat-times.ts); counts
 *   are always fresh. A requeued message (postsuper -r) counts from its requeue.
 * - A missing queue directory reads as empty; nothing here throws for a file
 *   that vanishes between readdir and stat.
 *
 * Not here: the metric names (metrics.ts), per-destination shapes (which need
 * the envelopes: queue-snapshot.ts).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MESSAGE_QUEUES, type MessageQueue } from '../queue/spool.ts';
import { statTimes } from '../queue/stat-times.ts';

export interface QueueFigures {
  readonly messages: number;
  /** Creation time (ms since the epoch) of the oldest file, when the queue is not empty. */
  readonly oldest?: number;
}

export interface QueueGauge {
  read(): Promise<Readonly<Record<MessageQueue, QueueFigures>>>;
}

export interface SpoolGaugeOptions {
  readonly ageRefreshMs?: number;
  readonly now?: () => number;
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('tmp.'));
  } catch {
    return [];
  }
}

/** From this many files on, their times are read in bulk by a worker thread (queue/stat-times.ts). */
const BULK_MIN = 1000;

/** The creation time of the oldest file: a big queue's times in bulk, a small one's in batches of thread-pool stats. */
async function oldestOf(dir: string, files: readonly string[], useMtime: boolean): Promise<number | undefined> {
  let oldest: number | undefined;
  if (files.length >= BULK_MIN) {
    for (const t of await statTimes(dir, files)) {
      const when = t === undefined ? undefined : t.birth > 0 ? t.birth : useMtime ? t.mtime : undefined;
      if (when !== undefined && (oldest === undefined || when < oldest)) oldest = when;
    }
    return oldest;
  }
  const BATCH = 64;
  for (let i = 0; i < files.length; i += BATCH) {
    const stats = await Promise.all(files.slice(i, i + BATCH).map((f) => stat(join(dir, f)).catch(() => undefined)));
    for (const s of stats) {
      if (!s) continue;
      const t = s.birthtimeMs > 0 ? s.birthtimeMs : useMtime ? s.mtimeMs : undefined;
      if (t !== undefined && (oldest === undefined || t < oldest)) oldest = t;
    }
  }
  return oldest;
}

export class SpoolQueueGauge implements QueueGauge {
  private readonly refreshMs: number;
  private readonly now: () => number;
  private ages: Partial<Record<MessageQueue, number | undefined>> = {};
  private agesAt = -Infinity;

  constructor(
    private readonly queueDir: string,
    opts: SpoolGaugeOptions = {},
  ) {
    this.refreshMs = opts.ageRefreshMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  async read(): Promise<Readonly<Record<MessageQueue, QueueFigures>>> {
    const lists = await Promise.all(MESSAGE_QUEUES.map((q) => names(join(this.queueDir, q))));
    const refresh = this.now() - this.agesAt >= this.refreshMs;
    if (refresh) {
      this.agesAt = this.now();
      const ages = await Promise.all(MESSAGE_QUEUES.map((q, i) => oldestOf(join(this.queueDir, q), lists[i]!, q !== 'deferred')));
      this.ages = Object.fromEntries(MESSAGE_QUEUES.map((q, i) => [q, ages[i]]));
    }
    const out = {} as Record<MessageQueue, QueueFigures>;
    MESSAGE_QUEUES.forEach((q, i) => {
      const messages = lists[i]!.length;
      const oldest = messages > 0 ? this.ages[q] : undefined;
      out[q] = oldest === undefined ? { messages } : { messages, oldest };
    });
    return out;
  }
}
