/**
 * store.ts — the TLS-RPT aggregation store (RFC 8460 §4): a subscriber of the
 * delivery event stream (reports/events.ts) that sums `tls-session` records
 * per policy domain per reporting period (a UTC day, or shorter when
 * `sealpost tlsrpt send --now` closes it early) and keeps the sums under
 * `$data_directory/tlsrpt/` (layout and crash safety: journal.ts).
 *
 * Contract:
 * - `record()` / the subscriber are synchronous and do no I/O: they classify
 *   the record (aggregate.ts) and add it to the pending batch of the open
 *   period. One write(2) per batch, no fsync: the batch is written on the next
 *   turn of the event loop, and while a write is in flight new records gather
 *   for the next one (group commit), so the cost per record is a map update.
 *   A count is durable once `onFlushed` reported it (`flush()` waits for it):
 *   a SIGKILL loses at most the batch not yet written and never a written one.
 * - All file work (append, compaction, rotation, closing) runs on one serial
 *   chain, so no two of them overlap. An I/O error is reported through
 *   `onWarning` once per batch and the batch's counts are kept in memory for
 *   the next try (never silently dropped, never written twice).
 * - Periods: the open period ends at the next UTC midnight after its start.
 *   The first record at or after that moment (or `rotateIfDue()`, which the
 *   daemon's timer calls) closes it with `end` = midnight; `closePeriod(now)`
 *   closes it at `now`. Closing writes `closed` (with `notBefore` = end + a
 *   random delay in [0, maxDelayMs], RFC 8460 §4.1 / §5: spread report
 *   traffic) and compacts the period to one snapshot. On `open()`, a period
 *   left open by a crash is reopened when it is still current, else closed.
 * - One writer: the caller holds the store lock (lock.ts).
 *
 * Not here: report building (report.ts), discovery and sending (send.ts,
 * service.ts), the read-only view for the CLI (`readPeriods` in journal.ts).
 */
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { TlsSessionRecord } from '../../delivery/outcome.ts';
import type { DeliveryEvent, Subscriber } from '../events.ts';
import { Aggregate, classify } from './aggregate.ts';
import { compact, encodeBatch, ensurePeriodDir, markClosed, readPeriods, removePeriodDir, type ClosedInfo, type PeriodOnDisk } from './journal.ts';

const DAY_MS = 86_400_000;

/** The UTC midnight at or before `t`. */
export function utcDayStart(t: number): number {
  return Math.floor(t / DAY_MS) * DAY_MS;
}

/** The next UTC midnight strictly after `t`. */
export function nextUtcMidnight(t: number): number {
  return (Math.floor(t / DAY_MS) + 1) * DAY_MS;
}

export interface StoreOptions {
  /** `$data_directory/tlsrpt`. */
  readonly dir: string;
  readonly clock?: () => number;
  readonly random?: () => number;
  /** Largest delay after a period's end before its reports go out. */
  readonly maxDelayMs?: number;
  /** Compact the open period's journals once they hold this many bytes. */
  readonly compactBytes?: number;
  readonly onWarning?: (message: string) => void;
  /** Called after each batch write completed, with the number of sessions it made durable. */
  readonly onFlushed?: (sessions: number) => void;
}

class OpenPeriod {
  pending = new Aggregate();
  /** Everything written so far (for compaction without re-reading). */
  readonly durable: Aggregate;
  fd: FileHandle | undefined;
  gen: number;
  bytes = 0;
  dir: string | undefined;

  constructor(
    readonly start: number,
    readonly naturalEnd: number,
    durable: Aggregate,
    gen: number,
    dir?: string,
  ) {
    this.durable = durable;
    this.gen = gen;
    this.dir = dir;
  }
}

export class TlsRptStore {
  private current: OpenPeriod;
  private chain: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly maxDelayMs: number;
  private readonly compactBytes: number;
  private closed = false;
  /** Sessions not counted, by reason (reused connections, report mail, ...). */
  readonly skipped = { reused: 0, exempt: 0, 'no-tls': 0, 'no-domain': 0 };

  private constructor(private readonly opts: StoreOptions, current: OpenPeriod) {
    this.clock = opts.clock ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.maxDelayMs = opts.maxDelayMs ?? 0;
    this.compactBytes = opts.compactBytes ?? 1 << 20;
    this.current = current;
  }

  /** Recover what is on disk and open the current period for appending. */
  static async open(opts: StoreOptions): Promise<TlsRptStore> {
    const clock = opts.clock ?? Date.now;
    const now = clock();
    const periods = await readPeriods(opts.dir);
    for (const p of periods) for (const w of p.problems) opts.onWarning?.(w);
    const open = periods.filter((p) => !p.closed);
    let current: OpenPeriod | undefined;
    const store = new TlsRptStore(opts, new OpenPeriod(now, nextUtcMidnight(now), new Aggregate(), 0));
    for (let i = 0; i < open.length; i++) {
      const p = open[i]!;
      const natural = nextUtcMidnight(p.start);
      const later = open[i + 1];
      if (!later && now < natural) {
        current = new OpenPeriod(p.start, natural, p.total, p.maxGen + 1, p.dir);
      } else {
        // Left open by a stop or crash: it ended at its midnight (or where the next one began).
        const end = later ? Math.min(natural, later.start) : natural;
        await store.finishClose(p.dir, p.total, p.maxGen, p.start, end);
      }
    }
    if (current) store.current = current;
    return store;
  }

