/**
 * content.ts — the message content on its way from the queue file to the DATA stream
 * (Postfix smtp_proto.c: the queue file is read record by record after the server said
 * 354, through mime_state(3) when downgrading, into smtp_text_out()).
 *
 * Contract:
 * - `queueContent(queueFile)` is a `MessageSource`: `chunks()` opens the queue file anew
 *   on every call (so a second server, the next MX or a fresh connection after a failure
 *   can be sent the same message), checks the envelope, and yields the content in pieces
 *   of at most CHUNK octets, reading the next piece only when the consumer asks for it —
 *   at most one piece is held per delivery. With `reuse`, every piece is read into the
 *   same buffer: the consumer promises to be done with a piece (written out, no slice
 *   kept) before it asks for the next; a large message then costs no garbage at all (V8
 *   collects Buffers only every few tens of MB of them, and the process keeps that much
 *   memory once it has had it). One read takes the fixed header, the envelope and the
 *   first piece; on a delivery thread the file is opened, measured and first read with
 *   blocking calls (page-cache work; the main thread goes through the thread pool).
 *   The content CRC-32 of the queue file is
 *   checked at the end: a mismatch (or a short file) throws before the end-of-data dot
 *   could be sent. `headersNeedUtf8()` scans the header section piece by piece (for the
 *   SMTPUTF8 pre-check) without keeping it.
 * - `dataStream(source, plan)` is the DATA transform: content → MimeDowngrade when
 *   `plan.downgrade` (8-bit MIME to quoted-printable) → DotStuffer (bare CR and LF become
 *   CRLF, lines broken at smtp_line_length_limit, leading dots doubled, `.` CRLF at the
 *   end). Nothing is buffered beyond the transforms' own state and one small piece: a
 *   piece of at most 16 KiB is copied and held until the next one, so that the last one
 *   (all of a small message) and the end-of-data dot go out in one write. Without a
 *   downgrade the source's buffer is reused (the DotStuffer keeps no slice of its input);
 *   what it yields then lives only until the consumer asks for the next piece.
 * - `mimeDowngradeWanted()` is SMTP_MIME_DOWNGRADE of smtp_proto.c; `eightBitCapable()`
 *   counts a server that offers SMTPUTF8 but not 8BITMIME as 8BITMIME-capable (smtp_proto.c
 *   "Fix 20140706").
 * - `unreadableContent()`: the Trouble of a queue file that cannot be read at DATA time —
 *   the connection is then dropped without the final dot, so the receiver never takes a
 *   partial message; the recipients are deferred (4.3.0) and no other server is tried.
 *
 * Not here: the socket writes and their backpressure (transaction.ts, chat.ts), deciding
 * which parameters MAIL FROM carries (transaction.ts), the MIME rules (message/mime-convert.ts),
 * dot-stuffing rules (smtp/dot-stuff.ts).
 */
