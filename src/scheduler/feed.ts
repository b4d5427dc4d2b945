/**
 * feed.ts — which queue file enters the active queue next (Postfix's
 * qmgr_scan + qmgr_active_feed): new mail from incoming/, and deferred mail
 * whose retry time has come.
 *
 * Contract:
 * - incoming/: IDs announced by `addIncoming()` (the listeners and pickup
 *   call QueueManager.onQueued) plus what `scanIncoming()` finds (mail put
 *   there by postsuper -r, or queued while the qmgr was down).
 * - deferred/: `startDeferredScan()` reads the directory once (names only);
 *   `next()` then yields a file only when its mtime (the next attempt time,
 *   see backoff.ts) is not in the future — or always, for a flush (postqueue
 *   -f: "ignoring the time stamp"). For a big queue (BULK_MIN names or more)
 *   the scan first reads every mtime at once (QueueStore.mtimes: a worker
 *   thread's blocking stats) and passes over files not yet due without
 *   another look; a file the scan saw as due is stat'ed again when taken (its
 *   time may have moved since). A small queue is stat'ed one file at a time.
 *   No envelope is read here, so a 100k-message deferred queue costs one name
 *   and one time per message.
 * - `next()` alternates between the two sources (Postfix alternates its
 *   incoming and deferred scans) so neither starves the other; flush -i IDs
 *   come first.
 * - hold/ is never looked at.
 *
 * Not here: moving files, reading envelopes (qmgr.ts).
 */
import type { QueueStore } from '../queue/store.ts';
import { isDue } from './backoff.ts';

/** From this many deferred files on, a scan reads their times in bulk (a worker thread costs ~30 ms to start). */
const BULK_MIN = 1000;

/**
 * `fresh`: announced by onQueued (cannot have a delay log or warning marker yet). `active`:
 * new mail the queue manager admitted straight into active/ (qmgr.ts ActiveGate), never from the feed.
 */
export type FeedItem = { readonly queue: 'incoming' | 'deferred' | 'active'; readonly id: string; readonly fresh: boolean };

export class QueueFeed {
  private readonly incoming = new Map<string, boolean>();
  private deferredNames: string[] = [];
  /** The scan's bulk-read mtimes of deferredNames (same order), when the queue was big. */
  private deferredTimes: Array<number | undefined> | undefined;
  private cursor = 0;
  private flushing = false;
  private readonly priority: string[] = [];
  private preferDeferred = false;
  private scanning: Promise<void> | undefined;

  constructor(private readonly store: QueueStore) {}

  addIncoming(id: string, fresh = false): void {
    if (!this.incoming.has(id)) this.incoming.set(id, fresh);
  }

  /** flush -i: this deferred message next, whatever its time stamp. */
  addDeferredNow(id: string): void {
    this.priority.push(id);
  }

  get pendingIncoming(): number {
    return this.incoming.size;
  }

  /** Nothing waits: no incoming ID, no flush -i ID, no deferred scan with names left. */
  get idle(): boolean {
    return this.incoming.size === 0 && this.priority.length === 0 && !this.deferredScanActive;
  }

  /** True while a deferred scan has names left. */
  get deferredScanActive(): boolean {
    return this.cursor < this.deferredNames.length;
  }

  async scanIncoming(): Promise<void> {
    for (const id of await this.store.list('incoming')) this.addIncoming(id);
  }

  /** Begin a pass over deferred/ (restarts a pass in progress; `flush` ignores time stamps). */
  startDeferredScan(flush: boolean): Promise<void> {
    const run = (async () => {
      const names = (await this.store.list('deferred')).sort();
      const times = !flush && names.length >= BULK_MIN ? await this.store.mtimes('deferred', names) : undefined;
      this.deferredNames = names;
      this.deferredTimes = times;
      this.cursor = 0;
      this.flushing = flush;
    })();
    this.scanning = run.finally(() => {
      if (this.scanning === run) this.scanning = undefined;
    });
    return run;
  }

  private takeIncoming(): FeedItem | undefined {
    for (const [id, fresh] of this.incoming) {
      this.incoming.delete(id);
      return { queue: 'incoming', id, fresh };
    }
    return undefined;
  }

  private async takeDeferred(now: number): Promise<FeedItem | undefined> {
    while (this.cursor < this.deferredNames.length) {
      const at = this.cursor++;
      const id = this.deferredNames[at]!;
      this.deferredNames[at] = '';
      // A flush takes every file whatever its time: no stat (a file gone meanwhile is skipped
      // when the queue manager fails to move it, qmgr.ts activate()).
      if (this.flushing) return { queue: 'deferred', id, fresh: false };
      if (this.deferredTimes) {
        const seen = this.deferredTimes[at];
        // Gone, or not due when the scan looked: passed over without another stat.
        if (seen === undefined || !isDue(seen, now)) continue;
      }
      const mtime = await this.store.mtime('deferred', id);
      if (mtime === undefined) continue; // vanished (delivered by a flush -i, deleted, held)
      if (isDue(mtime, now)) return { queue: 'deferred', id, fresh: false };
    }
    if (this.deferredNames.length > 0) {
      this.deferredNames = [];
      this.deferredTimes = undefined;
      this.cursor = 0;
    }
    return undefined;
  }

  /** The next file to activate, or undefined when there is none now. */
  async next(now: number): Promise<FeedItem | undefined> {
    await this.scanning;
    const p = this.priority.shift();
    if (p !== undefined) return { queue: 'deferred', id: p, fresh: false };
    this.preferDeferred = !this.preferDeferred;
    if (this.preferDeferred) return (await this.takeDeferred(now)) ?? this.takeIncoming();
    return this.takeIncoming() ?? (await this.takeDeferred(now));
  }
}
