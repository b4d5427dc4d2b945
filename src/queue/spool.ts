/**
 * spool.ts — the durable file spool under `queue_directory`: message queues,
 * queue-file creation with fsync, moves, in-place recipient updates, delay
 * reasons, listing and the restart scan.
 *
 * Layout (flat; Postfix's hashed subdirectories, hash_queue_names, are not used):
 *
 *     queue_directory/
 *       maildrop/ incoming/ active/ deferred/ hold/   message queues, one file per message
 *       corrupt/                                      files that failed to parse (never deleted)
 *       defer/                                        per-message delay-reason logs (defer-log.ts)
 *       public/flush/                                 flush requests to the daemon (postqueue -f/-i/-s)
 *
 * Contract:
 * - `createSpool(dir)` makes every directory (mode 0700); `openSpool(dir)` only
 *   checks that the message queues exist (the tools never create a spool).
 * - `writeMessage()` encodes the file, writes it to a temporary name
 *   (`tmp.PID.N`) in the target queue, fsyncs it, derives the queue ID from the
 *   file's inode (queue-id.ts; mail_queue_enter() in Postfix), renames it to the
 *   ID, fsyncs the directory, and only then returns the ID: a 250 reply after
 *   this cannot lose the message. Any failure gives a QueueWriteError (the
 *   listener answers `452 4.3.1 Insufficient system storage`) and leaves no
 *   file behind.
 * - Ownership (the daemon runs as mail_owner, daemon/queue-layout.ts): a
 *   maildrop file is mode 0444 and keeps its submitter as owner (Postfix's
 *   postdrop: pickup reads it and logs that UID); a file that root writes
 *   into another queue (sendmail -bs, postsuper -r) is given to the owner of
 *   its directory before it gets its name, so the daemon can update it.
 * - Recipient status and forced expiry are flipped in place (one byte, pwrite +
 *   fsync). Moves between queues are one rename(2); a move lost in a crash
 *   leaves the message in its old queue, which is safe.
 * - `scan()` walks the queues in showq(8) order (maildrop, active, incoming,
 *   deferred, hold), IDs sorted within a queue; a file that does not parse is
 *   moved to `corrupt/` and reported through `onCorrupt`, never thrown. A file
 *   that vanishes while scanning (delivered, moved) is skipped silently.
 * - Temporary files are left alone by scan() (a writer may be busy with one);
 *   `recover()` removes them and is run by the daemon before it accepts mail.
 * - The queue manager's durable facts (scheduler/): a deferred file's mtime
 *   is its next attempt time (`setNextAttempt`, as Postfix's
 *   qmgr_active_defer() does), and "a delay warning was sent" is an empty
 *   marker file `defer/ID.warned` (`markWarned`; Postfix zeroes a warn record
 *   in the queue file instead). `remove()` deletes the marker too.
 *
 * Not here: the file format (queue-file.ts), the scheduling policy (which queue
 * a message goes to next), delivery, DSNs.
 */
import { closeSync, constants as fsConstants, existsSync, fstatSync, fchown as fchownCb, fsync as fsyncCb, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, truncateSync, unlinkSync, write as writeCb, writevSync } from 'node:fs';
import { appendFile, chmod, mkdir, open, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';
import { isValidQueueId, makeQueueId, nowMicros } from './queue-id.ts';
import {
  decodeEnvelope,
  decodeQueueFile,
  encodeQueueFile,
  envelopePrefixLength,
  EXPIRE_NO,
  EXPIRE_YES,
  FORCED_EXPIRE_OFFSET,
  HEADER_LENGTH,
  messageFlags,
  QueueFileFormatError,
  STATUS_DONE,
  STATUS_PENDING,
  statusOffset,
} from './queue-file.ts';
import type { EnvelopeInput, QueueEnvelope } from './queue-file.ts';
import { encodeDelayRecord, parseDelayLog } from './defer-log.ts';
import type { DelayReason } from './defer-log.ts';
import { errnoCode, isNotFound } from '../lib/fs-errors.ts';
import { MetaCalls, type MetaCallOptions } from './meta-calls.ts';
import { statTimes } from './stat-times.ts';
import type { CommitLog } from './journal.ts';

/** Queues that hold message files, in showq(8) listing order. */
export const MESSAGE_QUEUES = ['maildrop', 'active', 'incoming', 'deferred', 'hold'] as const;
export type MessageQueue = (typeof MESSAGE_QUEUES)[number];
export type QueueName = MessageQueue | 'corrupt';
export const ALL_QUEUES: readonly QueueName[] = [...MESSAGE_QUEUES, 'corrupt'];
/** Directories besides the queues (the daemon's layout gives each its owner and mode: daemon/queue-layout.ts). */
export const SIDE_DIRS = ['defer', 'journal', 'public', 'public/flush'] as const;

export function isQueueName(name: string): name is QueueName {
  return (ALL_QUEUES as readonly string[]).includes(name);
}

/** The queue file could not be written (disk full, read-only, permissions ...). */
export class QueueWriteError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QueueWriteError';
    this.code = code;
  }
}

