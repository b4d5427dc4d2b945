/**
 * line-reader.ts — split an SMTP byte stream into command lines (server) or other CRLF lines
 * (client), with a line length limit and a view of what is still buffered.
 *
 * Contract: `push()` buffers bytes; `next()` returns one complete line at a time (without its
 * line end) or undefined. RFC 5321 §2.3.8: lines end in CRLF; a bare LF also ends a line
 * (as in Postfix's smtp_get()) and the line is flagged `bareLf` so the listener can apply
 * smtpd_forbid_bare_newline (bare-newline.ts: bareNewlineAction, bareLfReply); a CR not
 * followed by LF stays in the line and is flagged `bareCr`.
 * A line longer than `maxLineLength` (line_length_limit, default 2048) is cut to that length,
 * the rest up to its line end is skipped (Postfix smtpd: smtp_get() with SMTP_GET_FLAG_SKIP),
 * and it is flagged `tooLong`; memory stays bounded by the limit, whatever the peer sends.
 * `hasBufferedData()`, `bufferedLineCount()` and `discard()` let the listener see and drop
 * what the client sent ahead: RFC 3207 §6 (plaintext pipelined behind STARTTLS must be
 * discarded) and smtpd_forbid_unauth_pipelining. `takeBuffered()` hands the raw bytes over
 * when the protocol switches to DATA.
 *
 * Not here: decoding (lines stay Buffers), command parsing, the replies.
 */

const CR = 0x0d;
const LF = 0x0a;

export interface SmtpLine {
  /** The line without its line end (cut to maxLineLength when tooLong). */
  readonly line: Buffer;
  /** Ended in a bare LF instead of CRLF. */
  readonly bareLf: boolean;
  /** Contains a CR that is not part of the line end. */
  readonly bareCr: boolean;
  /** Was longer than maxLineLength; the excess was skipped. */
  readonly tooLong: boolean;
}

export interface LineReaderOptions {
  /** postconf(5) line_length_limit (default 2048), in octets without the line end. */
  readonly maxLineLength?: number;
}

export const DEFAULT_LINE_LENGTH_LIMIT = 2048;

export class LineReader {
  private readonly max: number;
  private buf: Buffer = Buffer.alloc(0);
  /** Inside an over-long line: its kept head, and what we know of the skipped rest. */
  private skipping: { line: Buffer; bareCr: boolean; pendingCr: boolean } | undefined;

  constructor(opts: LineReaderOptions = {}) {
    this.max = opts.maxLineLength ?? DEFAULT_LINE_LENGTH_LIMIT;
    if (!(this.max > 0)) throw new RangeError('maxLineLength must be positive');
  }

  /** Add received bytes. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.bound();
  }

  /** Keep memory bounded: an unfinished line longer than the limit keeps only its head. */
  private bound(): void {
    if (this.buf.indexOf(LF) !== -1) return;
    if (!this.skipping) {
      // +1: the CR of a CRLF whose LF has not arrived yet is not part of the line.
      if (this.buf.length <= this.max + 1) return;
      this.skipping = { line: Buffer.from(this.buf.subarray(0, this.max)), bareCr: false, pendingCr: false };
    }
    this.scanSkipped(this.buf);
    this.buf = Buffer.alloc(0);
  }

  /** Note bare CRs in skipped bytes (which contain no LF). */
  private scanSkipped(data: Buffer): void {
    const s = this.skipping;
    if (!s || data.length === 0) return;
    // A CR followed by anything but LF is bare (data holds no LF).
    if (s.pendingCr || data.subarray(0, data.length - 1).includes(CR)) s.bareCr = true;
    s.pendingCr = data[data.length - 1] === CR;
  }

  /** The next complete line, or undefined when none is buffered. */
  next(): SmtpLine | undefined {
    const lf = this.buf.indexOf(LF);
    if (lf === -1) return undefined;
    const raw = this.buf.subarray(0, lf);
    this.buf = this.buf.subarray(lf + 1);
    let line: SmtpLine;
    if (this.skipping) {
      const s = this.skipping;
      const crlf = raw.length > 0 ? raw[raw.length - 1] === CR : s.pendingCr;
      const body = crlf && raw.length > 0 ? raw.subarray(0, raw.length - 1) : raw;
      if (body.length > 0 && s.pendingCr) s.bareCr = true;
      if (body.includes(CR)) s.bareCr = true;
      this.skipping = undefined;
      line = Object.freeze({ line: s.line, bareLf: !crlf, bareCr: s.bareCr, tooLong: true });
    } else {
      const crlf = raw.length > 0 && raw[raw.length - 1] === CR;
      const body = crlf ? raw.subarray(0, raw.length - 1) : raw;
      const tooLong = body.length > this.max;
      const kept = Buffer.from(tooLong ? body.subarray(0, this.max) : body);
      line = Object.freeze({ line: kept, bareLf: !crlf, bareCr: body.includes(CR), tooLong });
    }
    this.bound();
    return line;
  }

  /** Any bytes (complete lines or a partial line) received but not yet returned by next(). */
  hasBufferedData(): boolean {
    return this.buf.length > 0 || this.skipping !== undefined;
  }

  /** Complete lines waiting in the buffer: the pipelined commands. */
  bufferedLineCount(): number {
    let count = 0;
    for (let i = this.buf.indexOf(LF); i !== -1; i = this.buf.indexOf(LF, i + 1)) count++;
    return count;
  }

  /** Octets waiting in the buffer. */
  bufferedLength(): number {
    return this.buf.length + (this.skipping ? this.skipping.line.length : 0);
  }

  /** Drop everything buffered (RFC 3207 §6: pre-TLS plaintext); returns the octets dropped. */
  discard(): number {
    const n = this.bufferedLength();
    this.buf = Buffer.alloc(0);
    this.skipping = undefined;
    return n;
  }

  /**
   * Hand over the raw buffered bytes (for the DATA reader) and empty the buffer. An
   * over-long line being skipped is not handed over: its head was never a command.
   */
  takeBuffered(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    this.skipping = undefined;
    return b;
  }
}
