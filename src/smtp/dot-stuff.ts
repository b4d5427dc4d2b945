/**
 * dot-stuff.ts — DATA transparency (RFC 5321 §4.5.2) in both directions, streaming over
 * Buffers with state kept across chunk boundaries.
 *
 * Sending (`DotStuffer`, the client's output transform, Postfix smtp_text_out()): every line
 * that starts with `.` gets a second `.`; a bare LF becomes CRLF; `end()` adds CRLF when the
 * content did not end with a line end and then `.` CRLF. A bare CR (not followed by LF) is
 * kept, replaced by a space, or turned into CRLF as the caller chooses — the SMTP client
 * asks for CRLF, so that whatever a queue file holds, no bare CR or LF ever goes out inside
 * DATA (a lone line-end byte becomes a line end, and a dot after it is stuffed: none of the
 * smuggling shapes survives). With `lineLimit` (smtp_line_length_limit) a line longer than
 * the limit is broken as smtp_text_out() breaks it: `limit` octets, CRLF, then a space and
 * at most `limit - 1` octets per continuation; the stuffed dot does not count and a
 * continuation is never stuffed. `linesBroken` counts the lines broken (Postfix logs the
 * first: `breaking line > N bytes with <CR><LF>SPACE`). Output is built from runs of the
 * input: a chunk that needs no change (CRLF lines, no leading dot, no long line — nearly
 * all mail) is handed back as it is, without any allocation; otherwise one allocation of
 * the output's exact size.
 *
 * Receiving (`DataReader`, the listener): removes the stuffed dot and finds the end of DATA,
 * safe against SMTP smuggling. Only `<CR><LF>.<CR><LF>` ends DATA (the DATA command's own
 * CRLF counts as the first CRLF): `<LF>.<LF>`, `<LF>.<CR><LF>`, `<CR><LF>.<LF>`,
 * `<CR>.<CR>` and every other variant are content, in every mode, wherever the chunks split.
 * A line that is only a dot but does not end DATA is content, its dot removed (as Postfix).
 * Bare LF is converted to CRLF in the content (Postfix "process as if the client sent
 * <CR><LF>"); bare CR is kept. What smtpd_forbid_bare_newline (postconf(5)) says to do about
 * bare LF is reported by `verdict()`: `no`, `normalize` and its alias `yes` accept; `reject`
 * rejects with `550 5.5.2 <myhostname> Error: bare <LF> received`
 * (smtpd_forbid_bare_newline_reject_code, default 550).
 * Deliberate difference: Postfix with `no` also ends DATA at `<LF>.<LF>`; sealpost never does.
 *
 * Not here: message size limits, header processing, BDAT, smtpd_forbid_bare_newline_exclusions
 * (the listener picks the mode per client), MIME conversion (message/mime-convert.ts runs
 * before the stuffer).
 */
import { DEFAULT_BARE_NEWLINE_MODE, DEFAULT_BARE_NEWLINE_REJECT_CODE, bareLfReply } from './bare-newline.ts';
import type { BareNewlineMode } from './bare-newline.ts';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const CRLF_BYTES = Buffer.from('\r\n');
const CRLF_SP_BYTES = Buffer.from('\r\n ');
const DOT_BYTES = Buffer.from('.');
const CR_BYTES = Buffer.from('\r');
const SP_BYTES = Buffer.from(' ');
const END_BYTES = Buffer.from('.\r\n');

export type BareCrPolicy = 'keep' | 'space' | 'crlf';

export interface DotStufferOptions {
  /** What to send for a CR that is not followed by LF (default keep). */
  readonly bareCr?: BareCrPolicy;
  /** smtp_line_length_limit: break lines longer than this many octets (0 or absent: never). */
  readonly lineLimit?: number;
}

/**
 * The output of one pushed chunk: runs of the chunk that go out unchanged, and the bytes
 * inserted between them. A chunk that needs no change is handed back as it is.
 */
class Output {
  private readonly parts: Buffer[] = [];
  private runStart = 0;
  private changed = false;

  constructor(private readonly chunk: Buffer) {}

  /** End the current run at `to` (exclusive); the next run starts at `from` (bytes between are dropped). */
  cut(to: number, from = to): void {
    if (to > this.runStart) this.parts.push(this.chunk.subarray(this.runStart, to));
    if (from !== to) this.changed = true;
    this.runStart = from;
  }

  insert(bytes: Buffer): void {
    this.parts.push(bytes);
    this.changed = true;
  }

