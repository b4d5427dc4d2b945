/**
 * pickup.ts — the pickup service: move locally submitted mail from
 * `maildrop/` through the cleanup step into `incoming/`, as Postfix's
 * pickup(8) + cleanup(8) do, and log `QUEUEID: uid=N from=<sender>`.
 *
 * Contract:
 * - Wakes on fs.watch events for maildrop/ and on a periodic scan (the watch
 *   can miss events; pickup(8) also polls), handles one file at a time, in
 *   queue-ID order.
 * - Nothing is lost: the maildrop file is removed only after the incoming file
 *   is written and fsynced (intake/queue-write.ts). Nothing is duplicated by
 *   a crash between those two steps: before each file pickup records its ID
 *   in `queue_directory/private/pickup.state` (fsynced; private/ belongs to
 *   mail_owner, pid/ to root); on start, when that file
 *   still exists in maildrop/, pickup looks for a queued message with the same
 *   arrival time, sender, recipients and body and, if there is one, only
 *   removes the maildrop file (finishing the interrupted pickup).
 * - Trust: a maildrop file written by another user (through the setgid
 *   postdrop helper) is untrusted input. Its arrival time is the file's
 *   modification time, not what the file claims (Postfix's postdrop: "Don't
 *   trust the caller's time information"); its uid comes from the file owner.
 * - A maildrop file that does not parse is moved to corrupt/ with a warning;
 *   a queue write error leaves the file for the next scan.
 * - `stop()` finishes the file being processed, then returns.
 *
 * The content step is intake/local-cleanup.ts pickUpMaildrop(): the maildrop
 * content streamed through cleanup (pickup's `Received: by HOST (sealpost, from
 * userid N)`, missing From:/Date:/Message-Id:, stray CR/LF, hop count — a message
 * with too many hops is bounced) into incoming/, never whole in memory.
 *
 * Not here: address rewriting beyond append_at_myorigin (sendmail did it),
 * header_checks, what sendmail writes (intake/maildrop.ts).
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from '../config/types.ts';
import { pickUpMaildrop } from '../intake/local-cleanup.ts';
import { parseHeaders } from '../message/headers.ts';
import type { Publish } from '../reports/received-event.ts';
import type { QueueEnvelope } from '../queue/queue-file.ts';
import { QueueFileFormatError } from '../queue/queue-file.ts';
import type { Spool } from '../queue/spool.ts';
import type { MailLog } from '../reports/maillog.ts';
import { isNotFound } from '../lib/fs-errors.ts';

export { localCleanupSettings, pickupEnvelope } from '../intake/local-cleanup.ts';

export interface PickupOptions {
  readonly spool: Spool;
  readonly config: Config;
  readonly log: MailLog;
  /** Called with each new queue ID once it is in incoming/. */
  readonly onQueued?: (queueId: string) => void;
  /** The daemon's event bus: `received` events (intake/local-cleanup.ts). */
  readonly publish?: Publish;
  /** Periodic scan interval (default 5 s). */
  readonly intervalMs?: number;
}

/** The body without the separator line (cleanup may insert one where there was none). */
function bodyOf(content: Buffer): Buffer {
  const rest = content.subarray(parseHeaders(content).end);
  if (rest[0] === 0x0a) return rest.subarray(1);
  if (rest[0] === 0x0d && rest[1] === 0x0a) return rest.subarray(2);
  return rest;
}

/** The arrival time pickup records: the file's own claim only from root or the daemon's user (see the header). */
export function trustedArrival(envelope: QueueEnvelope, file: { readonly uid: number; readonly mtimeMs: number }, self = process.getuid?.() ?? 0): QueueEnvelope {
  if (file.uid === 0 || file.uid === self) return envelope;
  return { ...envelope, arrivalTime: Math.floor(file.mtimeMs) };
}

function sameEnvelope(a: QueueEnvelope, b: QueueEnvelope): boolean {
  return (
    a.arrivalTime === b.arrivalTime &&
    a.sender === b.sender &&
    a.recipients.length === b.recipients.length &&
    a.recipients.every((r, i) => r.address === b.recipients[i]!.address)
  );
}