/** Low-level writes, replaceable in tests to simulate a full disk. */
export interface SpoolIo {
  writeAll(fh: FileHandle, data: Uint8Array): Promise<void>;
  /** Write all of `data` at `position` (the streaming writer, openMessage()). */
  writeAt(fh: FileHandle, data: Uint8Array, position: number): Promise<void>;
  /** fsync a new queue file or its directory (openMessage()'s commit; tests record the order). */
  sync(fd: number, what: 'file' | 'directory', path: string): Promise<void>;
}

/**
 * A queue file being written in pieces (openMessage()): the ID is known from the start;
 * nothing is visible under it until `commit()` has fsynced the file, renamed it and
 * fsynced the directory. `abort()` removes the temporary file. Every failure is a
 * QueueWriteError.
 */
export interface MessageFile {
  readonly id: string;
  write(data: Uint8Array, position: number): Promise<void>;
  /**
   * Make the file durable under its ID. `whole`: the complete file, when the caller holds
   * it and wrote nothing with write() — the spool writes it in one call and, with a
   * journal, makes it durable through the journal's group commit (no fsync of its own).
   */
  commit(whole?: readonly Uint8Array[]): Promise<void>;
  /** Remove the temporary file; a no-op after commit(). */
  abort(): Promise<void>;
}

export interface SpoolOptions {
  /** enable_long_queue_ids */
  readonly longQueueIds?: boolean;
  /** fsync files and directories (default true; tests of formatting may turn it off). */
  readonly fsync?: boolean;
  /** Clock in microseconds (default: wall clock). */
  readonly nowMicros?: () => bigint;
  readonly io?: Partial<SpoolIo>;
  /**
   * The group-commit journal (journal.ts): whole messages are written without an fsync
   * and made durable by the journal. Only the daemon has one; tools write with fsync.
   */
  readonly journal?: CommitLog;
  /** When create/rename/unlink of queue files turn from direct calls to the thread pool (meta-calls.ts). */
  readonly metaCalls?: MetaCallOptions;
}

export interface ScanEntry {
  readonly queue: MessageQueue;
  readonly id: string;
  readonly envelope: QueueEnvelope;
}

export interface CorruptFile {
  readonly queue: MessageQueue;
  readonly id: string;
  readonly error: string;
}

export interface ScanOptions {
  readonly queues?: readonly MessageQueue[];
  /** Move unparsable files to corrupt/ (default true; read-only tools such as mailq pass false). */
  readonly quarantine?: boolean;
  onMessage?(entry: ScanEntry): void;
  onCorrupt?(file: CorruptFile): void;
}

export interface ScanSummary {
  readonly messages: number;
  readonly corrupt: number;
}

const TEMP_PREFIX = 'tmp.';
/** At most this many emptied files are kept for reuse (Spool.recycle()), ... */
const SPARE_LIMIT = 64;
/** ... in this directory of the queue (the journal's: it exists whenever files are reused). */
const SPARE_DIR = 'journal';
/** Bytes of just-committed files kept for the queue manager's first read (Spool.takeFresh). */
const FRESH_LIMIT = 16 * 1024 * 1024;

const defaultIo: SpoolIo = {
  async writeAll(fh, data) {
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await fh.write(data, off, data.length - off, off);
      off += bytesWritten;
    }
  },
  async writeAt(fh, data, position) {
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
      off += bytesWritten;
    }
  },
  sync: (fd) => fsyncFd(fd),
};

async function fsyncDirectory(dir: string, io: SpoolIo): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await io.sync(fh.fd, 'directory', dir);
  } finally {
    await fh.close();
  }
}

/**
 * Group commit of directory fsyncs: a writer whose rename is done needs an
 * fsync of the directory that STARTS after its rename. While one runs, later
 * writers share the next one; 20 concurrent SMTP sessions so cost a few
 * directory fsyncs instead of one each.
 */
class DirectorySync {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly dir: string, private readonly io: SpoolIo) {}

  private start(): Promise<void> {
    const p = fsyncDirectory(this.dir, this.io).finally(() => {
      if (this.running === p) this.running = undefined;
    });
    this.running = p;
    return p;
  }

  sync(): Promise<void> {
    if (!this.running) return this.start();
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.start();
      });
    return this.next;
  }
}

const readBuffer = Buffer.allocUnsafe(4096);

/**
 * How many leading bytes of a `size`-byte queue file the envelope needs, given
 * the first `got` bytes read into `head` (both readers below share this).
 */