  result(): Buffer {
    if (!this.changed && this.runStart === 0) return this.chunk;
    this.cut(this.chunk.length);
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
  }
}

/** Client side: dot-stuff message content for DATA (see the header). */
export class DotStuffer {
  private readonly bareCr: BareCrPolicy;
  private readonly limit: number;
  /** Octets on the current output line (0: at the start of a content line). */
  private col = 0;
  /** The previous chunk ended in a CR (not sent yet: it may be half of a CRLF). */
  private pendingCr = false;
  private ended = false;
  /** Content lines broken at the line length limit so far. */
  linesBroken = 0;

  constructor(opts: DotStufferOptions = {}) {
    this.bareCr = opts.bareCr ?? 'keep';
    this.limit = Math.max(0, opts.lineLimit ?? 0);
  }

  /** Stuff one chunk of content. */
  push(chunk: Buffer): Buffer {
    if (this.ended) throw new Error('DotStuffer: push() after end()');
    const out = new Output(chunk);
    const n = chunk.length;
    let i = 0;
    if (this.pendingCr && n > 0) {
      this.pendingCr = false;
      if (chunk[0] === LF) {
        // The held CR and this LF are one line end.
        out.insert(CR_BYTES);
        this.col = 0;
        i = 1;
      } else this.loneCr(out);
    }
    let cr = chunk.indexOf(CR, i);
    let lf = chunk.indexOf(LF, i);
    while (i < n) {
      if (cr >= 0 && cr < i) cr = chunk.indexOf(CR, i);
      if (lf >= 0 && lf < i) lf = chunk.indexOf(LF, i);
      const stop = Math.min(cr < 0 ? n : cr, lf < 0 ? n : lf);
      if (stop > i) this.text(out, chunk, i, stop);
      if (stop === n) break;
      if (chunk[stop] === LF) {
        // RFC 5321 §2.3.8: lines end in CRLF; a bare LF is sent as CRLF.
        out.cut(stop, stop + 1);
        out.insert(CRLF_BYTES);
        this.col = 0;
        i = stop + 1;
      } else if (stop + 1 === n) {
        out.cut(stop, n);
        this.pendingCr = true;
        i = n;
      } else if (chunk[stop + 1] === LF) {
        this.col = 0;
        i = stop + 2;
      } else {
        out.cut(stop, stop + 1);
        this.loneCr(out);
        i = stop + 1;
      }
    }
    return out.result();
  }

  /** Line text chunk[a, b) (no CR, no LF): stuffing at the start of a line, breaking at the limit. */
  private text(out: Output, chunk: Buffer, a: number, b: number): void {
    // RFC 5321 §4.5.2: a line that starts with "." gets one more ".".
    if (this.col === 0 && chunk[a] === DOT) {
      out.cut(a);
      out.insert(DOT_BYTES);
    }
    let pos = a;
    if (this.limit > 0) {
      // smtp_proto.c smtp_text_out(): emit what fits, end the line, continue after a space.
      while (b - pos > this.limit - this.col) {
        pos += this.limit - this.col;
        out.cut(pos);
        out.insert(CRLF_SP_BYTES);
        this.col = 1;
        this.linesBroken++;
      }
    }
    this.col += b - pos;
  }

  /** One octet of line text that is not in the chunk (a held CR kept, or a CR replaced by a space). */
  private insertText(out: Output, byte: Buffer): void {
    if (this.limit > 0 && this.col >= this.limit) {
      out.insert(CRLF_SP_BYTES);
      this.col = 1;
      this.linesBroken++;
    }
    out.insert(byte);
    this.col++;
  }

  /** A CR not followed by LF (already cut from the run): the caller's policy. */
  private loneCr(out: Output): void {
    if (this.bareCr === 'crlf') {
      out.insert(CRLF_BYTES);
      this.col = 0;
    } else this.insertText(out, this.bareCr === 'keep' ? CR_BYTES : SP_BYTES);
  }

  /** Finish: flush a pending CR, close the last line, and add the end-of-data `.` CRLF. */
  end(): Buffer {
    if (this.ended) throw new Error('DotStuffer: end() called twice');
    this.ended = true;
    const out = new Output(Buffer.alloc(0));
    if (this.pendingCr) {
      this.pendingCr = false;
      this.loneCr(out);
    }
    if (this.col > 0) {
      out.insert(CRLF_BYTES);
      this.col = 0;
    }
    out.insert(END_BYTES);
    return out.result();
  }
}

