/**
 * stray-cr-lf.ts — cleanup_replace_stray_cr_lf (postconf(5), default yes; Postfix ≥ 3.9,
 * 3.8.5, 3.7.10): each stray <CR> or <LF> in message content becomes one space, so no
 * queued message holds a byte sequence that a lenient next hop could take for the end of
 * DATA (outbound SMTP smuggling), and signatures added later do not depend on how another
 * system treats such bytes.
 *
 * Contract: streaming over Buffers, state kept across chunk boundaries; the output has the
 * same length as the input. Content is CRLF-framed (the listener stores bare LF as CRLF,
 * sendmail's input is normalised the same way), so a line end is exactly <CR><LF>; a <CR>
 * not followed by <LF> and an <LF> not preceded by <CR> are the stray ones (Postfix stores
 * lines without their terminator and replaces every CR or LF left inside a line:
 * cleanup_message.c cleanup_message_headerbody()). `end()` flushes a final <CR>.
 *
 * Not here: the smtpd side (dot-stuff.ts decides where DATA ends), the SMTP client's
 * own rule never to send a bare CR or LF inside DATA.
 */

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;

export class StrayCrLf {
  /** The previous chunk ended in a CR whose fate depends on the next byte. */
  private heldCr = false;
  private count = 0;

  /** How many bytes were replaced so far. */
  get replaced(): number {
    return this.count;
  }

  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    if (!this.needsWork(chunk)) return chunk;
    const out = Buffer.allocUnsafe(chunk.length + (this.heldCr ? 1 : 0));
    let n = 0;
    let prevCr = false;
    if (this.heldCr) {
      this.heldCr = false;
      if (chunk[0] === LF) out[n++] = CR;
      else {
        out[n++] = SP;
        this.count++;
      }
      prevCr = chunk[0] === LF;
    }
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === CR) {
        if (i === chunk.length - 1) {
          this.heldCr = true;
          break;
        }
        if (chunk[i + 1] === LF) out[n++] = CR;
        else {
          out[n++] = SP;
          this.count++;
        }
        prevCr = chunk[i + 1] === LF;
        continue;
      }
      if (b === LF && !prevCr) {
        out[n++] = SP;
        this.count++;
      } else out[n++] = b;
      prevCr = false;
    }
    return out.subarray(0, n);
  }

  /** The end of the content: a final CR is stray. */
  end(): Buffer {
    if (!this.heldCr) return Buffer.alloc(0);
    this.heldCr = false;
    this.count++;
    return Buffer.from([SP]);
  }

  /** Fast path: no CR and no LF that is not part of a CRLF, except possibly a final CR. */
  private needsWork(chunk: Buffer): boolean {
    if (this.heldCr) return true;
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) if (i === 0 || chunk[i - 1] !== CR) return true;
    for (let i = chunk.indexOf(CR); i >= 0; i = chunk.indexOf(CR, i + 1)) if (chunk[i + 1] !== LF) return true;
    return false;
  }
}
