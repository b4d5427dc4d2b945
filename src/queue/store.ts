/**
 * store.ts — the queue store as the queue manager (and pickup, cleanup) use
 * it: an asynchronous interface in front of the spool, so that another store
 * (a group-commit journal, a shared database for a fleet) can stand behind
 * the same calls. `spoolStore(spool)` is the file spool (spool.ts) behind it.
 *
 * Contract:
 * - Async only: every call returns a promise, and none blocks the event loop for long.
 * - Durability is the store's: `writeMessage` (and a MessageFile's commit)
 *   resolves only once the message is durable (the `250` to DATA waits for
 *   it); `markDone` is durable before it resolves (a crash may repeat a
 *   delivery, never lose a recipient). With the spool's group-commit journal
 *   (journal.ts, journal-store.ts) one fdatasync covers every message that
 *   arrived together; without it each file is fsynced with its directory.
 * - Nothing that waits for the disk blocks the event loop for long: fsyncs
 *   run in the thread pool; creating, renaming and removing queue files are
 *   made directly while the file system answers them fast (a thread-pool
 *   round trip costs more than the call) and go to the thread pool for a
 *   while after one was slow (ext4 can make them wait for its journal
 *   commit; meta-calls.ts).
 * - A message that vanished or moved under the caller (postsuper) is not an
 *   error where the caller can tell: `move` and `remove` resolve false,
 *   `mtime` and `locate` undefined; the other calls reject with ENOENT
 *   (lib/fs-errors.ts isNotFound) — the queue manager then forgets the message.
 * - `path()` names the file a delivery agent reads the content from
 *   (read-only; agents never write to the store).
 *
 * Not here: scheduling (scheduler/), the queue file format (queue-file.ts),
 * listing for mailq (listing.ts), administrative scans (spool.ts scan/recover).
 */
import { access } from 'node:fs/promises';
import { isNotFound } from '../lib/fs-errors.ts';
import type { DelayReason } from './defer-log.ts';
import { isValidQueueId } from './queue-id.ts';
import { decodeEnvelope, type EnvelopeInput, type QueueEnvelope } from './queue-file.ts';
import { MESSAGE_QUEUES, type ActiveGate, type MessageFile, type QueueName, type Spool } from './spool.ts';

export interface QueueStore {
  /** Write a new message durably into `queue` and return its queue ID (`content` may depend on the ID). */
  writeMessage(envelope: EnvelopeInput, content: Uint8Array | ((queueId: string) => Uint8Array), queue?: 'incoming' | 'maildrop'): Promise<string>;
  /** Start a message written in pieces (streaming intake); durable when its commit() resolves. */
  openMessage(queue?: 'incoming' | 'maildrop'): Promise<MessageFile>;
  /** Queue IDs in one queue (unsorted). */
  list(queue: QueueName): Promise<string[]>;
  /** The first queue (showq order) that holds `id`. */
  locate(id: string, queues?: readonly QueueName[]): Promise<QueueName | undefined>;
  /** The time of the next attempt of a queued message (its mtime), ms; undefined when gone. */
  mtime(queue: QueueName, id: string): Promise<number | undefined>;
  /** The same for many messages of one queue at once, in the order of `ids` (a scan of a big deferred queue). */
  mtimes(queue: QueueName, ids: readonly string[]): Promise<Array<number | undefined>>;
  /** Move a message between queues; false when it is not in `from`. */
  move(id: string, from: QueueName, to: QueueName): Promise<boolean>;
  readEnvelope(queue: QueueName, id: string): Promise<QueueEnvelope>;
  readMessage(queue: QueueName, id: string): Promise<{ envelope: QueueEnvelope; content: Buffer }>;
  readContent(queue: QueueName, id: string): Promise<Buffer>;
  /** Move a broken message aside (corrupt/). */
  quarantine(queue: QueueName, id: string): Promise<void>;
  /** Mark recipients delivered (or bounced), durably. */
  markDone(queue: QueueName, id: string, indexes: readonly number[]): Promise<void>;
  setDelayReason(id: string, reason: DelayReason): Promise<void>;
  clearDelayReasons(id: string): Promise<void>;
  /** Set when the message is due again (qmgr_active_defer()). */
  setNextAttempt(queue: QueueName, id: string, whenMs: number): Promise<void>;
  markWarned(id: string): Promise<void>;
  isWarned(id: string): Promise<boolean>;
  /** Delete a message; `sideFiles: false` when the caller knows it has no delay log or warning marker. False when it was not in `queue`. */
  remove(queue: QueueName, id: string, opts?: { readonly sideFiles: boolean }): Promise<boolean>;
  /** The file a delivery agent reads the message from. */
  path(queue: QueueName, id: string): string;
  /**
   * The queue manager offers (or, with undefined, withdraws) to take new mail straight into
   * active/ (spool.ts ActiveGate). A store without this always writes new mail to incoming/.
   */
  setActiveGate?(gate: ActiveGate | undefined): void;
}

/** The file spool behind the QueueStore interface (with its group-commit journal when it has one). */
export function spoolStore(spool: Spool): QueueStore {
  return {
    writeMessage: (envelope, content, queue) => spool.writeMessage(envelope, content, queue),
    openMessage: (queue) => spool.openMessage(queue),
    list: (queue) => spool.listAsync(queue),
    async locate(id, queues = MESSAGE_QUEUES) {
      if (!isValidQueueId(id)) return undefined;
      for (const q of queues) {
        try {
          await access(spool.path(q, id));
          return q;
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      return undefined;
    },
    mtime: (queue, id) => spool.mtime(queue, id),
    mtimes: (queue, ids) => spool.mtimes(queue, ids),
    move: (id, from, to) => spool.move(id, from, to),
    readEnvelope: async (queue, id) => {
      // New mail committed through the journal a moment ago: its envelope from memory, once.
      const fresh = spool.takeFresh(id);
      return fresh ? decodeEnvelope(fresh.bytes[0]!, fresh.size) : spool.readEnvelopeAsync(queue, id);
    },
    readMessage: (queue, id) => spool.readMessage(queue, id),
    readContent: (queue, id) => spool.readContent(queue, id),
    quarantine: async (queue, id) => {
      spool.journal?.forget(id);
      await spool.quarantine(queue, id);
    },
    markDone: (queue, id, indexes) => {
      spool.dropFresh(id);
      return spool.markDoneMany(queue, id, indexes);
    },
    setDelayReason: (id, reason) => spool.setDelayReason(id, reason),
    clearDelayReasons: (id) => spool.clearDelayReasons(id),
    setNextAttempt: (queue, id, whenMs) => spool.setNextAttempt(queue, id, whenMs),
    markWarned: (id) => spool.markWarned(id),
    isWarned: (id) => spool.isWarned(id),
    remove: async (queue, id, opts) => {
      spool.dropFresh(id);
      // The journal's forget record first: a crash after it and before the unlink re-delivers
      // an in-flight message (as ever), never resurrects a delivered one.
      spool.journal?.forget(id);
      if (opts?.sideFiles === false) return spool.removeFile(queue, id);
      return spool.remove(queue, id);
    },
    path: (queue, id) => spool.path(queue, id),
    setActiveGate: (gate) => {
      spool.activeGate = gate;
    },
  };
}
