/**
 * maildrop.ts — what `sealpost sendmail` writes: a message read from standard
 * input, turned into a maildrop queue file (`queue_directory/maildrop/`),
 * which the daemon's pickup service moves to `incoming/` (daemon/pickup.ts).
 * Works while the daemon is down.
 *
 * Contract (pure functions except `writeMaildrop`):
 * - `normaliseInput()`: sendmail(1) input rules. Without -i a line holding
 *   only `.` ends the message; a leading mbox `From ` line is dropped (Postfix
 *   postdrop does); line ends become CRLF (the queue stores SMTP form, as the
 *   listener does). A header block without an empty line before the body gets
 *   one.
 * - `headerRecipients()`: sendmail -t: the addresses in To:, Cc: and Bcc:, or,
 *   when the message has Resent- headers, in Resent-To/Cc/Bcc only (Postfix
 *   cleanup). `removeBcc()` drops Bcc: and Resent-Bcc: fields.
 * - `parseAddressList()`: RFC 5322 §3.4 address lists: `Name <addr>`, bare
 *   addresses, quoted strings, comments, groups `name: a, b;`.
 * - `writeMaildrop()`: one durable spool write (fsync + rename); the caller
 *   exits 0 only after it resolves.
 * - `SendmailInput` is normaliseInput() as a stream (lines held only until they
 *   end, or 64 KiB of them), and `MaildropStream` reads standard input into a
 *   maildrop file without holding the message: the header is collected (for -t
 *   and -F it must be complete before the envelope is known), then the body
 *   goes to the file as it comes.
 *
 * Not here: option parsing and messages (cli/sendmail.ts), header additions
 * (pickup adds Received:, Date:, Message-Id:, From:).
 */
import { findHeaders, parseHeaders, type HeaderField } from '../message/headers.ts';
import { HeaderStream } from '../message/header-stream.ts';
import type { EnvelopeInput } from '../queue/queue-file.ts';
import type { Spool } from '../queue/spool.ts';
import { QueueFileStream } from './queue-write.ts';

export interface InputOptions {
  /** -i / -oi: a lone `.` does not end the message. */
  readonly ignoreDots: boolean;
}

/** The message as it goes into maildrop/ (see the header). */
export function normaliseInput(input: Buffer, opts: InputOptions): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  let first = true;
  const CRLF = Buffer.from('\r\n');
  while (at < input.length) {
    const lf = input.indexOf(0x0a, at);
    const end = lf < 0 ? input.length : lf;
    let line = input.subarray(at, end);
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    at = lf < 0 ? input.length : lf + 1;
    // sendmail(1): without -i, a line with a single "." ends the message.
    if (!opts.ignoreDots && line.length === 1 && line[0] === 0x2e) break;
    // postdrop: an initial mbox "From " line is not part of the message.
    if (first && line.subarray(0, 5).toString('latin1') === 'From ') {
      first = false;
      continue;
    }
    first = false;
    out.push(line, CRLF);
  }
  return ensureSeparator(Buffer.concat(out));
}

/** Make sure the header block is followed by an empty line when a body follows. */
function ensureSeparator(content: Buffer): Buffer {
  const block = parseHeaders(content);
  if (block.hasSeparator || block.end >= content.length || block.end === 0) return content;
  return Buffer.concat([content.subarray(0, block.end), Buffer.from('\r\n'), content.subarray(block.end)]);
}

/** RFC 5322 §3.4 address list → the addr-specs, in order. Group names and display names are dropped. */
export function parseAddressList(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let angle: string | undefined;
  let inAngle = false;
  const flush = (): void => {
    const a = (angle ?? cur).trim();
    if (a !== '') out.push(a);
    cur = '';
    angle = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') {
      // Quoted string: part of a local part when outside <>, else a display name.
      let j = i + 1;
      let q = '"';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length) q += text[j++];
        q += text[j++];
      }
      q += '"';
      if (inAngle) angle = (angle ?? '') + q;
      else cur += q;
      i = j;
    } else if (ch === '(') {
      // Comment, nested.
      let depth = 1;
      let j = i + 1;
      for (; j < text.length && depth > 0; j++) {
        if (text[j] === '\\') j++;
        else if (text[j] === '(') depth++;
        else if (text[j] === ')') depth--;
      }
      i = j - 1;
    } else if (ch === '<') {
      inAngle = true;
      angle = '';
    } else if (ch === '>') {
      inAngle = false;
    } else if (inAngle) {
      angle += ch;
    } else if (ch === ',' || ch === ';') {
      flush();
    } else if (ch === ':') {
      cur = ''; // A group name ends here: "undisclosed-recipients:;".
    } else {
      cur += ch;
    }
  }
  flush();
  // Display-name words without <> and with blanks are not addresses ("John Doe" alone).
  return out.map((a) => a.replace(/\s+/g, '')).filter((a) => a !== '' && a !== '@');
}

