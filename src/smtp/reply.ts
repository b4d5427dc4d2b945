/**
 * reply.ts — SMTP replies as values: the SmtpReply type, a streaming reply parser for the
 * client side, and the server-side reply formatter.
 *
 * Contract:
 * - `SmtpReply` holds the basic code, the enhanced status code (RFC 3463/2034) when the server
 *   sent one, the text lines with that code stripped, and optionally the command it answers.
 *   `text()` renders the reply the way Postfix logs it: the received lines joined with a single
 *   space (`250 2.0.0 Ok: queued as ABC`; multi-line: `550-5.1.1 a 550 5.1.1 b`), with
 *   non-printable characters replaced by `?` as Postfix's printable() does.
 * - `ReplyParser.push(chunk)` takes bytes as they arrive and returns every reply completed by
 *   them. A malformed reply is returned as a `ReplyProtocolError` value in the same array (never
 *   thrown); after one the parser is poisoned and returns nothing more, because the byte stream
 *   can no longer be trusted (Postfix's smtp client also gives up on the session).
 *   Like Postfix's client it accepts bare LF line ends.
 * - `formatReply()` builds the wire form for the server (`250-...\r\n250 ...\r\n`).
 *
 * Not here: sockets, timeouts, what a reply means for delivery (smtp_trouble-style policy lives
 * in the delivery agent), EHLO keyword parsing (ehlo.ts).
 */
import { defaultEnhancedStatus, enhancedMatchesReply, enhancedStatusLength } from './enhanced-status.ts';

export interface SmtpReplyInit {
  readonly enhanced?: string | undefined;
  readonly command?: string | undefined;
  /** The reply lines as received (`250-...`), used by text(); rebuilt when absent. */
  readonly raw?: readonly string[] | undefined;
}

/** One complete SMTP reply. Immutable. */
export class SmtpReply {
  readonly code: number;
  readonly enhanced: string | undefined;
  readonly lines: readonly string[];
  readonly command: string | undefined;
  readonly raw: readonly string[];

  constructor(code: number, lines: readonly string[], init: SmtpReplyInit = {}) {
    this.code = code;
    this.enhanced = init.enhanced;
    this.lines = Object.freeze([...(lines.length > 0 ? lines : [''])]);
    this.command = init.command;
    this.raw = Object.freeze([...(init.raw ?? rebuildRaw(code, init.enhanced, this.lines))]);
    Object.freeze(this);
  }

  /** RFC 5321 §4.2.1: 2yz positive completion, 3yz positive intermediate. */
  isPositive(): boolean {
    return this.code >= 200 && this.code < 400;
  }

  /** RFC 5321 §4.2.1: 3yz — the server waits for more (DATA's 354, AUTH's 334). */
  isIntermediate(): boolean {
    return this.code >= 300 && this.code < 400;
  }

  /** RFC 5321 §4.2.1: 4yz transient negative completion — try again later. */
  isTransient(): boolean {
    return this.code >= 400 && this.code < 500;
  }

  /** RFC 5321 §4.2.1: 5yz permanent negative completion. */
  isPermanent(): boolean {
    return this.code >= 500 && this.code < 600;
  }

  /** The enhanced code, or the one Postfix assumes when the server sent none (2.0.0/4.0.0/5.0.0). */
  dsn(): string | undefined {
    return this.enhanced ?? defaultEnhancedStatus(this.code);
  }

  /** The reply as Postfix logs it: received lines joined by one space, non-printables as `?`. */
  text(): string {
    return this.raw.map(printable).join(' ');
  }

  /** The text lines joined by one space, without codes (for messages that quote the server). */
  message(): string {
    return this.lines.map(printable).join(' ');
  }

  /** A copy that records which command this reply answers. */
  withCommand(command: string): SmtpReply {
    return new SmtpReply(this.code, this.lines, { enhanced: this.enhanced, command, raw: this.raw });
  }
}

function rebuildRaw(code: number, enhanced: string | undefined, lines: readonly string[]): string[] {
  return lines.map((l, i) => {
    const sep = i < lines.length - 1 ? '-' : ' ';
    const body = enhanced ? (l === '' ? enhanced : `${enhanced} ${l}`) : l;
    return body === '' && sep === ' ' ? `${code}` : `${code}${sep}${body}`;
  });
}