function envelopeNeed(head: Buffer, got: number, size: number): number {
  if (got < HEADER_LENGTH) throw new QueueFileFormatError(`truncated header (${got} of ${HEADER_LENGTH} bytes)`);
  const need = envelopePrefixLength(head.subarray(0, got));
  if (need > size) throw new QueueFileFormatError(`truncated envelope (${size} of ${need} bytes)`);
  return need;
}

/** `head` (the first `got` bytes) grown into a buffer of `need` bytes, ready for the rest of the read. */
function grow(head: Buffer, got: number, need: number): Buffer {
  const more = Buffer.allocUnsafe(need);
  head.copy(more, 0, 0, got);
  return more;
}

/** Read a queue file's envelope (not its content) with synchronous I/O. */
export function readEnvelopeSync(path: string): QueueEnvelope {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    // One shared read buffer: the decoded envelope holds no reference to it.
    let buf: Buffer = readBuffer;
    let got = readSync(fd, buf, 0, Math.min(size, buf.length), 0);
    const need = envelopeNeed(buf, got, size);
    if (need > got) {
      buf = grow(buf, got, need);
      got += readSync(fd, buf, got, need - got, got);
    }
    return decodeEnvelope(buf.subarray(0, got), size);
  } finally {
    closeSync(fd);
  }
}

function writeError(queue: string, err: unknown): QueueWriteError {
  if (err instanceof QueueWriteError) return err;
  return new QueueWriteError(`queue file write error: ${queue}: ${err instanceof Error ? err.message : String(err)}`, errnoCode(err), { cause: err });
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already.
  }
}

function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsyncCb(fd, (err) => (err ? reject(err) : resolve())));
}

/** Write all pieces at offset 0 (a whole queue file) with as few system calls as it takes. */
function writevAllSync(fd: number, pieces: readonly Uint8Array[]): void {
  let size = 0;
  for (const p of pieces) size += p.length;
  let done = writevSync(fd, pieces as Uint8Array[], 0);
  if (done === size) return;
  const all = Buffer.concat(pieces as Uint8Array[], size);
  while (done < size) done += writevSync(fd, [all.subarray(done)], done);
}

/** A minimal FileHandle over a descriptor, for the SpoolIo.writeAt test hook. */
function fdHandle(fd: number): FileHandle {
  return {
    fd,
    write: (data: Uint8Array, off: number, len: number, pos: number) =>
      new Promise((resolve, reject) => writeCb(fd, data, off, len, pos, (err, bytesWritten) => (err ? reject(err) : resolve({ bytesWritten, buffer: data })))),
  } as unknown as FileHandle;
}

/** A queue file being written (Spool.openMessage()). */
class SpoolMessageFile implements MessageFile {
  private state: 'open' | 'committed' | 'gone' = 'open';

  constructor(
    private readonly spool: Spool,
    readonly queue: 'incoming' | 'maildrop',
    readonly dir: string,
    readonly tmp: string,
    readonly id: string,
    readonly fd: number,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    if (this.state !== 'open') throw writeError(this.queue, new Error('file already closed'));
    try {
      await this.spool.writeFd(this.fd, data, position);
    } catch (err) {
      this.discard();
      throw writeError(this.queue, err);
    }
  }

  async commit(whole?: readonly Uint8Array[]): Promise<void> {
    if (this.state !== 'open') throw writeError(this.queue, new Error('file already closed'));
    this.state = 'committed';
    try {
      await this.spool.commitFile(this, whole);
    } catch (err) {
      // commitFile() closed the descriptor and removed the file.
      this.state = 'gone';
      throw writeError(this.queue, err);
    }
  }

  private discard(): void {
    if (this.state !== 'open') return;
    this.state = 'gone';
    try {
      closeSync(this.fd);
    } catch {
      // Closed by a failed commit.
    }
    unlinkQuiet(this.tmp);
  }

  async abort(): Promise<void> {
    this.discard();
  }
}

/**
 * The queue manager's offer to take new mail straight into active/ (QueueStore.setActiveGate):
 * a message it admits is committed into active/ instead of incoming/ — one rename less, and
 * no trip through the incoming feed.
 */
export interface ActiveGate {
  /** May the new message `id` be committed into active/? A yes reserves its place. */
  admit(id: string): boolean;
  /** The admitted message is durable in active/ (`ok`), or its commit failed and its file is gone. Never throws. */
  landed(id: string, ok: boolean): void;
}

export class Spool {
  readonly dir: string;
  /**
   * Set by the queue manager while it runs (QueueStore.setActiveGate): new mail written
   * whole through the journal may go straight into active/ (commitFile()).
   */
  activeGate: ActiveGate | undefined;
  private readonly longIds: boolean;
  private readonly doFsync: boolean;
  private readonly now: () => bigint;
  private readonly io: SpoolIo;
  private seq = 0;
  private journal_: CommitLog | undefined;
  /** Files just committed through the journal, for the queue manager's first read (takeFresh). */
  private readonly fresh = new Map<string, { bytes: readonly Uint8Array[]; size: number }>();
  private freshBytes = 0;
  /** Create, rename and unlink of queue files: direct while the file system is fast (meta-calls.ts). */
  readonly meta: MetaCalls;
  /** Emptied files of delivered messages in journal/, kept for new ones (recycle()). */
  private readonly spares: string[] = [];

