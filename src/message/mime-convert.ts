/**
 * mime-convert.ts — 8-bit MIME content to 7-bit for a next hop without 8BITMIME, as
 * Postfix's smtp(8) does with mime_state(3) and MIME_OPT_DOWNGRADE (smtp_proto.c: unless
 * disable_mime_output_conversion = yes, when the server does not offer 8BITMIME and the
 * message is not known to be 7bit).
 *
 * Rules (global/mime_state.c):
 * - Only entities that DECLARE an 8bit or binary Content-Transfer-Encoding are converted:
 *   a leaf part's body becomes quoted-printable; an undeclared 8-bit body (7bit by default)
 *   is sent as it is, as Postfix does.
 * - Headers are passed on unchanged, except: a `Content-Transfer-Encoding` field of the 8bit
 *   or binary domain is dropped, and at the end of that header block Postfix's own field is
 *   written: `Content-Transfer-Encoding: quoted-printable` for a leaf entity,
 *   `Content-Transfer-Encoding: 7bit` for multipart/* and message/* (except
 *   message/global, whose body is encoded like a leaf).
 * - Structure: multipart boundaries (every `boundary=` of a Content-Type, at most
 *   mime_boundary_length_limit characters compared, trailing text after a boundary
 *   ignored, inner boundaries closed by an outer one), multipart/digest parts default to
 *   message/rfc822, message/rfc822 bodies start with their own header block,
 *   nesting deeper than mime_nesting_limit stops adding boundaries. Boundary lines and
 *   everything under a 7bit-domain header pass through byte for byte.
 * - Quoted-printable as mime_state_downgrade(): bytes below 32 except TAB, `=` and bytes
 *   above 126 become `=XX`; a soft line break `=` once a line passes 72 characters (lines
 *   stay within 76); a space or TAB at the end of a line becomes `=20`/`=09`. Lines end in
 *   CRLF; a CR inside a line is data (`=0D`).
 * - A primary header ended by a line that is not a header gets an empty line inserted
 *   before it (BODY_OUT of an empty record). Output always ends with a line end.
 *
 * Contract: pure and streaming (`push()`/`end()` over Buffers, any chunking, the same
 * bytes out); memory bounded by one header field up to header_size_limit and the start
 * of one body line (for the boundary test). Longer header fields pass through unchanged
 * and are never truncated (Postfix truncates them at header_size_limit).
 *
 * Not here: deciding whether to convert (the SMTP client: 8BITMIME offered?
 * disable_mime_output_conversion?), dot-stuffing, smtp_line_length_limit, SMTPUTF8.
 */
import { parseContentType, parseTransferEncoding } from './mime-header.ts';
import type { Domain } from './mime-header.ts';
import { headerNameLength } from './header-stream.ts';

export interface MimeConvertOptions {
  /** header_size_limit (default 102400). */
  readonly headerSizeLimit?: number;
  /** mime_boundary_length_limit (default 2048). */
  readonly boundaryLengthLimit?: number;
  /** mime_nesting_limit (default 100). */
  readonly nestingLimit?: number;
}

type CType = 'text' | 'message' | 'multipart' | 'other';
type SType = 'plain' | 'rfc822' | 'partial' | 'external-body' | 'global' | 'other';
type State = 'primary' | 'multipart' | 'nested' | 'body';

interface Frame {
  readonly boundary: Buffer;
  readonly defCtype: CType;
  readonly defStype: SType;
}

const CRLF = Buffer.from('\r\n');
const CR = Buffer.from('\r');
const HEX = '0123456789ABCDEF';

export class MimeDowngrade {
  private state: State = 'primary';
  private ctype: CType = 'text';
  private stype: SType = 'plain';
  private domain: Domain = '7bit';
  private stack: Frame[] = [];
  private nesting = -1;
  private out: Buffer[] = [];
  /** The current line's first bytes (header state: the whole field so far). */
  private line: Buffer[] = [];
  private lineLen = 0;
  /** The current line was already classified; its remaining bytes stream. */
  private streaming: 'raw' | 'qp' | undefined;
  /** The pending header field (header states), raw bytes with their line ends. */
  private field: Buffer[] = [];
  private fieldLen = 0;
  private fieldOverflow = false;
  private qp = '';
  private heldCr = false;
  private readonly headerLimit: number;
  private readonly boundLimit: number;
  private readonly nestingLimit: number;
  private lastByte = 0x0a;

  constructor(opts: MimeConvertOptions = {}) {
    this.headerLimit = opts.headerSizeLimit ?? 102400;
    this.boundLimit = opts.boundaryLengthLimit ?? 2048;
    this.nestingLimit = opts.nestingLimit ?? 100;
  }

