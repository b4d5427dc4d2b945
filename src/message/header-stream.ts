/**
 * header-stream.ts — the primary header of a message read in pieces: every byte is passed
 * on in order, each complete header field is reported (name, unfolded value, 8-bit or not),
 * and the end of the header is announced just before the byte that ends it, so a caller can
 * insert fields there (cleanup's missing From:/Date:/Message-Id:) without holding the
 * message in memory.
 *
 * Contract:
 * - A header line is what Postfix's is_header_buf() accepts: a name of printable ASCII
 *   (no control characters, no `:`), optional blanks, then `:` (RFC 5322 §4.5 obsolete
 *   `name :` included). A line that starts with SP or HTAB continues the current field.
 *   The header ends at the first empty line (`separator: true`) or the first line that is
 *   neither (`separator: false`, RFC 5322 §2.2; cleanup treats it as the first body line).
 * - Memory is bounded: a line is held only until it is classified (at most `lineCap`
 *   bytes; a longer line is classified by its first `lineCap` bytes and the rest streams
 *   through), a field's value is kept up to `valueCap` characters for inspection. The
 *   bytes passed on are never changed or truncated (Postfix truncates a field at
 *   header_size_limit; sealpost keeps it: docs/differences-from-postfix.md).
 * - `end()` at the end of input reports a header that was never ended (`atEof`), and
 *   whether the last byte passed on was inside an unterminated line (`openLine`).
 *
 * Not here: MIME part headers (mime-convert.ts), what the fields mean (cleanup.ts).
 */

const LF = 0x0a;
const CR = 0x0d;

export interface StreamField {
  readonly name: string;
  /** Lower-case name. */
  readonly key: string;
  /** Unfolded value without leading blanks, at most valueCap characters (latin1 view of the bytes). */
  readonly value: string;
  /** The field has a byte ≥ 0x80 anywhere. */
  readonly eightBit: boolean;
}

export interface HeaderEnd {
  /** An empty line ends the header (it is the next byte passed on). */
  readonly separator: boolean;
  /** The input ended inside the header. */
  readonly atEof: boolean;
  /** The last byte passed on is not a line end (the input ended inside a header line). */
  readonly openLine: boolean;
}

export interface HeaderStreamHandler {
  data(bytes: Buffer): void;
  field(f: StreamField): void;
  end(e: HeaderEnd): void;
}

export interface HeaderStreamOptions {
  readonly lineCap?: number;
  readonly valueCap?: number;
}

/** is_header_buf(): the length of the field name, or 0 when the line is not a header line. */
export function headerNameLength(line: Uint8Array): number {
  let len = 0;
  let blanks = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === 0x3a) return len > 0 ? len : 0;
    if (c === 0x20 || c === 0x09) {
      if (len === 0) return 0;
      blanks = true;
      continue;
    }
    if (c === 0 || c >= 0x80 || c < 0x20 || c === 0x7f || blanks) return 0;
    len++;
  }
  return 0;
}

function has8bit(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) return true;
  return false;
}

/** The line without its CRLF or LF. */
function lineText(line: Buffer): Buffer {
  let end = line.length;
  if (end > 0 && line[end - 1] === LF) end--;
  if (end > 0 && line[end - 1] === CR) end--;
  return line.subarray(0, end);
}

interface OpenField {
  name: string;
  parts: string[];
  size: number;
  eightBit: boolean;
}

export class HeaderStream {
  private inHeader = true;
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** The current line is longer than lineCap and was classified as part of the current field. */
  private overflowing = false;
  private current: OpenField | undefined;
  private readonly lineCap: number;
  private readonly valueCap: number;

  constructor(
    private readonly handler: HeaderStreamHandler,
    opts: HeaderStreamOptions = {},
  ) {
    this.lineCap = opts.lineCap ?? 65536;
    this.valueCap = opts.valueCap ?? 102400;
  }