  constructor(dir: string, opts: SpoolOptions = {}) {
    // Normalized once, without a trailing slash: the hot paths build names by concatenation.
    const n = normalize(dir);
    this.dir = n.length > 1 && n.endsWith(sep) ? n.slice(0, -1) : n;
    this.longIds = opts.longQueueIds ?? false;
    this.doFsync = opts.fsync ?? true;
    this.now = opts.nowMicros ?? nowMicros;
    this.io = { ...defaultIo, ...opts.io };
    this.journal_ = opts.journal;
    this.meta = new MetaCalls(opts.metaCalls);
  }

  /** The group-commit journal, when this spool writes through one. */
  get journal(): CommitLog | undefined {
    return this.journal_;
  }

  /** Start (a journal) or stop (undefined) writing through the group-commit journal. */
  useJournal(journal: CommitLog | undefined): void {
    this.journal_ = journal;
    this.fresh.clear();
    this.freshBytes = 0;
    // Without the journal (the daemon stops): no spare files are left behind (recycle()).
    if (!journal) for (const path of this.spares.splice(0)) unlinkQuiet(path);
  }

  /**
   * The bytes of a file committed through the journal a moment ago, once (the queue
   * manager reads the envelope of new mail from memory, not from the disk). At most
   * FRESH_LIMIT bytes are kept; older entries are dropped.
   */
  takeFresh(id: string): { bytes: readonly Uint8Array[]; size: number } | undefined {
    const f = this.fresh.get(id);
    if (!f) return undefined;
    this.fresh.delete(id);
    this.freshBytes -= f.size;
    return f;
  }

  private keepFresh(id: string, bytes: readonly Uint8Array[]): void {
    let size = 0;
    for (const b of bytes) size += b.length;
    if (size > FRESH_LIMIT / 16) return;
    this.fresh.set(id, { bytes, size });
    this.freshBytes += size;
    for (const [old, f] of this.fresh) {
      if (this.freshBytes <= FRESH_LIMIT) break;
      this.fresh.delete(old);
      this.freshBytes -= f.size;
    }
  }

  /** Forget a fresh copy (the file changed or went away). */
  dropFresh(id: string): void {
    const f = this.fresh.get(id);
    if (!f) return;
    this.fresh.delete(id);
    this.freshBytes -= f.size;
  }

  path(queue: QueueName, id: string): string {
    return `${this.dir}/${queue}/${id}`;
  }

  private readonly dirSyncs = new Map<string, DirectorySync>();

  private directorySync(dir: string): DirectorySync {
    let d = this.dirSyncs.get(dir);
    if (!d) {
      d = new DirectorySync(dir, this.io);
      this.dirSyncs.set(dir, d);
    }
    return d;
  }

  private deferPath(id: string): string {
    return `${this.dir}/defer/${id}`;
  }

  /**
   * Write a new message durably into `queue` (incoming, or maildrop for local
   * submission) and return its queue ID. See the header for the steps.
   * `content` may be a function of the queue ID: cleanup puts the ID in the
   * Received: header and an added Message-ID, and the ID is known as soon as
   * the temporary file exists (its inode), before any content is written —
   * so the file is written once, under its final name, with no second pass.
   */
  async writeMessage(
    envelope: EnvelopeInput,
    content: Uint8Array | ((queueId: string) => Uint8Array),
    queue: 'incoming' | 'maildrop' = 'incoming',
  ): Promise<string> {
    if (this.journal_) return this.writeMessageJournal(envelope, content, queue);
    const dir = join(this.dir, queue);
    const tmp = join(dir, `${TEMP_PREFIX}${process.pid}.${++this.seq}`);
    let fh: FileHandle | undefined;
    let final: string | undefined;
    try {
      fh = await open(tmp, 'wx', queue === 'maildrop' ? 0o444 : 0o600);
      await this.giveToQueueOwner(fh, queue);
      const { ino } = await fh.stat({ bigint: true });
      const id = await this.uniqueId(dir, ino);
      const bytes = encodeQueueFile(envelope, typeof content === 'function' ? content(id) : content);
      await this.io.writeAll(fh, bytes);
      if (this.doFsync) await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(tmp, join(dir, id));
      final = join(dir, id);
      if (this.doFsync) await this.directorySync(dir).sync();
      return id;
    } catch (err) {
      if (fh) await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      if (final) await unlink(final).catch(() => undefined);
      throw writeError(queue, err);
    }
  }