  /** Convert one piece of content. */
  push(chunk: Buffer): Buffer {
    let at = 0;
    while (at < chunk.length) {
      const lf = chunk.indexOf(0x0a, at);
      const stop = lf < 0 ? chunk.length : lf + 1;
      this.piece(chunk.subarray(at, stop), lf >= 0);
      at = stop;
    }
    return this.take();
  }

  /** The end of the content: a last line gets its line end, a header block its ending. */
  end(): Buffer {
    if (this.streaming !== undefined || this.lineLen > 0) this.piece(CRLF, true);
    if (this.state !== 'body') {
      // mime_state_update() with a non-text record: the saved field goes out, then the
      // end-of-header work (Postfix's Content-Transfer-Encoding field) is done.
      this.flushField();
      if (this.domain !== '7bit') this.emit(Buffer.from(`Content-Transfer-Encoding: ${this.composite() ? '7bit' : 'quoted-printable'}\r\n`));
    }
    if (this.heldCr) this.qpBytes(Buffer.alloc(0), true);
    if (this.lastByte !== 0x0a) this.emit(CRLF);
    return this.take();
  }

  private take(): Buffer {
    const o = Buffer.concat(this.out);
    this.out = [];
    return o;
  }

  private emit(b: Buffer): void {
    if (b.length === 0) return;
    this.out.push(b);
    this.lastByte = b[b.length - 1]!;
  }

  /** Part of one line (`complete`: the line ends with it). */
  private piece(bytes: Buffer, complete: boolean): void {
    if (this.streaming) {
      this.streamRest(bytes, complete);
      return;
    }
    this.line.push(bytes);
    this.lineLen += bytes.length;
    const enough = complete || this.lineLen >= (this.state === 'body' ? this.boundLimit + 4 : this.headerLimit);
    if (!enough) return;
    const head = Buffer.concat(this.line, this.lineLen);
    this.line = [];
    this.lineLen = 0;
    if (this.state !== 'body' && this.headerLine(head, complete)) return;
    this.bodyLine(head, complete);
  }

  /** The rest of a line that was classified by its start. */
  private streamRest(bytes: Buffer, complete: boolean): void {
    if (this.streaming === 'qp') this.qpBytes(bytes, complete);
    else this.emit(bytes);
    if (complete) this.streaming = undefined;
  }

  /** Header states: true when the line was taken as (part of) a header field. */
  private headerLine(head: Buffer, complete: boolean): boolean {
    const text = lineText(head);
    const blank = text.length > 0 && (text[0] === 0x20 || text[0] === 0x09);
    if ((this.fieldLen > 0 || this.fieldOverflow) && blank) {
      this.addToField(head, complete);
      return true;
    }
    this.flushField();
    if (headerNameLength(text) > 0) {
      this.addToField(head, complete);
      return true;
    }
    this.endOfHeaders(text.length === 0);
    return false;
  }

  private addToField(bytes: Buffer, complete: boolean): void {
    if (this.fieldOverflow || !complete || this.fieldLen + bytes.length > this.headerLimit) {
      // Too long to hold: what we have goes out as it is, the rest streams.
      for (const b of this.field) this.emit(b);
      this.field = [];
      this.fieldLen = 0;
      this.fieldOverflow = true;
      this.emit(bytes);
      if (!complete) this.streaming = 'raw';
      return;
    }
    this.field.push(bytes);
    this.fieldLen += bytes.length;
  }

