/**
 * line-limit.ts — smtp_line_length_limit (postconf(5), default 998): the SMTP
 * client breaks content lines longer than the limit, as Postfix's
 * smtp_text_out() does, so that a receiver enforcing RFC 5321 §4.5.3.1.6
 * (998 octets + CRLF) does not reject or truncate the message.
 *
 * Contract: `breakLongLines(content, limit)` is pure. Lines (without their
 * CRLF or LF) of at most `limit` octets are untouched; a longer line is cut
 * into `limit`-octet pieces, each further piece starting with one space (a
 * header continuation), Postfix's shape: `limit` octets, CRLF, SP + `limit-1`
 * octets, CRLF, ... When no line is too long (the normal case) the same
 * Buffer is returned without copying. `limit` 0 disables the check.
 *
 * Not here: dot-stuffing (smtp/dot-stuff.ts runs after this), MIME-aware
 * re-encoding (Postfix does not do that here either).
 */

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;

/** True when some line of `content` is longer than `limit` octets. */
export function hasLongLine(content: Buffer, limit: number): boolean {
  if (limit <= 0 || content.length <= limit) return false;
  let start = 0;
  while (start < content.length) {
    let lf = content.indexOf(LF, start);
    if (lf < 0) lf = content.length;
    const end = lf > start && content[lf - 1] === CR ? lf - 1 : lf;
    if (end - start > limit) return true;
    start = lf + 1;
  }
  return false;
}

export function breakLongLines(content: Buffer, limit: number): Buffer {
  if (!hasLongLine(content, limit)) return content;
  const parts: Buffer[] = [];
  const crlf = Buffer.from('\r\n');
  const sp = Buffer.from([SP]);
  let start = 0;
  while (start < content.length) {
    let lf = content.indexOf(LF, start);
    const last = lf < 0;
    if (last) lf = content.length;
    const end = lf > start && content[lf - 1] === CR ? lf - 1 : lf;
    let pos = start;
    let room = limit;
    // smtp_proto.c smtp_text_out(): emit `room` octets, end the line, continue with a space.
    while (end - pos > room) {
      parts.push(content.subarray(pos, pos + room), crlf);
      pos += room;
      parts.push(sp);
      room = limit - 1;
    }
    parts.push(content.subarray(pos, end));
    if (!last) parts.push(content.subarray(end, lf + 1));
    start = lf + 1;
  }
  return Buffer.concat(parts);
}