import { close as closeCb, closeSync, fstat as fstatCb, fstatSync, open as openCb, openSync, read as readCb, readSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import type { Config } from '../../config/types.ts';
import { hasEightBit } from '../../lib/bytes.ts';
import { MimeDowngrade, type MimeConvertOptions } from '../../message/mime-convert.ts';
import { contentCrcOf, decodeEnvelope, envelopePrefixLength, HEADER_LENGTH, QueueFileFormatError, type QueueEnvelope } from '../../queue/queue-file.ts';
import type { EhloCapabilities } from '../../smtp/ehlo.ts';
import { DotStuffer } from '../../smtp/dot-stuff.ts';
import type { Trouble } from './trouble.ts';

/** Octets read from the queue file per piece. */
export const CHUNK = 64 * 1024;

/** The content-related client settings (read once per agent). */
export interface ContentSettings {
  /** smtp_line_length_limit (0: never break). */
  readonly lineLimit: number;
  /** disable_mime_output_conversion. */
  readonly disableMimeOutputConversion: boolean;
  /** header_size_limit, mime_boundary_length_limit, mime_nesting_limit. */
  readonly mime: MimeConvertOptions;
}

export function contentSettings(config: Config): ContentSettings {
  return {
    lineLimit: config.getInt('smtp_line_length_limit'),
    disableMimeOutputConversion: config.getBool('disable_mime_output_conversion'),
    mime: {
      headerSizeLimit: config.getInt('header_size_limit'),
      boundaryLengthLimit: config.getInt('mime_boundary_length_limit'),
      nestingLimit: config.getInt('mime_nesting_limit'),
    },
  };
}

/** Where the content comes from: read again for every DATA. */
export interface MessageSource {
  /** `reuse`: pieces share one buffer; each is valid until the next is asked for. */
  chunks(reuse?: boolean): AsyncIterable<Buffer>;
  headersNeedUtf8(): Promise<boolean>;
}

/**
 * The descriptor calls a queue file is read with. Blocking on a delivery thread: there a
 * queue file just written is page-cache work, cheaper than a thread-pool round trip per
 * call (an open, a stat, a read and a close cost four); through the thread pool on the
 * main thread (sealpost_delivery_workers = 0), where nothing may wait for the disk
 * (queue/store.ts).
 */
interface FileCalls {
  open(path: string): Promise<number>;
  size(fd: number): Promise<number>;
  read(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number>;
  close(fd: number): Promise<void>;
}

const blockingCalls: FileCalls = {
  open: async (path) => openSync(path, 'r'),
  size: async (fd) => fstatSync(fd).size,
  read: async (fd, buf, off, len, pos) => readSync(fd, buf, off, len, pos),
  close: async (fd) => closeSync(fd),
};

const poolCalls: FileCalls = {
  open: (path) => new Promise((resolve, reject) => openCb(path, 'r', (err, fd) => (err ? reject(err) : resolve(fd)))),
  size: (fd) => new Promise((resolve, reject) => fstatCb(fd, (err, st) => (err ? reject(err) : resolve(st.size)))),
  read: (fd, buf, off, len, pos) => new Promise((resolve, reject) => readCb(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n)))),
  close: (fd) => new Promise((resolve, reject) => closeCb(fd, (err) => (err ? reject(err) : resolve()))),
};