export class Pickup {
  private readonly spool: Spool;
  private config: Config;
  private readonly log: MailLog;
  private readonly onQueued: ((id: string) => void) | undefined;
  private readonly publish: Publish | undefined;
  private readonly intervalMs: number;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(opts: PickupOptions) {
    this.spool = opts.spool;
    this.config = opts.config;
    this.log = opts.log;
    this.onQueued = opts.onQueued;
    this.publish = opts.publish;
    this.intervalMs = opts.intervalMs ?? 5000;
  }

  private get statePath(): string {
    return join(this.spool.dir, 'private', 'pickup.state');
  }

  /** Finish an interrupted pickup, then watch maildrop/ and scan it. */
  async start(): Promise<void> {
    await this.recoverInterrupted();
    const dir = join(this.spool.dir, 'maildrop');
    try {
      this.watcher = watch(dir, () => this.kick());
      this.watcher.on('error', () => {
        // The periodic scan carries on alone.
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.log.warn('pickup', `cannot watch ${dir}: ${(err as Error).message}; scanning every ${this.intervalMs / 1000}s`);
    }
    this.timer = setInterval(() => this.kick(), this.intervalMs);
    this.kick();
  }

  /** New settings (reload). */
  update(config: Config): void {
    this.config = config;
  }

  /** Request a scan; scans never overlap. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves when the current scan (if any) is finished. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      await this.scanOnce();
    } while (this.again && !this.stopped);
  }

  /** Process every maildrop file once; returns how many were queued. */
  async scanOnce(): Promise<number> {
    let n = 0;
    for (const id of this.spool.list('maildrop')) {
      if (this.stopped) break;
      try {
        if (await this.pickOne(id)) n++;
      } catch (err) {
        this.log.warn('pickup', `maildrop/${id}: ${(err as Error).message}; will retry`);
        break;
      }
    }
    return n;
  }

  private async writeState(id: string): Promise<void> {
    await mkdir(dirname(this.statePath), { recursive: true, mode: 0o700 });
    const fh = await open(this.statePath, 'w', 0o600);
    try {
      await fh.writeFile(`${id}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  private async pickOne(id: string): Promise<boolean> {
    const path = this.spool.path('maildrop', id);
    let uid: number;
    let mtimeMs: number;
    try {
      const st = await stat(path);
      uid = st.uid;
      mtimeMs = st.mtimeMs;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    await this.writeState(id);
    try {
      // Another user's maildrop file: its own arrival time is not trusted (trustedArrival).
      await pickUpMaildrop({ spool: this.spool, config: this.config, log: this.log, onQueued: this.onQueued, publish: this.publish }, id, uid, (e) => trustedArrival(e, { uid, mtimeMs }));
    } catch (err) {
      if (isNotFound(err)) return false;
      if (err instanceof QueueFileFormatError) {
        this.log.warn('pickup', `maildrop/${id}: ${err.message}: moved to corrupt/`);
        await this.spool.quarantine('maildrop', id);
        return false;
      }
      throw err;
    }
    // Only now, with incoming/ID fsynced (or the message bounced), may the maildrop file go.
    await unlink(path).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    return true;
  }

  /** See the header: finish a pickup that a crash interrupted. */
  async recoverInterrupted(): Promise<void> {
    let id: string;
    try {
      id = (await readFile(this.statePath, 'utf8')).trim();
    } catch {
      return;
    }
    if (id === '' || this.spool.locate(id, ['maildrop']) === undefined) return;
    let mine: { envelope: QueueEnvelope; content: Buffer };
    try {
      const st = await stat(this.spool.path('maildrop', id));
      mine = await this.spool.readMessage('maildrop', id);
      mine = { ...mine, envelope: trustedArrival(mine.envelope, st) };
    } catch {
      return; // The normal scan reports it.
    }
    const body = bodyOf(mine.content);
    for (const queue of ['incoming', 'active', 'deferred', 'hold'] as const) {
      for (const qid of this.spool.list(queue)) {
        let env: QueueEnvelope;
        try {
          env = this.spool.readEnvelope(queue, qid);
        } catch {
          continue;
        }
        if (!sameEnvelope(env, mine.envelope)) continue;
        const content = await this.spool.readContent(queue, qid).catch(() => undefined);
        if (!content || !bodyOf(content).equals(body)) continue;
        await unlink(this.spool.path('maildrop', id)).catch(() => undefined);
        this.log.write('pickup', `${qid}: maildrop file ${id} was already queued before a restart; removed it`);
        return;
      }
    }
  }

  /** Stop watching; finish the file in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.idle();
  }
}