/**
 * Postfix printable(): replace control characters (C0, DEL, C1) with `?`. Valid non-ASCII
 * UTF-8 text stays, as with smtputf8_enable = yes.
 */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, '?');
}

/** Why a reply stream could not be parsed. */
export type ReplyErrorKind =
  | 'malformed-line' // not `ddd`, `ddd-text` or `ddd text`
  | 'bad-code' // first digit not 2..5 (RFC 5321 §4.2.1)
  | 'code-mismatch' // lines of one multi-line reply carry different codes (RFC 5321 §4.2.1)
  | 'line-too-long'
  | 'too-many-lines'
  | 'incomplete'; // the stream ended inside a reply

/** A protocol error found in the server's reply stream: a value, never thrown. */
export class ReplyProtocolError {
  readonly kind: ReplyErrorKind;
  readonly detail: string;
  /** The offending line (printable, truncated to 100 characters), when there is one. */
  readonly line: string | undefined;
  constructor(kind: ReplyErrorKind, detail: string, line?: string) {
    this.kind = kind;
    this.detail = detail;
    this.line = line === undefined ? undefined : printable(line).slice(0, 100);
    Object.freeze(this);
  }
}

export type ReplyParseItem = SmtpReply | ReplyProtocolError;

export interface ReplyParserOptions {
  /** Longest reply line accepted, in octets without the line end (Postfix: line_length_limit = 2048). */
  readonly maxLineLength?: number;
  /** Most lines in one multi-line reply. */
  readonly maxLines?: number;
}

export const DEFAULT_REPLY_MAX_LINE_LENGTH = 2048;
export const DEFAULT_REPLY_MAX_LINES = 256;

const LF = 0x0a;
const CR = 0x0d;

/** Streaming parser of server replies (client side). */
export class ReplyParser {
  private readonly maxLineLength: number;
  private readonly maxLines: number;
  private partial: Buffer[] = [];
  private partialLength = 0;
  private code = 0;
  private raw: string[] = [];
  private failed = false;

  constructor(opts: ReplyParserOptions = {}) {
    this.maxLineLength = opts.maxLineLength ?? DEFAULT_REPLY_MAX_LINE_LENGTH;
    this.maxLines = opts.maxLines ?? DEFAULT_REPLY_MAX_LINES;
  }

  /** True once a protocol error was reported; the parser then ignores further input. */
  get poisoned(): boolean {
    return this.failed;
  }

  /** True while part of a reply (a partial line or the first lines of a multi-line reply) is buffered. */
  get inReply(): boolean {
    return this.partialLength > 0 || this.raw.length > 0;
  }

  /** Feed received bytes; get every reply (or the protocol error) they complete. */
  push(chunk: Buffer): ReplyParseItem[] {
    const out: ReplyParseItem[] = [];
    if (this.failed) return out;
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      const end = lf === -1 ? chunk.length : lf;
      // RFC 5321 §4.5.3.1.5 limits reply lines; we bound memory before the line is complete.
      // The CR of a CRLF may sit at the end of the buffered part, so allow one octet for it.
      if (this.partialLength + (end - start) > this.maxLineLength + 1) {
        return this.fail(out, 'line-too-long', `reply line longer than ${this.maxLineLength} octets`);
      }
      this.partial.push(chunk.subarray(start, end));
      this.partialLength += end - start;
      if (lf === -1) break;
      start = lf + 1;
      const item = this.line(this.takeLine());
      if (item) {
        out.push(item);
        if (item instanceof ReplyProtocolError) return out;
      }
    }
    return out;
  }

  /** Call at end of stream: reports a reply that was cut off, or nothing. */
  finish(): ReplyParseItem[] {
    if (this.failed || !this.inReply) return [];
    return this.fail([], 'incomplete', 'connection closed inside a reply');
  }

  private takeLine(): Buffer {
    let line = Buffer.concat(this.partial, this.partialLength);
    this.partial = [];
    this.partialLength = 0;
    // Tolerate bare LF like Postfix's smtp_get(): strip one CR before the LF if present.
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    return line;
  }

  private fail(out: ReplyParseItem[], kind: ReplyErrorKind, detail: string, line?: string): ReplyParseItem[] {
    this.failed = true;
    this.partial = [];
    this.partialLength = 0;
    this.raw = [];
    out.push(new ReplyProtocolError(kind, detail, line));
    return out;
  }

  private line(bytes: Buffer): ReplyParseItem | undefined {
    if (bytes.length > this.maxLineLength) {
      return this.fail([], 'line-too-long', `reply line longer than ${this.maxLineLength} octets`)[0];
    }
    const line = bytes.toString('utf8');
    // RFC 5321 §4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF
    const m = /^(\d{3})(?:([ -])(.*))?$/s.exec(line);
    if (!m) return this.fail([], 'malformed-line', 'reply line is not "ddd text"', line)[0];
    const code = Number(m[1]);
    // RFC 5321 §4.2.1: the first digit is 2, 3, 4 or 5.
    if (code < 200 || code >= 600) return this.fail([], 'bad-code', `reply code ${m[1]} out of range`, line)[0];
    // RFC 5321 §4.2.1: every line of a multi-line reply carries the same code.
    if (this.raw.length > 0 && code !== this.code) {
      return this.fail([], 'code-mismatch', `reply code ${m[1]} differs from ${this.code}`, line)[0];
    }
    if (this.raw.length >= this.maxLines) {
      return this.fail([], 'too-many-lines', `reply has more than ${this.maxLines} lines`, line)[0];
    }
    this.code = code;
    this.raw.push(line);
    if (m[2] === '-') return undefined;
    const raw = this.raw;
    this.raw = [];
    return buildReply(code, raw);
  }
}

