/**
 * journal.ts — the queue's group-commit journal: one fdatasync makes every
 * message that arrived together durable, instead of a file fsync and a
 * directory fsync per message.
 *
 * How (the write-ahead log of a database, applied to Postfix-style files):
 * - The listener writes the queue file as before (spool.ts: temporary name,
 *   rename to the queue ID) but without fsyncing it; then it appends the
 *   file's bytes to the journal (`append`) and answers 250 only when the
 *   promise resolves, i.e. after an fdatasync of the journal that started
 *   after the record was written.
 * - Records are written once per event-loop turn (setImmediate: every
 *   session whose DATA ended in the same turn shares one write), and one
 *   fdatasync runs at a time: records written while it runs wait for the
 *   next one, which then covers all of them (group commit). fdatasyncs start
 *   at least `minSyncIntervalMs` (3 ms) apart, so under load each covers the
 *   messages of a few milliseconds (after a quiet moment one starts at once).
 *   With 20 sessions sending at once, one fdatasync covers up to 20 messages.
 * - When a message leaves the queue (delivered, bounced, deleted), `forget`
 *   writes a small record at once, before the file is unlinked, without an
 *   fsync of its own: it only has to survive a crash of the process (the page
 *   cache does), not a power loss (then a delivered message may be delivered
 *   again — the same window as an unlink that was not yet durable).
 * - Segments: `journal/SEQUENCE` files. The current one is sealed when it
 *   is `segmentBytes` long or `sealAfterMs` old; a sealed segment is retired
 *   (unlinked) once every message it holds was forgotten or made durable in
 *   its own file (`settle`, a callback of the store: fsync the file and its
 *   directory), always in sequence order, so a `forget` record is never
 *   lost while the record it cancels is still on disk.
 * - Crash recovery (`readJournal`, used by the store before the daemon
 *   accepts mail): every message record not cancelled by a later `forget`
 *   is a message that was acknowledged; the store checks that its queue file
 *   exists and parses, and writes it from the journal (with fsyncs) when not.
 *
 * Record layout (big-endian): 1 byte magic 0xA7, 1 byte type (1 message,
 * 2 forget), 1 byte queue (0 incoming, 1 maildrop), 1 byte ID length L,
 * 4 bytes payload length P, 4 bytes CRC-32 of the 8 header bytes, the ID and
 * the payload; then the ID (ASCII) and the payload (the whole queue file).
 * A torn or corrupt tail (a crash in the middle of a write) ends the
 * segment: what follows was never acknowledged.
 *
 * Contract:
 * - `append` resolves only after the fdatasync covering the record; it
 *   rejects (and every later append too) when a write or an fdatasync fails:
 *   after a failed fsync the page cache can no longer be trusted (PostgreSQL's
 *   "fsyncgate"), so the journal stops accepting and the listener answers 452.
 * - `forget` never throws; `close()` writes what is pending, waits for the
 *   last fdatasync, and closes the segment (sealing and retiring is the
 *   store's, at shutdown).
 * - The injectable `JournalIo.fdatasync` lets tests record when each
 *   fdatasync completed (the "no 250 before the fsync" test).
 *
 * Not here: queue files (spool.ts), which messages are live and where their
 * files are (store-journal.ts), the queue-file format (queue-file.ts).
 */
