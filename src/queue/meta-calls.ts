/**
 * meta-calls.ts — the per-message file-system metadata calls of the hot path
 * (create a queue file, rename it, move it between queues, unlink it), made
 * the cheapest way that keeps the event loop safe.
 *
 * Why: each of these calls takes some tens of microseconds when the file
 * system answers from memory, while a libuv thread-pool round trip costs two
 * thread wake-ups and context switches on top (measured with
 * `bench/relay-one.ts`: about 12% more throughput and 9% less CPU per
 * message with the calls made directly; see docs/delivery.md "Speed").
 * But a file system can make them wait — ext4 while its journal is being
 * committed or is full, a slow or failing disk — and a blocked event loop
 * stalls every SMTP session.
 *
 * Contract:
 * - While the calls are fast, `MetaCalls` makes them synchronously on the
 *   calling thread (their errors become rejections, as the asynchronous calls
 *   give them).
 * - One call that took longer than `slowMs` (default 10 ms: longer than the
 *   time slices a busy machine preempts a thread for, so a preemption in the
 *   middle of a call does not count as a slow disk) switches to the thread
 *   pool for a back-off period; after it the next call is tried directly
 *   again. The period starts at `backoffMs` (default 1 s) and doubles while
 *   the first direct call after it is slow again, up to `maxBackoffMs`
 *   (default 60 s); a fast call resets it. So a slow disk costs the event
 *   loop at most one slow call per period.
 * - Results and errors are the same either way (the same system calls).
 * - `run(call)` times any other direct call the same way (the spool's reuse
 *   of delivered files: open, rename, truncate), so a slow file system turns
 *   every hot-path call to the thread pool, not only these three.
 *
 * Not here: fsync (always in the thread pool: it waits for the disk by
 * design), reads and writes of content (spool.ts, journal.ts).
 */
import { open as openCb, openSync, renameSync, unlinkSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

export interface MetaCallOptions {
  /** A direct call longer than this (ms) turns to the thread pool (default 10). */
  readonly slowMs?: number;
  /** ... for this long at first (ms; default 1,000), ... */
  readonly backoffMs?: number;
  /** ... doubled while calls stay slow, up to this (ms; default 60,000). */
  readonly maxBackoffMs?: number;
}

export class MetaCalls {
  private readonly slowMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  /** The next back-off period (ms). */
  private period: number;
  /** performance.now() before which calls go to the thread pool. */
  private poolUntil = 0;
  /** How many times a slow call turned to the thread pool (tests, diagnostics). */
  slowSwitches = 0;

  constructor(opts: MetaCallOptions = {}) {
    this.slowMs = opts.slowMs ?? 10;
    this.backoffMs = opts.backoffMs ?? 1000;
    this.maxBackoffMs = opts.maxBackoffMs ?? 60_000;
    this.period = this.backoffMs;
  }

  /** Are calls made directly now? */
  get direct(): boolean {
    return this.poolUntil === 0 || performance.now() >= this.poolUntil;
  }

  /**
   * One direct call, timed: a call over slowMs turns the following ones to the thread pool
   * for a back-off period. For direct calls other than the three below (callers check
   * `direct` first).
   */
  run<T>(call: () => T): T {
    const t0 = performance.now();
    try {
      return call();
    } finally {
      const t1 = performance.now();
      if (t1 - t0 > this.slowMs) {
        this.poolUntil = t1 + this.period;
        this.period = Math.min(this.period * 2, this.maxBackoffMs);
        this.slowSwitches++;
      } else if (this.poolUntil !== 0) {
        this.poolUntil = 0;
        this.period = this.backoffMs;
      }
    }
  }

  /** `call` directly and timed while calls are fast (its throw becomes a rejection), else `pooled`. */
  private either<T>(call: () => T, pooled: () => Promise<T>): Promise<T> {
    if (!this.direct) return pooled();
    try {
      return Promise.resolve(this.run(call));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** open(2) with O_CREAT|O_EXCL for writing: the new descriptor. */
  create(path: string, mode: number): Promise<number> {
    return this.either(
      () => openSync(path, 'wx', mode),
      () => new Promise((resolve, reject) => openCb(path, 'wx', mode, (err, fd) => (err ? reject(err) : resolve(fd)))),
    );
  }

  rename(from: string, to: string): Promise<void> {
    return this.either(() => renameSync(from, to), () => rename(from, to));
  }

  unlink(path: string): Promise<void> {
    return this.either(() => unlinkSync(path), () => unlink(path));
  }
}