function valuesOf(fields: readonly HeaderField[]): string[] {
  return fields.flatMap((f) => parseAddressList(f.value));
}

/** sendmail -t recipients; see the header. */
export function headerRecipients(content: Buffer): string[] {
  const block = parseHeaders(content);
  const resent = block.fields.some((f) => f.key.startsWith('resent-'));
  const names = resent ? ['Resent-To', 'Resent-Cc', 'Resent-Bcc'] : ['To', 'Cc', 'Bcc'];
  const fields = block.fields.filter((f) => names.some((n) => n.toLowerCase() === f.key));
  return valuesOf(fields);
}

/** Remove Bcc: and Resent-Bcc: fields (with their continuation lines). */
export function removeBcc(content: Buffer): Buffer {
  const block = parseHeaders(content);
  const drop = [...findHeaders(block, 'Bcc'), ...findHeaders(block, 'Resent-Bcc')].sort((a, b) => a.start - b.start);
  if (drop.length === 0) return content;
  const parts: Buffer[] = [];
  let at = 0;
  for (const f of drop) {
    parts.push(content.subarray(at, f.start));
    at = f.end;
  }
  parts.push(content.subarray(at));
  return Buffer.concat(parts);
}

/** True when the header has a From: field. */
export function hasFrom(content: Buffer): boolean {
  return findHeaders(parseHeaders(content), 'From').length > 0;
}

/** `From: Full Name <sender>` (header_from_format = standard), the phrase quoted when needed. */
export function fromWithFullName(fullName: string, sender: string): string {
  const atext = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/;
  const phrase = atext.test(fullName) ? fullName : `"${fullName.replace(/(["\\])/g, '\\$1')}"`;
  return `From: ${phrase} <${sender === '' ? 'MAILER-DAEMON' : sender}>`;
}

/** Write the maildrop file; returns its queue ID. Throws QueueWriteError. */
export function writeMaildrop(spool: Spool, envelope: EnvelopeInput, content: Buffer): Promise<string> {
  return spool.writeMessage(envelope, content, 'maildrop');
}

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n');
/** A line is held until it ends or reaches this length; then it streams. */
const LINE_HOLD = 64 * 1024;

/** normaliseInput() as a stream; `push()`/`end()` return the normalised bytes (without ensureSeparator). */
export class SendmailInput {
  private held: Buffer[] = [];
  private heldLen = 0;
  /** The current line was too long to hold: its start has gone out. */
  private streaming = false;
  private heldCr = false;
  private first = true;
  private stopped = false;

  constructor(private readonly opts: InputOptions) {}

  /** A lone `.` ended the input (sendmail without -i): what follows is ignored. */
  get ended(): boolean {
    return this.stopped;
  }

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < chunk.length && !this.stopped) {
      const lf = chunk.indexOf(LF, at);
      const piece = chunk.subarray(at, lf < 0 ? chunk.length : lf);
      at = lf < 0 ? chunk.length : lf + 1;
      if (this.streaming) this.streamPiece(piece, lf >= 0, out);
      else {
        this.held.push(piece);
        this.heldLen += piece.length;
        if (lf >= 0) this.line(Buffer.concat(this.held, this.heldLen), out);
        else if (this.heldLen >= LINE_HOLD) this.startStreaming(out);
        else continue;
        this.held = [];
        this.heldLen = 0;
      }
    }
    return out;
  }

  end(): Buffer[] {
    if (this.stopped) return [];
    const out: Buffer[] = [];
    if (this.streaming) this.streamPiece(Buffer.alloc(0), true, out);
    else if (this.heldLen > 0) this.line(Buffer.concat(this.held, this.heldLen), out);
    this.held = [];
    this.heldLen = 0;
    return out;
  }

  /** One complete line without its LF. */
  private line(line: Buffer, out: Buffer[]): void {
    const text = line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, line.length - 1) : line;
    // sendmail(1): without -i, a line with a single "." ends the message.
    if (!this.opts.ignoreDots && text.length === 1 && text[0] === 0x2e) {
      this.stopped = true;
      return;
    }
    // postdrop: an initial mbox "From " line is not part of the message.
    const skip = this.first && text.subarray(0, 5).toString('latin1') === 'From ';
    this.first = false;
    if (!skip) out.push(text, CRLF);
  }

  private startStreaming(out: Buffer[]): void {
    const head = Buffer.concat(this.held, this.heldLen);
    const skip = this.first && head.subarray(0, 5).toString('latin1') === 'From ';
    this.first = false;
    this.streaming = true;
    if (skip) {
      this.heldCr = false;
      this.skipping = true;
      return;
    }
    this.streamPiece(head, false, out);
  }

  private skipping = false;

  /** Part of a long line; `ends`: its LF followed (or the input ended). */
  private streamPiece(piece: Buffer, ends: boolean, out: Buffer[]): void {
    if (this.skipping) {
      if (ends) this.skipping = this.streaming = false;
      return;
    }
    let data = this.heldCr ? Buffer.concat([Buffer.from([CR]), piece]) : piece;
    this.heldCr = false;
    if (ends) {
      if (data.length > 0 && data[data.length - 1] === CR) data = data.subarray(0, data.length - 1);
      out.push(data, CRLF);
      this.streaming = false;
      return;
    }
    if (data.length > 0 && data[data.length - 1] === CR) {
      this.heldCr = true;
      data = data.subarray(0, data.length - 1);
    }
    if (data.length > 0) out.push(data);
  }
}