  /** The pending field is complete: update the MIME state, pass it on or drop it. */
  private flushField(): void {
    if (this.fieldOverflow) {
      this.fieldOverflow = false;
      return;
    }
    if (this.fieldLen === 0) return;
    const raw = Buffer.concat(this.field, this.fieldLen);
    this.field = [];
    this.fieldLen = 0;
    const text = raw.toString('latin1');
    const colon = text.indexOf(':');
    const name = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1);
    if (name === 'content-type') this.contentType(value);
    let drop = false;
    if (name === 'content-transfer-encoding') {
      const enc = parseTransferEncoding(value);
      if (enc) this.domain = enc.domain;
      // mime_state.c: with MIME_OPT_DOWNGRADE an 8bit-domain field is held back and replaced.
      drop = this.domain !== '7bit';
    }
    if (!drop) this.emit(raw);
  }

  private contentType(value: string): void {
    const ct = parseContentType(value);
    switch (ct.kind) {
      case 'text':
        this.ctype = 'text';
        this.stype = 'plain';
        return;
      case 'message':
        this.ctype = 'message';
        this.stype = ct.subtype;
        return;
      case 'multipart':
        this.ctype = 'multipart';
        for (const b of ct.boundaries) {
          if (this.nesting > this.nestingLimit) continue;
          this.nesting++;
          this.stack.unshift({ boundary: Buffer.from(b.slice(0, this.boundLimit), 'latin1'), defCtype: ct.digest ? 'message' : 'text', defStype: ct.digest ? 'rfc822' : 'plain' });
        }
        return;
      case 'other':
        this.ctype = 'other';
        return;
      case 'unchanged':
        return;
    }
  }

  /** multipart/* and message/* except message/global take `7bit`, leaves `quoted-printable`. */
  private composite(): boolean {
    return (this.ctype === 'message' && this.stype !== 'global') || this.ctype === 'multipart';
  }

  /** The line that ends a header block: Postfix's field, then the next state. */
  private endOfHeaders(empty: boolean): void {
    if (this.domain !== '7bit') this.emit(Buffer.from(`Content-Transfer-Encoding: ${this.composite() ? '7bit' : 'quoted-printable'}\r\n`));
    if (!empty) {
      // A non-empty line ends the header: an empty line is inserted after a primary header.
      if (this.state === 'primary') this.emit(CRLF);
      this.state = 'body';
      return;
    }
    if (this.ctype === 'message' && (this.stype === 'rfc822' || (this.stype === 'global' && this.domain === '7bit'))) this.reset('nested', 'text', 'plain');
    else if (this.ctype === 'multipart') this.reset('body', 'other', 'other');
    else this.state = 'body';
  }

  private reset(state: State, ctype: CType, stype: SType): void {
    this.state = state;
    this.ctype = ctype;
    this.stype = stype;
    this.domain = '7bit';
  }

  /** A body line (or its first bytes): boundaries, then raw or quoted-printable. */
  private bodyLine(head: Buffer, complete: boolean): void {
    this.boundary(head);
    const convert = this.domain !== '7bit';
    if (convert) this.qpBytes(head, complete);
    else this.emit(head);
    if (!complete) this.streaming = convert ? 'qp' : 'raw';
  }

  /** mime_state.c: `--boundary` (prefix match, inner levels closed) or `--boundary--`. */
  private boundary(line: Buffer): void {
    if (this.stack.length === 0 || line.length <= 2 || line[0] !== 0x2d || line[1] !== 0x2d) return;
    const at = this.stack.findIndex((f) => line.length >= 2 + f.boundary.length && line.subarray(2, 2 + f.boundary.length).equals(f.boundary));
    if (at < 0) return;
    const f = this.stack[at]!;
    this.nesting -= at;
    this.stack = this.stack.slice(at);
    const rest = line.subarray(2 + f.boundary.length);
    if (rest[0] === 0x2d && rest[1] === 0x2d) {
      this.stack.shift();
      this.nesting--;
      this.reset('body', 'other', 'other');
    } else this.reset('multipart', f.defCtype, f.defStype);
  }

  /**
   * mime_state_downgrade() over part of a line; `complete`: the hard line break is in
   * `bytes`. A CR at the end of an incomplete piece waits: it may be half of the CRLF.
   */
  private qpBytes(piece: Buffer, complete: boolean): void {
    const bytes = this.heldCr ? Buffer.concat([CR, piece]) : piece;
    this.heldCr = !complete && bytes[bytes.length - 1] === 0x0d;
    const text = complete ? lineText(bytes) : this.heldCr ? bytes.subarray(0, -1) : bytes;
    let line = this.qp;
    let out = '';
    for (let i = 0; i < text.length; i++) {
      if (line.length > 72) {
        out += `${line}=\r\n`;
        line = '';
      }
      const c = text[i]!;
      line += (c < 32 && c !== 9) || c === 0x3d || c > 126 ? `=${HEX[c >> 4]}${HEX[c & 15]}` : String.fromCharCode(c);
    }
    if (complete) {
      const last = line[line.length - 1];
      if (last === ' ' || last === '\t') line = `${line.slice(0, -1)}=${last === ' ' ? '20' : '09'}`;
      out += `${line}\r\n`;
      line = '';
    }
    this.qp = line;
    this.emit(Buffer.from(out, 'latin1'));
  }
}

/** A line without its CRLF or LF. */
function lineText(line: Buffer): Buffer {
  let end = line.length;
  if (end > 0 && line[end - 1] === 0x0a) {
    end--;
    if (end > 0 && line[end - 1] === 0x0d) end--;
  }
  return line.subarray(0, end);
}

/** Convert a whole message (tests, small notices). */
export function downgradeMime(content: Buffer, opts: MimeConvertOptions = {}): Buffer {
  const m = new MimeDowngrade(opts);
  return Buffer.concat([m.push(content), m.end()]);
}