import { performance } from 'node:perf_hooks';
import { closeSync, fdatasync, openSync, readdirSync, readFileSync, unlinkSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { isNotFound } from '../lib/fs-errors.ts';

export const JOURNAL_DIR = 'journal';
const MAGIC = 0xa7;
const TYPE_MESSAGE = 1;
const TYPE_FORGET = 2;
const HEAD = 12;
const QUEUES = ['incoming', 'maildrop'] as const;
export type JournalQueue = (typeof QUEUES)[number];

/** The journal's one slow call, replaceable in tests. */
export interface JournalIo {
  fdatasync(fd: number): Promise<void>;
}

const defaultIo: JournalIo = {
  fdatasync: (fd) => new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
};

export interface JournalOptions {
  /** Seal the current segment at this size (default 32 MiB). */
  readonly segmentBytes?: number;
  /** ... or at this age when it holds records (default 10 s). */
  readonly sealAfterMs?: number;
  /**
   * fdatasyncs start at least this far apart (ms; default 3): under load the messages of
   * a few milliseconds share one (fewer fsyncs, less CPU: see docs/queue-format.md "The
   * journal"); an fdatasync after a quiet moment starts at once.
   */
  readonly minSyncIntervalMs?: number;
  readonly io?: Partial<JournalIo>;
  readonly now?: () => number;
}

/** A message the journal still vouches for after a crash. */
export interface JournalEntry {
  readonly id: string;
  readonly queue: JournalQueue;
  readonly bytes: Buffer;
}

/**
 * What the spool needs from a group-commit log (Journal; bench/queue-commit.ts puts LMDB and
 * SQLite behind the same two calls to compare them).
 */
export interface CommitLog {
  /** Resolves once the whole file of `id` is durable in the log. */
  append(queue: JournalQueue, id: string, bytes: readonly Uint8Array[]): Promise<void>;
  /** The message left the queue. */
  forget(id: string): void;
  readonly stats: JournalStats;
}

/** Counters for the bench and metrics. */
export interface JournalStats {
  /** fdatasync calls completed. */
  syncs: number;
  /** message records made durable. */
  messages: number;
}

interface Waiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

interface Segment {
  readonly seq: number;
  readonly path: string;
  readonly opened: number;
  /** Messages recorded in this segment and not yet forgotten or settled. */
  readonly live: Set<string>;
  size: number;
  sealed: boolean;
}

/** One record's bytes. */
export function encodeRecord(type: 'message' | 'forget', id: string, queue: JournalQueue, payload?: Uint8Array): Buffer[] {
  const idBytes = Buffer.from(id, 'latin1');
  const head = Buffer.allocUnsafe(HEAD);
  head[0] = MAGIC;
  head[1] = type === 'message' ? TYPE_MESSAGE : TYPE_FORGET;
  head[2] = QUEUES.indexOf(queue);
  head[3] = idBytes.length;
  head.writeUInt32BE(payload?.length ?? 0, 4);
  let crc = crc32(head.subarray(0, 8));
  crc = crc32(idBytes, crc);
  if (payload) crc = crc32(payload, crc);
  head.writeUInt32BE(crc, 8);
  return payload ? [head, idBytes, Buffer.from(payload.buffer, payload.byteOffset, payload.length)] : [head, idBytes];
}

/**
 * Parse one segment's bytes (pure): the records up to the first torn or corrupt one.
 * `onRecord` gets each in order.
 */
export function parseSegment(buf: Buffer, onRecord: (type: 'message' | 'forget', id: string, queue: JournalQueue, payload: Buffer) => void): number {
  let off = 0;
  while (off + HEAD <= buf.length) {
    if (buf[off] !== MAGIC) break;
    const type = buf[off + 1];
    const queue = QUEUES[buf[off + 2]!];
    const idLen = buf[off + 3]!;
    const len = buf.readUInt32BE(off + 4);
    const end = off + HEAD + idLen + len;
    if ((type !== TYPE_MESSAGE && type !== TYPE_FORGET) || queue === undefined || end > buf.length) break;
    let crc = crc32(buf.subarray(off, off + 8));
    crc = crc32(buf.subarray(off + HEAD, end), crc);
    if (crc !== buf.readUInt32BE(off + 8)) break;
    const id = buf.toString('latin1', off + HEAD, off + HEAD + idLen);
    onRecord(type === TYPE_MESSAGE ? 'message' : 'forget', id, queue, buf.subarray(off + HEAD + idLen, end));
    off = end;
  }
  return off;
}

/** Segment file names in sequence order. */
function segmentNames(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  return names.filter((n) => /^\d{12}$/.test(n)).sort();
}

/**
 * Read every segment under `dir` (crash recovery): the messages recorded and not
 * forgotten, in the order they were written. Pure apart from reading the files.
 */
export function readJournal(dir: string): { entries: JournalEntry[]; segments: string[] } {
  const live = new Map<string, JournalEntry>();
  const segments = segmentNames(dir);
  for (const name of segments) {
    parseSegment(readFileSync(join(dir, name)), (type, id, queue, payload) => {
      if (type === 'message') live.set(id, { id, queue, bytes: Buffer.from(payload) });
      else live.delete(id);
    });
  }
  return { entries: [...live.values()], segments: segments.map((n) => join(dir, n)) };
}

export class Journal implements CommitLog {
  readonly stats: JournalStats = { syncs: 0, messages: 0 };
  private readonly io: JournalIo;
  private readonly now: () => number;
  private readonly segmentBytes: number;
  private readonly sealAfterMs: number;
  private readonly segments: Segment[] = [];
  private current!: Segment;
  private fd = -1;
  private nextSeq: number;
  /** Pieces waiting for this turn's write, and the message records among them. */
  private pending: Buffer[] = [];
  private pendingMessages: Array<{ id: string; waiter: Omit<Waiter, 'seq'> }> = [];
  private scheduled = false;
  /** Message records written / made durable (a sequence number each). */
  private written = 0;
  private synced = 0;
  private syncing = false;
  private readonly minSyncIntervalMs: number;
  /** performance.now() when the last fdatasync started. */
  private lastSyncStart = -Infinity;
  /** The next fdatasync, waiting out minSyncIntervalMs. */
  private syncTimer: NodeJS.Timeout | undefined;
  private waiters: Waiter[] = [];
  private failure: Error | undefined;
  private idle: Array<() => void> = [];
  private sealRequested = false;

  /** Open a new segment in `dir` (after recovery: the old ones are gone or read). */
  constructor(private readonly dir: string, opts: JournalOptions = {}) {
    this.io = { ...defaultIo, ...opts.io };
    this.now = opts.now ?? Date.now;
    this.segmentBytes = opts.segmentBytes ?? 32 * 1024 * 1024;
    this.sealAfterMs = opts.sealAfterMs ?? 10_000;
    this.minSyncIntervalMs = opts.minSyncIntervalMs ?? 3;
    const names = segmentNames(dir);
    this.nextSeq = names.length > 0 ? Number(names[names.length - 1]) + 1 : 1;
    this.openSegment();
  }

  private openSegment(): void {
    const seq = this.nextSeq++;
    const path = join(this.dir, String(seq).padStart(12, '0'));
    this.fd = openSync(path, 'wx', 0o600);
    this.current = { seq, path, opened: this.now(), live: new Set(), size: 0, sealed: false };
    this.segments.push(this.current);
  }

  /** Append the whole queue file of `id`; resolves once an fdatasync covers it. */
  append(queue: JournalQueue, id: string, bytes: readonly Uint8Array[]): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    let total = 0;
    for (const b of bytes) total += b.length;
    const payload = bytes.length === 1 ? bytes[0]! : Buffer.concat(bytes, total);
    return new Promise<void>((resolve, reject) => {
      this.pending.push(...encodeRecord('message', id, queue, payload));
      this.pendingMessages.push({ id, waiter: { resolve, reject } });
      this.schedule();
    });
  }

  /**
   * The message left the queue. The record is written at once (one write, never fsynced on
   * its own), before the caller unlinks the file: a process killed between the two leaves a
   * file the journal no longer vouches for (delivered again at most), never the reverse.
   */
  forget(id: string): void {
    if (this.failure) return;
    let written = false;
    for (const s of this.segments) if (s.live.delete(id)) written = true;
    const pending = this.pendingMessages.some((m) => m.id === id);
    if (!written && !pending) return;
    const record = encodeRecord('forget', id, 'incoming');
    if (pending) {
      // Its message record is not written yet: the forget record goes after it.
      this.pending.push(...record);
      this.schedule();
      return;
    }
    try {
      let size = 0;
      for (const p of record) size += p.length;
      writeAllv(this.fd, record, size);
      this.current.size += size;
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Messages still vouched for by sealed segments, oldest segment first (the store settles them). */
  sealedLive(): Array<{ segment: number; ids: string[] }> {
    return this.segments.filter((s) => s.sealed && s.live.size > 0).map((s) => ({ segment: s.seq, ids: [...s.live] }));
  }

  /** Every message the journal still vouches for. */
  allLive(): string[] {
    const ids = this.pendingMessages.map((m) => m.id);
    for (const s of this.segments) ids.push(...s.live);
    return ids;
  }

  /** The store made these messages durable in their own files: the journal no longer needs them. */
  settled(ids: Iterable<string>): void {
    for (const id of ids) for (const s of this.segments) if (s.live.delete(id)) break;
    this.retire();
  }

  /**
   * Seal the current segment when it is big or old enough (or `force`). The switch to a
   * new segment file happens when nothing written is waiting for an fdatasync (at once,
   * or when the one in flight completes), so every record is fsynced through the
   * descriptor it was written to.
   */
  maybeSeal(force = false): void {
    const c = this.current;
    if (this.failure || c.size === 0) return;
    if (!force && c.size < this.segmentBytes && this.now() - c.opened < this.sealAfterMs) return;
    this.sealRequested = true;
    if (!this.inFlight) this.seal();
  }

  private seal(): void {
    this.sealRequested = false;
    this.current.sealed = true;
    closeSync(this.fd);
    this.openSegment();
    this.retire();
  }

  /** Unlink sealed segments with nothing live, in sequence order. */
  private retire(): void {
    while (this.segments.length > 1 && this.segments[0]!.sealed && this.segments[0]!.live.size === 0) {
      const s = this.segments.shift()!;
      try {
        unlinkSync(s.path);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flushWrites();
    });
  }

  /** Write what is pending (one writev) and start an fdatasync if messages wait for one. */
  private flushWrites(): void {
    // A seal waits for the fdatasync in flight; what is pending goes to the next segment.
    if (this.pending.length === 0 || (this.sealRequested && this.inFlight)) return;
    const pieces = this.pending;
    const messages = this.pendingMessages;
    this.pending = [];
    this.pendingMessages = [];
    try {
      if (this.failure) throw this.failure;
      let size = 0;
      for (const p of pieces) size += p.length;
      writeAllv(this.fd, pieces, size);
      this.current.size += size;
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      for (const m of messages) m.waiter.reject(this.failure!);
      return;
    }
    for (const m of messages) {
      this.current.live.add(m.id);
      this.waiters.push({ seq: ++this.written, ...m.waiter });
    }
    if (messages.length > 0) this.sync();
  }

  /**
   * An fdatasync is running or about to (waiting out minSyncIntervalMs): records written
   * now are covered by the next one, and the segment file must not change.
   */
  private get inFlight(): boolean {
    return this.syncing || this.syncTimer !== undefined;
  }

  /** Start an fdatasync of what is written — after minSyncIntervalMs since the last one started, unless `now`. */
  private sync(now = false): void {
    if (this.inFlight || this.synced === this.written || this.failure) return;
    const wait = this.lastSyncStart + this.minSyncIntervalMs - performance.now();
    if (wait > 0 && !now) {
      this.syncTimer = setTimeout(() => {
        this.syncTimer = undefined;
        this.sync(true);
      }, wait);
      return;
    }
    this.lastSyncStart = performance.now();
    this.syncing = true;
    const target = this.written;
    this.io.fdatasync(this.fd).then(
      () => {
        this.syncing = false;
        this.stats.syncs++;
        this.stats.messages += target - this.synced;
        this.synced = target;
        const done = this.waiters.filter((w) => w.seq <= target);
        this.waiters = this.waiters.filter((w) => w.seq > target);
        for (const w of done) w.resolve();
        if (this.sealRequested && this.written === this.synced) {
          this.seal();
          this.flushWrites();
        }
        if (this.written > this.synced) this.sync();
        else this.settle();
      },
      (err: unknown) => {
        this.syncing = false;
        this.fail(err instanceof Error ? err : new Error(String(err)));
        this.settle();
      },
    );
  }

  private fail(err: Error): void {
    this.failure ??= new Error(`queue journal write error: ${err.message}`, { cause: err });
    const w = this.waiters;
    this.waiters = [];
    for (const x of w) x.reject(this.failure);
  }

  private settle(): void {
    if (this.inFlight) return;
    this.retire();
    const idle = this.idle;
    this.idle = [];
    for (const f of idle) f();
  }

  private whenIdle(): Promise<void> {
    if (!this.inFlight) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Write what is pending, wait for the fdatasync in flight, close the segment file. */
  async close(): Promise<void> {
    this.flushWrites();
    if (this.syncTimer) {
      // No reason to wait out the interval at stop.
      clearTimeout(this.syncTimer);
      this.syncTimer = undefined;
      this.sync(true);
    }
    await this.whenIdle();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Remove every segment (the store made everything durable; clean shutdown or recovery). */
  removeAll(): void {
    for (const s of this.segments) {
      try {
        unlinkSync(s.path);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    this.segments.length = 0;
  }
}

/** writev until every byte is written (a short write continues where it stopped). */
function writeAllv(fd: number, pieces: Buffer[], size: number): void {
  let done = writevSync(fd, pieces);
  if (done === size) return;
  const rest = Buffer.concat(pieces, size);
  while (done < size) done += writevSync(fd, [rest.subarray(done)]);
}
