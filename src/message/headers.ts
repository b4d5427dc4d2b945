/**
 * headers.ts — the RFC 5322 header block of a message as raw bytes: find where
 * it ends, list its fields (name + raw bytes, folded lines kept), and build new
 * content with fields prepended or appended — without re-encoding anything.
 *
 * Contract: pure functions over Buffers. A field is a line that starts with a
 * name (printable ASCII except `:`) followed by `:`, plus every continuation
 * line (starting with SP or HTAB). The header ends at the first empty line, or
 * at the first line that is neither a field nor a continuation (Postfix's
 * cleanup treats such a line as the start of the body, RFC 5322 §2.2). Lines
 * may end in CRLF or LF; what we add uses CRLF, as the SMTP listener stores
 * content with CRLF line ends.
 *
 * Not here: MIME, RFC 2047 decoding, header_checks, the Received: format
 * (received.ts).
 */

const LF = 0x0a;
const CR = 0x0d;

export interface HeaderField {
  /** The field name as written (case kept). */
  readonly name: string;
  /** Field name folded to lower case, for comparisons. */
  readonly key: string;
  /** The value after the colon, unfolded (line ends removed), leading white space trimmed. */
  readonly value: string;
  /** Byte offsets of the whole field (with its line ends) inside the content. */
  readonly start: number;
  readonly end: number;
}

export interface HeaderBlock {
  readonly fields: readonly HeaderField[];
  /** Offset where the header ends: the empty separator line or the first body line. */
  readonly end: number;
  /** True when an empty line separates header and body. */
  readonly hasSeparator: boolean;
}

/** One line from `at`: its end offset (after the line end) and the text without the line end. */
function lineAt(content: Buffer, at: number): { next: number; text: Buffer } {
  const lf = content.indexOf(LF, at);
  const next = lf === -1 ? content.length : lf + 1;
  let stop = lf === -1 ? content.length : lf;
  if (stop > at && content[stop - 1] === CR) stop--;
  return { next, text: content.subarray(at, stop) };
}

/** RFC 5322 §2.2: field-name = 1*ftext (printable US-ASCII except ":"). */
function fieldNameLength(line: Buffer): number {
  let i = 0;
  while (i < line.length && line[i]! >= 0x21 && line[i]! <= 0x7e && line[i] !== 0x3a) i++;
  return i > 0 && line[i] === 0x3a ? i : -1;
}

function isContinuation(line: Buffer): boolean {
  return line.length > 0 && (line[0] === 0x20 || line[0] === 0x09);
}

/** Parse the header block at the start of `content`. */
export function parseHeaders(content: Buffer): HeaderBlock {
  const fields: HeaderField[] = [];
  let at = 0;
  while (at < content.length) {
    const { next, text } = lineAt(content, at);
    if (text.length === 0) return { fields, end: at, hasSeparator: true };
    const nameLen = fieldNameLength(text);
    if (nameLen < 0) return { fields, end: at, hasSeparator: false };
    let end = next;
    const parts = [text.subarray(nameLen + 1).toString('latin1')];
    while (end < content.length) {
      const more = lineAt(content, end);
      if (!isContinuation(more.text)) break;
      parts.push(more.text.toString('latin1'));
      end = more.next;
    }
    const name = text.subarray(0, nameLen).toString('latin1');
    fields.push({ name, key: name.toLowerCase(), value: parts.join('').replace(/^[ \t]+/, ''), start: at, end });
    at = end;
  }
  return { fields, end: at, hasSeparator: false };
}

/** The first field named `name` (case-insensitive), if any. */
export function findHeader(block: HeaderBlock, name: string): HeaderField | undefined {
  const key = name.toLowerCase();
  return block.fields.find((f) => f.key === key);
}

/** Every field named `name` (case-insensitive). */
export function findHeaders(block: HeaderBlock, name: string): HeaderField[] {
  const key = name.toLowerCase();
  return block.fields.filter((f) => f.key === key);
}

/** Encode header lines (`Name: value`, folded lines joined by `\n`) with CRLF line ends. */
export function encodeFields(lines: readonly string[]): Buffer {
  return Buffer.from(lines.map((l) => l.replace(/\r?\n/g, '\r\n') + '\r\n').join(''), 'utf8');
}

/**
 * New content: `prepend` before the first byte, `append` at the end of the
 * header block (before the separator line). When the original had no header
 * separator but had a body, a separator is inserted so appended fields do not
 * run into the body.
 */
export function withHeaders(content: Buffer, prepend: readonly string[], append: readonly string[] = []): Buffer {
  if (append.length === 0) return Buffer.concat([encodeFields(prepend), content]);
  const block = parseHeaders(content);
  const head = content.subarray(0, block.end);
  const rest = content.subarray(block.end);
  // A header that ends without a final line end (no body at all) needs one before we append.
  const fixEnd = head.length > 0 && head[head.length - 1] !== LF ? Buffer.from('\r\n') : Buffer.alloc(0);
  const separator = !block.hasSeparator && rest.length > 0 ? Buffer.from('\r\n') : Buffer.alloc(0);
  return Buffer.concat([encodeFields(prepend), head, fixEnd, encodeFields(append), separator, rest]);
}