/** Split the received lines of one reply into code, enhanced code and text (RFC 2034 §3). */
export function buildReply(code: number, raw: readonly string[], command?: string): SmtpReply {
  const texts = raw.map((l) => l.slice(4));
  const first = texts[0] ?? '';
  const len = enhancedStatusLength(first);
  // Postfix accepts the enhanced code only when its class matches the reply code.
  const enhanced = len > 0 && enhancedMatchesReply(first, code) ? first.slice(0, len) : undefined;
  const lines = texts.map((t) => (enhanced !== undefined ? stripEnhanced(t, enhanced) : t));
  return new SmtpReply(code, lines, { enhanced, command, raw });
}

function stripEnhanced(text: string, enhanced: string): string {
  if (!text.startsWith(enhanced)) return text;
  const rest = text.slice(enhanced.length);
  if (rest === '') return '';
  if (rest[0] !== ' ' && rest[0] !== '\t') return text;
  return rest.slice(1);
}

/**
 * Server side: the wire form of a reply. RFC 5321 §4.2.1: every line but the last is
 * `code-text`, the last `code SP text`; RFC 2034 §3: the enhanced code starts every line.
 * Throws RangeError on a CR or LF inside a line or a code outside 200..599: those are
 * programming errors that would otherwise let text inject protocol lines.
 */
export function formatReply(code: number, enhanced: string | undefined, lines: readonly string[] | string): string {
  if (!Number.isInteger(code) || code < 200 || code > 599) throw new RangeError(`bad SMTP reply code ${code}`);
  const list = typeof lines === 'string' ? [lines] : lines.length > 0 ? lines : [''];
  let out = '';
  list.forEach((l, i) => {
    if (/[\r\n]/.test(l)) throw new RangeError('SMTP reply text must not contain CR or LF');
    const sep = i < list.length - 1 ? '-' : ' ';
    const body = enhanced ? (l === '' ? enhanced : `${enhanced} ${l}`) : l;
    out += `${code}${sep}${body}\r\n`;
  });
  return out;
}

/** Server side: format an SmtpReply value for the wire. */
export function formatSmtpReply(reply: SmtpReply): string {
  return formatReply(reply.code, reply.enhanced, reply.lines);
}

/** Parse one complete reply from a string (tests, canned replies); a protocol error otherwise. */
export function parseReply(text: string): ReplyParseItem {
  const p = new ReplyParser();
  const items = [...p.push(Buffer.from(text.endsWith('\n') ? text : `${text}\r\n`)), ...p.finish()];
  if (items.length !== 1) {
    const err = items.find((i) => i instanceof ReplyProtocolError);
    return err ?? new ReplyProtocolError('malformed-line', `expected one reply, got ${items.length}`);
  }
  return items[0] as ReplyParseItem;
}