/**
 * Standard input into a maildrop file, streamed: `collect()` gathers the header, then the
 * caller decides the envelope (recipients from -t, a From: for -F) with the header in hand and
 * `open()`s the file; the body follows through `write()` / `finish()`.
 */
export class MaildropStream {
  private readonly input: SendmailInput;
  private readonly headers: HeaderStream;
  private header: Buffer[] = [];
  private body: Buffer[] = [];
  private headerDone = false;
  /** The header was ended by a body line, not by an empty line. */
  private needsSeparator = false;
  private file: QueueFileStream | undefined;
  /** The content collected in memory instead (openInMemory(): for the setgid postdrop helper). */
  private memory: Buffer[] | undefined;
  private written = 0;

  constructor(opts: InputOptions) {
    this.input = new SendmailInput(opts);
    this.headers = new HeaderStream({
      data: (b) => (this.headerDone ? this.body : this.header).push(b),
      field: () => undefined,
      end: (e) => {
        this.headerDone = true;
        this.needsSeparator = !e.separator && !e.atEof && this.header.length > 0;
      },
    });
  }

  /** Feed input until the header is complete; true once it is (or the input ended). */
  collect(chunk: Buffer): boolean {
    for (const piece of this.input.push(chunk)) this.headers.push(piece);
    return this.headerDone || this.input.ended;
  }

  /** The input ended. */
  endOfInput(): void {
    for (const piece of this.input.end()) this.headers.push(piece);
    this.headers.end();
  }

  /** The header block (CRLF line ends), for -t and -F. */
  headerBytes(): Buffer {
    return Buffer.concat(this.header);
  }

  /** Open the maildrop file with the final header; what was read of the body follows. */
  async open(spool: Spool, envelope: EnvelopeInput, header: Buffer): Promise<void> {
    this.file = await QueueFileStream.open(spool, envelope, 'maildrop');
    await this.put(header);
    if (this.needsSeparator) await this.put(CRLF);
    for (const b of this.body) await this.put(b);
    this.body = [];
  }

  /**
   * Like open(), but the content is collected in memory: a user who may not write maildrop/
   * hands one encoded queue file to the setgid postdrop helper (intake/postdrop.ts), which
   * takes it on its standard input.
   */
  openInMemory(header: Buffer): void {
    this.memory = [];
    this.written += header.length;
    this.memory.push(header);
    if (this.needsSeparator) {
      this.written += CRLF.length;
      this.memory.push(CRLF);
    }
    for (const b of this.body) {
      this.written += b.length;
      this.memory.push(b);
    }
    this.body = [];
  }

  /** The content collected by openInMemory() (after drain()). */
  memoryContent(): Buffer {
    return Buffer.concat(this.memory ?? []);
  }

  /** Content bytes written so far (sendmail's message_size_limit check). */
  get size(): number {
    return this.written;
  }

  /** More input, after open(). */
  async write(chunk: Buffer): Promise<void> {
    if (this.input.ended) return;
    const before = this.body.length;
    for (const piece of this.input.push(chunk)) this.headers.push(piece);
    for (const b of this.body.splice(before)) await this.put(b);
  }

  /** A lone `.` ended the input: the rest of standard input is not read. */
  get inputEnded(): boolean {
    return this.input.ended;
  }

  /** The end of the input: the last line goes to the file (check the size after this). */
  async drain(): Promise<void> {
    this.endOfInput();
    for (const b of this.body.splice(0)) await this.put(b);
  }

  /** Make the file durable. */
  finish(envelope: EnvelopeInput): Promise<string> {
    return this.file!.finish(envelope);
  }

  abort(): Promise<void> {
    return this.file?.abort() ?? Promise.resolve();
  }

  private async put(b: Buffer): Promise<void> {
    this.written += b.length;
    if (this.memory) this.memory.push(b);
    else await this.file!.write(b);
  }
}
