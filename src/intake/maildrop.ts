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
 *
 * Not here: option parsing and messages (cli/sendmail.ts), header additions
 * (pickup adds Received:, Date:, Message-Id:, From:).
 */
import { findHeaders, parseHeaders, type HeaderField } from '../message/headers.ts';
import type { EnvelopeInput } from '../queue/queue-file.ts';
import type { Spool } from '../queue/spool.ts';

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