  /** The event-bus subscriber (reports/events.ts). */
  subscriber(): Subscriber {
    return (e: DeliveryEvent) => {
      if (e.kind === 'tls-session') this.record(e.record, e.tlsRptExempt === true);
    };
  }

  /** Count one session (see the header). Synchronous, no I/O. */
  record(r: TlsSessionRecord, exempt = false): void {
    if (this.closed) return;
    const c = classify(r, exempt);
    if (!c.counts) {
      this.skipped[c.why]++;
      return;
    }
    const now = this.clock();
    if (now >= this.current.naturalEnd) this.switchPeriod(this.current.naturalEnd, utcDayStart(now));
    this.current.pending.add(c.policy, c.failure);
    this.scheduleFlush();
  }

  /** Resolves when every session recorded before the call is written. */
  flush(): Promise<void> {
    return this.enqueue(() => this.flushPeriod(this.current));
  }

  /** Close the open period if its midnight has passed (the daemon's timer calls this). */
  rotateIfDue(): Promise<void> {
    const now = this.clock();
    if (now >= this.current.naturalEnd) this.switchPeriod(this.current.naturalEnd, utcDayStart(now));
    return this.chain;
  }

  /** Close the open period at `at` (sealpost tlsrpt send --now); reports may go out at once. */
  closePeriod(at = this.clock()): Promise<void> {
    this.switchPeriod(at, at, true);
    return this.chain;
  }

  /** Periods on disk, the open one included (its counts: what was written). */
  async periods(): Promise<PeriodOnDisk[]> {
    await this.chain;
    return readPeriods(this.opts.dir);
  }

  /** Record that a closed period's domain was handled (its report is in the outbox, or it has no TLSRPT record). */
  markHandled(period: PeriodOnDisk, domain: string): Promise<void> {
    return this.enqueue(async () => {
      const h = await openFile(join(period.dir, 'handled'), 'a', 0o600);
      try {
        await h.write(`${domain}\n`);
        await h.sync();
      } finally {
        await h.close();
      }
    });
  }

  /** Remove a closed period whose every domain was handled. */
  removePeriod(period: PeriodOnDisk): Promise<void> {
    return this.enqueue(() => removePeriodDir(period.dir));
  }

  /** Write what is pending and close the journal. Later records are ignored. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.enqueue(async () => {
      await this.current.fd?.close();
      this.current.fd = undefined;
    });
  }

  // ------------------------------------------------------------ internals

  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.chain.then(op);
    this.chain = run.catch((err: unknown) => this.opts.onWarning?.(`tlsrpt store: ${(err as Error).message}`));
    return run;
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      void this.enqueue(() => this.flushPeriod(this.current)).catch(() => undefined);
    });
  }

  /** Make `end` the end of the open period and start the next one at `start`. */
  private switchPeriod(end: number, start: number, immediate = false): void {
    const old = this.current;
    this.current = new OpenPeriod(start, nextUtcMidnight(start), new Aggregate(), 0);
    void this.enqueue(async () => {
      await this.flushPeriod(old);
      await old.fd?.close();
      old.fd = undefined;
      if (!old.dir && old.durable.empty) return; // nothing was ever recorded in it
      const dir = old.dir ?? (await ensurePeriodDir(this.opts.dir, old.start));
      await this.finishClose(dir, old.durable, old.gen, old.start, end, immediate);
    }).catch(() => undefined);
  }

  private async finishClose(dir: string, total: Aggregate, maxGen: number, start: number, end: number, immediate = false): Promise<void> {
    const notBefore = immediate ? end : end + Math.floor(this.random() * this.maxDelayMs);
    const info: ClosedInfo = { start, end, notBefore };
    await markClosed(dir, info);
    await compact(dir, total, maxGen);
  }

  /** One batch: encode what is pending, write it with one write(2). */
  private async flushPeriod(p: OpenPeriod): Promise<void> {
    if (p.pending.empty) return;
    const batch = p.pending;
    p.pending = new Aggregate();
    const buf = encodeBatch(batch.encode());
    try {
      if (!p.fd) {
        p.dir ??= await ensurePeriodDir(this.opts.dir, p.start);
        // Never append to a journal that may end in a torn line: a new generation per opening.
        p.fd = await openFile(join(p.dir, `journal.${p.gen}`), 'a', 0o600);
      }
      await p.fd.write(buf);
    } catch (err) {
      p.pending.merge(batch);
      await p.fd?.close().catch(() => undefined);
      p.fd = undefined;
      p.gen++;
      throw err;
    }
    p.durable.merge(batch);
    p.bytes += buf.length;
    this.opts.onFlushed?.(batch.sessions);
    if (p.bytes >= this.compactBytes && p === this.current) await this.compactOpen(p);
  }

  /** Compaction of the open period: later writes go to a new generation. */
  private async compactOpen(p: OpenPeriod): Promise<void> {
    await p.fd?.close();
    p.fd = undefined;
    const covers = p.gen;
    p.gen++;
    p.bytes = 0;
    await compact(p.dir!, p.durable, covers);
  }
}