/** Dot-stuff a whole message at once (content → bytes to send after the 354 reply). */
export function dotStuff(content: Buffer, opts: DotStufferOptions = {}): Buffer {
  const s = new DotStuffer(opts);
  return Buffer.concat([s.push(content), s.end()]);
}

// ---------------------------------------------------------------- receiving side

/** What the reader saw that a strict RFC 5321 peer would not send. */
export interface DataFindings {
  /** LF not preceded by CR (each converted to CRLF in the content). */
  readonly bareLf: number;
  /** CR not followed by LF (kept in the content). */
  readonly bareCr: number;
  /** Lines that were only a dot but did not end DATA: the smuggling shapes. */
  readonly strayDots: number;
  /** Octet offset (in the received stream) of the first bare LF, if any. */
  readonly firstBareLfAt: number | undefined;
}

export interface DataVerdict {
  readonly action: 'accept' | 'reject';
  /** With reject: the reply line Postfix sends (no CRLF). */
  readonly reply?: string;
  /** With reject: Postfix's log reason. */
  readonly reason?: string;
}

export interface DataReaderOptions {
  /** smtpd_forbid_bare_newline (default normalize, Postfix ≥ 3.9). */
  readonly mode?: BareNewlineMode;
  /**
   * The DATA command line itself ended in a bare LF: then a "." right at the start is not the
   * standard end of data either (it follows no CRLF).
   */
  readonly commandEndedWithBareLf?: boolean;
  /** For the reject reply text (default localhost). */
  readonly myhostname?: string;
  /** smtpd_forbid_bare_newline_reject_code (default 550). */
  readonly rejectCode?: number;
}

export interface DataChunkResult {
  /** Un-stuffed content, lines ending in CRLF. */
  readonly data: Buffer;
  /** True once `<CR><LF>.<CR><LF>` was seen. */
  readonly done: boolean;
  /** Bytes after the end of data (pipelined commands), empty until done. */
  readonly rest: Buffer;
}

const EMPTY = Buffer.alloc(0);

/**
 * What the reader writes for one chunk: while every byte written equals the chunk's byte at
 * the same place, nothing is copied and the result is a slice of the chunk; at the first
 * difference the bytes so far are copied into a buffer of the largest size the rest can
 * need (only a line end grows the output: a bare LF becomes CRLF, a CR held from the
 * previous chunk comes out now).
 */
class UnstuffedOutput {
  private out: Buffer | undefined;
  private n = 0;

  constructor(private readonly chunk: Buffer) {}

  put(b: number): void {
    if (this.out === undefined) {
      if (this.chunk[this.n] === b) {
        this.n++;
        return;
      }
      this.out = Buffer.allocUnsafe(this.chunk.length + countByte(this.chunk, LF) + 2);
      this.chunk.copy(this.out, 0, 0, this.n);
    }
    this.out[this.n++] = b;
  }

  /** put() of chunk[start..end) (the bytes of a line between its start and its end). */
  putRun(start: number, end: number): void {
    if (this.out === undefined) {
      if (this.n === start) {
        this.n = end;
        return;
      }
      this.out = Buffer.allocUnsafe(this.chunk.length + countByte(this.chunk, LF) + 2);
      this.chunk.copy(this.out, 0, 0, this.n);
    }
    this.n += this.chunk.copy(this.out, this.n, start, end);
  }

  data(): Buffer {
    return (this.out ?? this.chunk).subarray(0, this.n);
  }
}

function countByte(chunk: Buffer, byte: number): number {
  let n = 0;
  for (let i = chunk.indexOf(byte); i >= 0; i = chunk.indexOf(byte, i + 1)) n++;
  return n;
}

// Parser states: at line start; after a leading "."; after a leading ".\r"; inside a line;
// inside a line after a CR; at line start after a CR.
const S = { Start: 0, Dot: 1, DotCr: 2, Mid: 3, MidCr: 4, StartCr: 5 } as const;
type S = (typeof S)[keyof typeof S];

/** Server side: un-stuff DATA content and find the end of data. */
export class DataReader {
  private readonly mode: BareNewlineMode;
  private readonly myhostname: string;
  private readonly rejectCode: number;
  private state: S = S.Start;
  /** The previous line ended in CRLF (the DATA command line counts). */
  private prevCrLf: boolean;
  private finished = false;
  private offset = 0;
  private bareLf = 0;
  private bareCr = 0;
  private strayDots = 0;
  private firstBareLfAt: number | undefined;