async function readFully(io: FileCalls, fd: number, buf: Buffer, position: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const n = await io.read(fd, buf, got, buf.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * A part of a queue file's content (`headerLength` octets or all of it) in pieces of at
 * most CHUNK octets. The first read takes the fixed header, the envelope and the first
 * piece together (one read for a small message); for all of it the content CRC-32 is
 * checked after the last piece.
 */
async function* readPart(io: FileCalls, queueFile: string, part: 'headers' | 'all', reuse: boolean): AsyncGenerator<Buffer> {
  const fd = await io.open(queueFile);
  try {
    const size = await io.size(fd);
    let first = Buffer.allocUnsafe(Math.min(size, CHUNK));
    let got = await readFully(io, fd, first, 0);
    if (got < HEADER_LENGTH) throw new QueueFileFormatError('truncated header');
    const need = envelopePrefixLength(first);
    if (need > got && got === first.length) {
      // An envelope longer than a piece (thousands of recipients): read the rest of it.
      const more = Buffer.allocUnsafe(Math.min(size, need));
      first.copy(more, 0, 0, got);
      first = more;
      got += await readFully(io, fd, first.subarray(got), got);
    }
    const envelope = decodeEnvelope(first.subarray(0, got), size);
    const length = part === 'all' ? envelope.contentLength : envelope.headerLength;
    const end = envelope.contentOffset + length;
    const wantCrc = contentCrcOf(first); // before `reuse` overwrites the header
    let crc = 0;
    let pos = Math.min(got, end);
    if (pos > envelope.contentOffset) {
      const piece = first.subarray(envelope.contentOffset, pos);
      if (part === 'all') crc = crc32(piece, crc);
      yield piece;
    }
    // With `reuse` every later piece goes into the first read's buffer (at least CHUNK
    // octets whenever there is more to read); without it, a fresh buffer per piece: a
    // transform may keep slices of it.
    for (let left = end - pos; left > 0;) {
      const len = Math.min(CHUNK, left);
      const buf = reuse ? first.subarray(0, len) : Buffer.allocUnsafe(len);
      const n = await readFully(io, fd, buf, pos);
      if (n === 0) throw new QueueFileFormatError(`truncated file (content ends ${left} bytes early)`);
      pos += n;
      left -= n;
      const piece = n === buf.length ? buf : buf.subarray(0, n);
      if (part === 'all') crc = crc32(piece, crc);
      yield piece;
    }
    if (part === 'all' && crc >>> 0 !== wantCrc) throw new QueueFileFormatError('content checksum mismatch');
  } finally {
    await io.close(fd);
  }
}

/**
 * The content of a queue file (see the header). `blocking`: read with blocking calls
 * (FileCalls; the default on a delivery thread).
 */
export function queueContent(queueFile: string, blocking = !isMainThread): MessageSource {
  const io = blocking ? blockingCalls : poolCalls;
  return {
    chunks: (reuse = false) => readPart(io, queueFile, 'all', reuse),
    async headersNeedUtf8() {
      for await (const piece of readPart(io, queueFile, 'headers', true)) if (hasEightBit(piece)) return true;
      return false;
    },
  };
}

/** smtp_proto.c "Fix 20140706": a server that offers SMTPUTF8 without 8BITMIME is taken as 8BITMIME-capable. */
export function eightBitCapable(caps: EhloCapabilities): boolean {
  return caps.eightBitMime || caps.smtpUtf8;
}

/**
 * smtp_proto.c SMTP_MIME_DOWNGRADE: convert unless disable_mime_output_conversion, when the
 * server is not 8BITMIME-capable. (Postfix also skips mail known to be 7bit, BODY=7BIT;
 * sealpost's envelope does not keep that, and the conversion leaves 7-bit MIME unchanged.)
 */
export function mimeDowngradeWanted(settings: ContentSettings, caps: EhloCapabilities): boolean {
  return !settings.disableMimeOutputConversion && !eightBitCapable(caps);
}

export interface DataPlan {
  readonly settings: ContentSettings;
  readonly downgrade: boolean;
  /** Called once, the first time a line is broken at smtp_line_length_limit. */
  readonly onLineBroken?: () => void;
}

/** The bytes to send after 354, piece by piece (see the header). */
export async function* dataStream(source: MessageSource, plan: DataPlan): AsyncGenerator<Buffer> {
  const mime = plan.downgrade ? new MimeDowngrade(plan.settings.mime) : undefined;
  // A queue file may hold bare CR or LF (an old file, cleanup_replace_stray_cr_lf = no):
  // never send them on (SMTP smuggling); each becomes a line end.
  const stuffer = new DotStuffer({ bareCr: 'crlf', lineLimit: plan.settings.lineLimit });
  let told = false;
  const stuff = (b: Buffer): Buffer => {
    const out = stuffer.push(b);
    if (!told && stuffer.linesBroken > 0) {
      told = true;
      plan.onLineBroken?.();
    }
    return out;
  };
  // A piece of at most HOLD octets is held, copied, until the next one comes: the last one
  // (all of a small message) then goes out together with the end-of-data dot, one write.
  let held: Buffer | undefined;
  let heldLength = 0;
  function* hold(out: Buffer): Generator<Buffer> {
    if (held) yield held.subarray(0, heldLength);
    held = undefined;
    if (out.length > HOLD) {
      yield out;
      return;
    }
    held = Buffer.allocUnsafe(out.length + HOLD_SPARE);
    heldLength = out.copy(held);
  }
  try {
    // MimeDowngrade keeps slices of its input across pieces: then every piece is a fresh buffer.
    for await (const piece of source.chunks(!mime)) {
      const converted = mime ? mime.push(piece) : piece;
      if (converted.length > 0) yield* hold(stuff(converted));
    }
    if (mime) {
      const tail = mime.end();
      if (tail.length > 0) yield* hold(stuff(tail));
    }
  } catch (err) {
    // What was read goes out as it would have without holding; the end of data never does.
    if (held) yield held.subarray(0, heldLength);
    throw err;
  }
  const end = stuffer.end();
  if (!held) yield end;
  else if (end.length <= held.length - heldLength) yield held.subarray(0, heldLength + end.copy(held, heldLength));
  else yield Buffer.concat([held.subarray(0, heldLength), end]);
}

/** dataStream() holds pieces up to this size to send the last one with the end of data. */
const HOLD = 16 * 1024;
/** Room for the end of data after a held piece (a line end, `.` CRLF; more is concatenated). */
const HOLD_SPARE = 16;

/**
 * The queue file could not be read while sending DATA (smtp_proto.c: "unreadable mail
 * queue entry"). Postfix bounces 5.3.0 and marks the file corrupt; sealpost defers with
 * 4.3.0 (the queue manager keeps the file) and tries no other server.
 */
export function unreadableContent(relay: string, err: unknown): Trouble {
  const detail = err instanceof Error ? err.message : String(err);
  return { scope: 'message', dsn: '4.3.0', reason: `unreadable mail queue entry: ${detail}`, relay, throttle: false, final: true };
}