  get inBody(): boolean {
    return !this.inHeader;
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.inHeader) {
      const lf = chunk.indexOf(LF, at);
      const stop = lf < 0 ? chunk.length : lf + 1;
      const piece = chunk.subarray(at, stop);
      at = stop;
      if (this.overflowing) {
        this.addToField(piece);
        this.handler.data(piece);
        if (lf >= 0) this.overflowing = false;
        continue;
      }
      this.pending.push(piece);
      this.pendingLen += piece.length;
      if (lf >= 0) this.line(Buffer.concat(this.pending, this.pendingLen), false);
      else if (this.pendingLen >= this.lineCap) this.longLine();
      else continue;
      this.pending = [];
      this.pendingLen = 0;
    }
    if (at < chunk.length) this.handler.data(at === 0 ? chunk : chunk.subarray(at));
  }

  /** End of input. */
  end(): void {
    if (!this.inHeader) return;
    if (this.pendingLen > 0) {
      this.line(Buffer.concat(this.pending, this.pendingLen), true);
      this.pending = [];
      this.pendingLen = 0;
      if (!this.inHeader) return;
    }
    this.finishField();
    this.inHeader = false;
    this.handler.end({ separator: false, atEof: true, openLine: this.overflowing || this.lastOpen });
  }

  /** The last line passed on had no line end (only possible at the end of input). */
  private lastOpen = false;

  private line(line: Buffer, eof: boolean): void {
    const text = lineText(line);
    const open = eof && line[line.length - 1] !== LF;
    if (text.length === 0 && !open) {
      this.finishField();
      this.inHeader = false;
      this.handler.end({ separator: true, atEof: false, openLine: false });
      this.handler.data(line);
      return;
    }
    if (this.current && (text[0] === 0x20 || text[0] === 0x09)) {
      this.addToField(line);
      this.lastOpen = open;
      this.handler.data(line);
      return;
    }
    const nameLen = headerNameLength(text);
    if (nameLen > 0) {
      this.finishField();
      this.startField(text, nameLen, line);
      this.lastOpen = open;
      this.handler.data(line);
      return;
    }
    // Neither a field nor a continuation: the first body line.
    this.finishField();
    this.inHeader = false;
    this.handler.end({ separator: false, atEof: false, openLine: false });
    this.handler.data(line);
  }

  /** A line of lineCap bytes without a line end: classify it by what we have. */
  private longLine(): void {
    const head = Buffer.concat(this.pending, this.pendingLen);
    const continues = this.current !== undefined && (head[0] === 0x20 || head[0] === 0x09);
    const nameLen = continues ? 0 : headerNameLength(head);
    if (continues) this.addToField(head);
    else if (nameLen > 0) {
      this.finishField();
      this.startField(head, nameLen, head);
    } else {
      this.finishField();
      this.inHeader = false;
      this.handler.end({ separator: false, atEof: false, openLine: false });
      this.handler.data(head);
      return;
    }
    this.overflowing = true;
    this.handler.data(head);
  }

  private startField(text: Buffer, nameLen: number, line: Buffer): void {
    const name = text.subarray(0, nameLen).toString('latin1');
    const colon = text.indexOf(0x3a, nameLen);
    this.current = { name, parts: [], size: 0, eightBit: false };
    this.addToField(line.subarray(colon + 1));
  }

  private addToField(bytes: Buffer): void {
    const f = this.current;
    if (!f) return;
    if (has8bit(bytes)) f.eightBit = true;
    if (f.size >= this.valueCap) return;
    const piece = lineText(bytes).toString('latin1').slice(0, this.valueCap - f.size);
    f.parts.push(piece);
    f.size += piece.length;
  }

  private finishField(): void {
    const f = this.current;
    if (!f) return;
    this.current = undefined;
    this.handler.field({ name: f.name, key: f.name.toLowerCase(), value: f.parts.join('').replace(/^[ \t]+/, ''), eightBit: f.eightBit });
  }
}
