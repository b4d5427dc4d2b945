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
 *   memory once it has had it). The content CRC-32 of the queue file is
 *   checked at the end: a mismatch (or a short file) throws before the end-of-data dot
 *   could be sent. `headersNeedUtf8()` scans the header section piece by piece (for the
 *   SMTPUTF8 pre-check) without keeping it.
 * - `dataStream(source, plan)` is the DATA transform: content → MimeDowngrade when
 *   `plan.downgrade` (8-bit MIME to quoted-printable) → DotStuffer (bare CR and LF become
 *   CRLF, lines broken at smtp_line_length_limit, leading dots doubled, `.` CRLF at the
 *   end). Nothing is buffered beyond the transforms' own state. Without a downgrade the
 *   source's buffer is reused (the DotStuffer keeps no slice of its input); what it yields
 *   then lives only until the consumer asks for the next piece.
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
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
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

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** The fixed header and the envelope of an open queue file (checked against the file size). */
async function readHead(fh: FileHandle): Promise<{ head: Buffer; envelope: QueueEnvelope }> {
  const size = (await fh.stat()).size;
  const fixed = Buffer.alloc(HEADER_LENGTH);
  if ((await readFully(fh, fixed, 0)) < HEADER_LENGTH) throw new QueueFileFormatError('truncated header');
  const prefix = Buffer.alloc(envelopePrefixLength(fixed));
  const got = await readFully(fh, prefix, 0);
  return { head: fixed, envelope: decodeEnvelope(prefix.subarray(0, got), size) };
}

/** Read `length` octets from `offset`, piece by piece, only as fast as they are taken. */
async function* pieces(fh: FileHandle, offset: number, length: number, reuse = false): AsyncGenerator<Buffer> {
  const shared = reuse ? Buffer.allocUnsafe(Math.min(CHUNK, length)) : undefined;
  for (let pos = offset, left = length; left > 0;) {
    // Without `reuse`, a fresh buffer per piece: a transform may keep slices of it.
    const buf = shared ? shared.subarray(0, Math.min(CHUNK, left)) : Buffer.allocUnsafe(Math.min(CHUNK, left));
    const got = await readFully(fh, buf, pos);
    if (got === 0) throw new QueueFileFormatError(`truncated file (content ends ${left} bytes early)`);
    pos += got;
    left -= got;
    yield got === buf.length ? buf : buf.subarray(0, got);
  }
}

/** The content of a queue file (see the header). */
export function queueContent(queueFile: string): MessageSource {
  return {
    async *chunks(reuse = false) {
      const fh = await open(queueFile, 'r');
      try {
        const { head, envelope } = await readHead(fh);
        let crc = 0;
        for await (const piece of pieces(fh, envelope.contentOffset, envelope.contentLength, reuse)) {
          crc = crc32(piece, crc);
          yield piece;
        }
        if (crc >>> 0 !== contentCrcOf(head)) throw new QueueFileFormatError('content checksum mismatch');
      } finally {
        await fh.close();
      }
    },
    async headersNeedUtf8() {
      const fh = await open(queueFile, 'r');
      try {
        const { envelope } = await readHead(fh);
        for await (const piece of pieces(fh, envelope.contentOffset, envelope.headerLength)) if (hasEightBit(piece)) return true;
        return false;
      } finally {
        await fh.close();
      }
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
  // MimeDowngrade keeps slices of its input across pieces: then every piece is a fresh buffer.
  for await (const piece of source.chunks(!mime)) {
    const converted = mime ? mime.push(piece) : piece;
    if (converted.length > 0) yield stuff(converted);
  }
  if (mime) {
    const tail = mime.end();
    if (tail.length > 0) yield stuff(tail);
  }
  yield stuffer.end();
}

/**
 * The queue file could not be read while sending DATA (smtp_proto.c: "unreadable mail
 * queue entry"). Postfix bounces 5.3.0 and marks the file corrupt; sealpost defers with
 * 4.3.0 (the queue manager keeps the file) and tries no other server.
 */
export function unreadableContent(relay: string, err: unknown): Trouble {
  const detail = err instanceof Error ? err.message : String(err);
  return { scope: 'message', dsn: '4.3.0', reason: `unreadable mail queue entry: ${detail}`, relay, throttle: false, final: true };
}