  /**
   * writeMessage() through the journal: the file is written (no fsync) and renamed with
   * plain system calls — page-cache work, cheaper than a thread-pool round trip each —
   * then its bytes go to the journal, whose group commit makes it durable.
   */
  private async writeMessageJournal(
    envelope: EnvelopeInput,
    content: Uint8Array | ((queueId: string) => Uint8Array),
    queue: 'incoming' | 'maildrop',
  ): Promise<string> {
    const file = await this.openMessage(queue);
    let bytes: Uint8Array;
    try {
      bytes = encodeQueueFile(envelope, typeof content === 'function' ? content(file.id) : content);
    } catch (err) {
      await file.abort();
      throw writeError(queue, err);
    }
    await file.commit([bytes]);
    return file.id;
  }

  /** giveToQueueOwner() for a descriptor. */
  private async giveToQueueOwnerFd(fd: number, queue: 'incoming' | 'maildrop'): Promise<void> {
    if (queue === 'maildrop' || process.geteuid?.() !== 0) return;
    const dir = await stat(join(this.dir, queue));
    if (dir.uid !== 0) await new Promise<void>((resolve, reject) => fchownCb(fd, dir.uid, dir.gid, (err) => (err ? reject(err) : resolve())));
  }

  /** Root writing outside maildrop/: the file belongs to the directory's owner (see the header). */
  private async giveToQueueOwner(fh: FileHandle, queue: 'incoming' | 'maildrop'): Promise<void> {
    if (queue === 'maildrop' || process.geteuid?.() !== 0) return;
    const dir = await stat(join(this.dir, queue));
    if (dir.uid !== 0) await fh.chown(dir.uid, dir.gid);
  }

  /**
   * Start a queue file that is written in pieces (intake streams a message from the socket
   * to the disk): the same temporary name, ID, fsyncs and rename as writeMessage(), with
   * the writes in the caller's hands. See MessageFile.
   */
  async openMessage(queue: 'incoming' | 'maildrop' = 'incoming'): Promise<MessageFile> {
    const dir = `${this.dir}/${queue}`;
    const spare = queue === 'incoming' ? this.takeSpare() : undefined;
    const tmp = spare?.path ?? `${dir}/${TEMP_PREFIX}${process.pid}.${++this.seq}`;
    let fd = spare?.fd ?? -1;
    let id: string;
    try {
      // The same modes and owners as writeMessage(): a maildrop file 0444 kept by its submitter,
      // a file root writes elsewhere given to the queue directory's owner (see the header).
      // Direct or through the thread pool: creating a file may wait for the file system's journal (meta-calls.ts).
      if (fd < 0) fd = await this.meta.create(tmp, queue === 'maildrop' ? 0o444 : 0o600);
      await this.giveToQueueOwnerFd(fd, queue);
      id = await this.uniqueId(dir, fstatSync(fd, { bigint: true }).ino);
    } catch (err) {
      if (fd >= 0) closeSync(fd);
      try {
        unlinkSync(tmp);
      } catch {
        // Never created.
      }
      throw writeError(queue, err);
    }
    return new SpoolMessageFile(this, queue, dir, tmp, id, fd);
  }

  /**
   * MessageFile's commit, with or without the journal (see the header and journal.ts).
   * On failure nothing is left: the descriptor is closed, the temporary or final name removed.
   */
  async commitFile(f: { queue: 'incoming' | 'maildrop'; dir: string; tmp: string; id: string; fd: number }, whole: readonly Uint8Array[] | undefined): Promise<void> {
    const journal = this.journal_;
    // New mail the queue manager admits goes straight into active/ (ActiveGate). A crash
    // leaves it there, vouched for by the journal; the queue manager's start moves active/
    // back to incoming/, as for any message in delivery.
    const gate = whole && journal && f.queue === 'incoming' ? this.activeGate : undefined;
    const direct = gate !== undefined && gate.admit(f.id);
    const final = direct ? `${this.dir}/active/${f.id}` : `${f.dir}/${f.id}`;
    let fdOpen = true;
    let renamed = false;
    try {
      if (whole && this.io.writeAt !== defaultIo.writeAt) await this.writeFd(f.fd, Buffer.concat(whole as Uint8Array[]), 0);
      else if (whole) writevAllSync(f.fd, whole);
      if (this.doFsync && !(whole && journal)) await this.io.sync(f.fd, 'file', f.tmp);
      closeSync(f.fd);
      fdOpen = false;
      await this.meta.rename(f.tmp, final);
      renamed = true;
      if (whole && journal) {
        await journal.append(f.queue, f.id, whole);
        this.keepFresh(f.id, whole);
      } else if (this.doFsync) await this.directorySync(f.dir).sync();
    } catch (err) {
      if (fdOpen) closeSync(f.fd);
      unlinkQuiet(renamed ? final : f.tmp);
      if (direct) gate.landed(f.id, false);
      throw err;
    }
    if (direct) gate.landed(f.id, true);
  }