  constructor(opts: DataReaderOptions = {}) {
    this.mode = opts.mode ?? DEFAULT_BARE_NEWLINE_MODE;
    this.myhostname = opts.myhostname ?? 'localhost';
    this.rejectCode = opts.rejectCode ?? DEFAULT_BARE_NEWLINE_REJECT_CODE;
    this.prevCrLf = !(opts.commandEndedWithBareLf ?? false);
  }

  get done(): boolean {
    return this.finished;
  }

  push(chunk: Buffer): DataChunkResult {
    if (this.finished) return { data: EMPTY, done: true, rest: chunk };
    // The output is the chunk itself as long as it is (no stuffed dot, no bare LF, nothing
    // held from the previous chunk): most DATA streams never allocate (UnstuffedOutput).
    const out = new UnstuffedOutput(chunk);
    let nextCr = -1;
    let nextLf = -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] as number;
      const at = this.offset + i;
      switch (this.state) {
        case S.Start:
          if (b === DOT) this.state = S.Dot;
          else if (b === CR) this.state = S.StartCr;
          else if (b === LF) this.lineEnd(out, false, at);
          else {
            out.put(b);
            this.state = S.Mid;
          }
          break;
        case S.StartCr:
        case S.MidCr:
          if (b === LF) this.lineEnd(out, true, at);
          else {
            this.keepBareCr(out);
            if (b === CR) this.state = S.MidCr;
            else {
              out.put(b);
              this.state = S.Mid;
            }
          }
          break;
        case S.Dot:
          // RFC 5321 §4.5.2: the first "." of a line is removed.
          if (b === CR) this.state = S.DotCr;
          else if (b === LF) {
            this.strayDots++; // "<LF>.<LF>" / "<CR><LF>.<LF>": not end of data
            this.lineEnd(out, false, at);
          } else {
            out.put(b);
            this.state = S.Mid;
          }
          break;
        case S.DotCr:
          if (b === LF) {
            // RFC 5321 §4.1.1.4: end of data is exactly <CRLF>.<CRLF>.
            if (this.prevCrLf) {
              this.finished = true;
              this.offset += i + 1;
              return { data: out.data(), done: true, rest: Buffer.from(chunk.subarray(i + 1)) };
            }
            this.strayDots++; // "<LF>.<CR><LF>": the smuggling shape
            this.lineEnd(out, true, at);
          } else {
            this.keepBareCr(out);
            if (b === CR) this.state = S.MidCr;
            else {
              out.put(b);
              this.state = S.Mid;
            }
          }
          break;
        case S.Mid:
          if (b === CR) this.state = S.MidCr;
          else if (b === LF) this.lineEnd(out, false, at);
          else {
            // The rest of the line up to its CR or LF, at once (memchr instead of a byte loop).
            // The next CR and LF are searched only once passed: linear even for a chunk of
            // bare LFs (no CR at all) or bare CRs.
            if (nextCr <= i) {
              nextCr = chunk.indexOf(CR, i);
              if (nextCr < 0) nextCr = chunk.length;
            }
            if (nextLf <= i) {
              nextLf = chunk.indexOf(LF, i);
              if (nextLf < 0) nextLf = chunk.length;
            }
            const end = nextCr < nextLf ? nextCr : nextLf;
            out.putRun(i, end);
            i = end - 1;
          }
          break;
      }
    }
    this.offset += chunk.length;
    return { data: out.data(), done: false, rest: EMPTY };
  }

  private lineEnd(out: UnstuffedOutput, crlf: boolean, at: number): void {
    if (!crlf) {
      this.bareLf++;
      this.firstBareLfAt ??= at;
    }
    // Bare LF is stored as CRLF ("process as if the client sent <CR><LF>").
    out.put(CR);
    out.put(LF);
    this.prevCrLf = crlf;
    this.state = S.Start;
  }

  private keepBareCr(out: UnstuffedOutput): void {
    this.bareCr++;
    out.put(CR);
  }

  findings(): DataFindings {
    return { bareLf: this.bareLf, bareCr: this.bareCr, strayDots: this.strayDots, firstBareLfAt: this.firstBareLfAt };
  }

  /** What smtpd_forbid_bare_newline says about this message (ask after done). */
  verdict(): DataVerdict {
    if (this.mode === 'reject' && this.bareLf > 0) {
      return { action: 'reject', reply: bareLfReply(this.myhostname, this.rejectCode), reason: 'bare <LF> received' };
    }
    return { action: 'accept' };
  }
}