  /** The io.writeAt hook over a descriptor (tests simulate a full disk through it). */
  async writeFd(fd: number, data: Uint8Array, position: number): Promise<void> {
    if (this.io.writeAt !== defaultIo.writeAt) {
      await this.io.writeAt(fdHandle(fd), data, position);
      return;
    }
    let off = 0;
    while (off < data.length) {
      off += await new Promise<number>((resolve, reject) =>
        writeCb(fd, data, off, data.length - off, position + off, (err, n) => (err ? reject(err) : resolve(n))),
      );
    }
  }

  /**
   * The ID from the creation time and inode. The inode makes it unique among
   * existing files; the existence check only guards against a clock that
   * jumped back onto a reused inode's old name.
   */
  private async uniqueId(dir: string, ino: bigint): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const id = makeQueueId(this.longIds, this.now() + BigInt(attempt), ino);
      if (!existsSync(`${dir}/${id}`) || attempt > 1000) return id;
    }
  }

  /** Move a message between queues (one rename). False when it is not in `from`. */
  async move(id: string, from: QueueName, to: QueueName): Promise<boolean> {
    try {
      await this.meta.rename(this.path(from, id), this.path(to, id));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** The first message queue (showq order) that holds `id`, if any. */
  locate(id: string, queues: readonly QueueName[] = MESSAGE_QUEUES): QueueName | undefined {
    if (!isValidQueueId(id)) return undefined;
    for (const q of queues) if (existsSync(this.path(q, id))) return q;
    return undefined;
  }

  private async flipByte(queue: QueueName, id: string, offset: (env: Buffer) => number, allowed: readonly number[], value: number): Promise<boolean> {
    const fh = await open(this.path(queue, id), 'r+');
    try {
      const head = Buffer.alloc(HEADER_LENGTH);
      await fh.read(head, 0, HEADER_LENGTH, 0);
      const where = offset(head);
      const cur = Buffer.alloc(1);
      await fh.read(cur, 0, 1, where);
      if (!allowed.includes(cur[0]!)) throw new QueueFileFormatError(`${queue}/${id}: bad state byte at offset ${where}`);
      if (cur[0] === value) return false;
      await fh.write(Buffer.from([value]), 0, 1, where);
      if (this.doFsync) await fh.sync();
      return true;
    } finally {
      await fh.close();
    }
  }

  /** Mark recipient `index` delivered (or bounced): durable, one byte. False if it already was. */
  async markDone(queue: QueueName, id: string, index: number): Promise<boolean> {
    return this.flipByte(
      queue,
      id,
      (head) => {
        const count = head.readUInt32BE(12);
        if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`${queue}/${id}: no recipient ${index}`);
        return statusOffset(index);
      },
      [STATUS_PENDING, STATUS_DONE],
      STATUS_DONE,
    );
  }

  /** Mark several recipients done with one open and one fsync. ENOENT when the file is gone. */
  async markDoneMany(queue: QueueName, id: string, indexes: readonly number[]): Promise<void> {
    if (indexes.length === 0) return;
    const fh = await open(this.path(queue, id), 'r+');
    try {
      const head = Buffer.alloc(HEADER_LENGTH);
      await fh.read(head, 0, HEADER_LENGTH, 0);
      const count = head.readUInt32BE(12);
      const done = Buffer.from([STATUS_DONE]);
      for (const index of indexes) {
        if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`${queue}/${id}: no recipient ${index}`);
        await fh.write(done, 0, 1, statusOffset(index));
      }
      if (this.doFsync) await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** postsuper -e/-f: request forced expiration. False if it already was. */
  async setForcedExpire(queue: QueueName, id: string, on = true): Promise<boolean> {
    return this.flipByte(queue, id, () => FORCED_EXPIRE_OFFSET, [EXPIRE_NO, EXPIRE_YES], on ? EXPIRE_YES : EXPIRE_NO);
  }

  /** Append a delay reason for one recipient to `defer/ID` (the latest per recipient wins). */
  async setDelayReason(id: string, reason: DelayReason): Promise<void> {
    await appendFile(this.deferPath(id), encodeDelayRecord(reason), { mode: 0o600 });
  }

  /** Forget the delay reasons (before a new delivery attempt, as qmgr does). */
  async clearDelayReasons(id: string): Promise<void> {
    await unlink(this.deferPath(id)).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }

  /** Set the next attempt time of a queued file (its mtime; qmgr_active_defer()). */
  async setNextAttempt(queue: QueueName, id: string, whenMs: number): Promise<void> {
    const t = new Date(whenMs);
    await utimes(this.path(queue, id), t, t);
  }

  /** Record durably that the delay warning for `id` was sent. */
  async markWarned(id: string): Promise<void> {
    await writeFile(`${this.deferPath(id)}.warned`, '', { mode: 0o600 });
  }

  /** Was the delay warning for `id` sent? */
  async isWarned(id: string): Promise<boolean> {
    try {
      await stat(`${this.deferPath(id)}.warned`);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Queue IDs in one queue (unsorted, async; the scheduler's scans). */
  async listAsync(queue: QueueName): Promise<string[]> {
    try {
      return (await readdir(join(this.dir, queue))).filter(isValidQueueId);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  /** The mtimes of many files of one queue (ms; undefined when gone), in the order of `ids`: read in bulk by stat-times.ts. */
  async mtimes(queue: QueueName, ids: readonly string[]): Promise<Array<number | undefined>> {
    return (await statTimes(join(this.dir, queue), ids)).map((t) => t?.mtime);
  }

  /** The mtime of a queued file in ms, or undefined when it is gone. */
  async mtime(queue: QueueName, id: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(queue, id))).mtimeMs;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The envelope of one queue file with asynchronous I/O (QueueFileFormatError when corrupt, ENOENT when gone). */
  async readEnvelopeAsync(queue: QueueName, id: string): Promise<QueueEnvelope> {
    const fh = await open(this.path(queue, id), 'r');
    try {
      const { size } = await fh.stat();
      let buf: Buffer = Buffer.allocUnsafe(Math.min(size, 4096));
      let { bytesRead: got } = await fh.read(buf, 0, buf.length, 0);
      const need = envelopeNeed(buf, got, size);
      if (need > got) {
        buf = grow(buf, got, need);
        got += (await fh.read(buf, got, need - got, got)).bytesRead;
      }
      return decodeEnvelope(buf.subarray(0, got), size);
    } finally {
      await fh.close();
    }
  }

  readDelayReasons(id: string): Map<number, DelayReason> {
    let text: string;
    try {
      text = readFileSync(this.deferPath(id), 'utf8');
    } catch (err) {
      if (isNotFound(err)) return new Map();
      throw err;
    }
    return parseDelayLog(text);
  }

  /** IDs that have a delay log (one directory read; cheaper than probing per message). */
  delayLogIds(): Set<string> {
    try {
      return new Set(readdirSync(join(this.dir, 'defer')));
    } catch (err) {
      if (isNotFound(err)) return new Set();
      throw err;
    }
  }

  /**
   * A spare file for a new message, open for writing (see recycle()); undefined
   * when there is none or file-system calls go to the thread pool now.
   */
  private takeSpare(): { path: string; fd: number } | undefined {
    while (this.spares.length > 0 && this.meta.direct) {
      const path = this.spares.pop()!;
      try {
        return { path, fd: this.meta.run(() => openSync(path, fsConstants.O_WRONLY)) };
      } catch {
        unlinkQuiet(path);
      }
    }
    return undefined;
  }

  /**
   * Instead of unlinking the file of a message that left the active queue, keep its inode
   * for the next new message: renamed to a temporary name in the journal's directory (out of
   * sight of the message queues) and truncated to nothing (no old content stays on disk).
   * Allocating and freeing an inode per message is file-system work, and on ext4 without a
   * journal a new inode is searched past every inode
   * freed in the last seconds, which under load costs more than the rest of a message's file
   * work (docs/delivery.md "Speed"). Only the daemon does this (it writes through the
   * journal), at most SPARE_LIMIT files; recover() removes spares at start. False when the
   * file was not recycled (the caller unlinks it and sees its errors).
   */
  private recycle(from: string): boolean {
    if (!this.journal_ || this.spares.length >= SPARE_LIMIT || !this.meta.direct) return false;
    const spare = `${this.dir}/${SPARE_DIR}/${TEMP_PREFIX}${process.pid}.${++this.seq}`;
    try {
      this.meta.run(() => renameSync(from, spare));
    } catch {
      return false;
    }
    // Truncated by path (open, ftruncate, close) and opened again when taken: an ext4 file
    // truncated to 0 is flushed when its descriptor closes after new writes (auto_da_alloc),
    // so a spare kept open from its truncation made every commit start writeback (measured:
    // 20% slower, more fsync work).
    try {
      this.meta.run(() => truncateSync(spare, 0));
    } catch {
      unlinkQuiet(spare);
      return true;
    }
    this.spares.push(spare);
    return true;
  }

  /** How many files are kept for reuse (tests). */
  get spareFiles(): number {
    return this.spares.length;
  }

  /** Delete only the message file (the caller knows it has no delay log or marker). False when it was not in `queue`. */
  async removeFile(queue: QueueName, id: string): Promise<boolean> {
    try {
      if (queue === 'active' && this.recycle(this.path(queue, id))) return true;
      await this.meta.unlink(this.path(queue, id));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Delete a message and its delay log. False when it was not in `queue`. */
  async remove(queue: QueueName, id: string): Promise<boolean> {
    try {
      await this.clearDelayReasons(id);
      await unlink(`${this.deferPath(id)}.warned`).catch(() => undefined);
      await unlink(this.path(queue, id));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Queue IDs in one queue, sorted; temporary and foreign names are skipped. */
  list(queue: QueueName): string[] {
    let names: string[];
    try {
      names = readdirSync(join(this.dir, queue));
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
    return names.filter(isValidQueueId).sort();
  }

  /** The envelope (no content) of one queue file; QueueFileFormatError when corrupt. */
  readEnvelope(queue: QueueName, id: string): QueueEnvelope {
    return readEnvelopeSync(this.path(queue, id));
  }

  /** The envelope and the content, both checksums verified. */
  async readMessage(queue: QueueName, id: string): Promise<{ envelope: QueueEnvelope; content: Buffer }> {
    return decodeQueueFile(await readFile(this.path(queue, id)));
  }

  async readContent(queue: QueueName, id: string): Promise<Buffer> {
    return (await this.readMessage(queue, id)).content;
  }

  /** Move a broken file aside to `corrupt/` (as Postfix's qmgr does); never throws for a vanished file. */
  async quarantine(queue: QueueName, id: string): Promise<void> {
    await this.move(id, queue, 'corrupt');
    await chmod(this.path('corrupt', id), 0o400).catch(() => undefined);
  }

  /** Walk the message queues; see the header. */
  async scan(opts: ScanOptions = {}): Promise<ScanSummary> {
    let messages = 0;
    let corrupt = 0;
    for (const queue of opts.queues ?? MESSAGE_QUEUES) {
      for (const id of this.list(queue)) {
        let envelope: QueueEnvelope;
        try {
          envelope = this.readEnvelope(queue, id);
        } catch (err) {
          if (isNotFound(err)) continue;
          const error = err instanceof Error ? err.message : String(err);
          if (opts.quarantine ?? true) {
            try {
              await this.quarantine(queue, id);
            } catch {
              // Reported below; the file stays where it is and will be retried.
            }
          }
          corrupt++;
          opts.onCorrupt?.({ queue, id, error });
          continue;
        }
        messages++;
        opts.onMessage?.({ queue, id, envelope });
      }
    }
    return { messages, corrupt };
  }

  /**
   * Remove temporary files left by a crash (older than `minAgeMs`; 0 = all).
   * Run before accepting mail. Returns how many were removed.
   */
  async recover(minAgeMs = 0): Promise<number> {
    let removed = 0;
    const cutoff = Date.now() - minAgeMs;
    for (const queue of [...MESSAGE_QUEUES, SPARE_DIR]) {
      let names: string[];
      try {
        names = readdirSync(join(this.dir, queue));
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      for (const name of names) {
        if (!name.startsWith(TEMP_PREFIX)) continue;
        const p = join(this.dir, queue, name);
        try {
          if (minAgeMs > 0 && (await stat(p)).mtimeMs > cutoff) continue;
          await unlink(p);
          removed++;
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    }
    return removed;
  }

  /**
   * postsuper -r: copy the message into `incoming` under a new queue ID with
   * only its pending recipients (arrival time kept), then delete the old file
   * and its delay log. Returns the new ID, or undefined when it is gone.
   */
  async requeue(queue: QueueName, id: string): Promise<string | undefined> {
    let msg;
    try {
      msg = await this.readMessage(queue, id);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const e = msg.envelope;
    const input: EnvelopeInput = {
      arrivalTime: e.arrivalTime,
      sender: e.sender,
      recipients: e.recipients.filter((r) => r.status === 'pending'),
      ...messageFlags(e),
      ...(e.client !== undefined ? { client: e.client } : {}),
    };
    const newId = await this.writeMessage(input, msg.content, 'incoming');
    await this.remove(queue, id);
    return newId;
  }
}

/** Create (if needed) every spool directory with mode 0700 and return the spool. */
export async function createSpool(dir: string, opts: SpoolOptions = {}): Promise<Spool> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const d of [...ALL_QUEUES, ...SIDE_DIRS]) await mkdir(join(dir, d), { recursive: true, mode: 0o700 });
  return new Spool(dir, opts);
}

/** Synchronous variant of createSpool for tools and tests. */
export function createSpoolSync(dir: string, opts: SpoolOptions = {}): Spool {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const d of [...ALL_QUEUES, ...SIDE_DIRS]) mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
  return new Spool(dir, opts);
}

/** Open an existing spool; throws an Error naming the directory when it is not one. */
export function openSpool(dir: string, opts: SpoolOptions = {}): Spool {
  try {
    if (!statSync(dir).isDirectory()) throw new Error(`${dir}: not a directory`);
  } catch (err) {
    if (isNotFound(err)) throw new Error(`open queue directory ${dir}: No such file or directory`, { cause: err });
    throw err;
  }
  return new Spool(dir, opts);
}
