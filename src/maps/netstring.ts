/**
 * netstring.ts — encode and decode netstrings (`<length>:<data>,`), the framing
 * of the socketmap protocol (socketmap_table(5); http://cr.yp.to/proto/netstrings.txt).
 *
 * Contract:
 * - `encodeNetstring(data)` frames one string (UTF-8) or buffer.
 * - `NetstringDecoder` is a push parser: feed it bytes as they arrive with
 *   `push(chunk)`, then call `next()` until it returns `undefined` (more bytes
 *   needed). A malformed frame or one longer than `maxLength` throws
 *   `NetstringError` (the stream is then unusable: the caller must drop the
 *   connection).
 *
 * Not here: sockets, timeouts, the socketmap request/reply grammar (socketmap.ts).
 */

/** The stream is not a valid netstring sequence, or a frame is too long. */
export class NetstringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetstringError';
  }
}

/** Frame `data` as one netstring. */
export function encodeNetstring(data: string | Uint8Array): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  return Buffer.concat([Buffer.from(`${body.length}:`, 'ascii'), body, Buffer.from(',', 'ascii')]);
}

const COLON = 0x3a;
const COMMA = 0x2c;
/** Enough digits for any length we accept; more is garbage, not a length. */
const MAX_LENGTH_DIGITS = 10;

/** Incremental netstring parser over a byte stream. */
export class NetstringDecoder {
  private buf: Buffer = Buffer.alloc(0);
  readonly maxLength: number;

  constructor(maxLength: number) {
    this.maxLength = maxLength;
  }

  push(chunk: Uint8Array): void {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
  }

  /** Bytes received that are not yet part of a complete frame. */
  get pending(): number {
    return this.buf.length;
  }

  /** The next complete frame, or undefined when more bytes are needed. */
  next(): Buffer | undefined {
    const colon = this.buf.indexOf(COLON);
    const digitsSeen = colon < 0 ? this.buf.length : colon;
    this.checkDigits(digitsSeen);
    if (colon < 0) return undefined;
    if (colon === 0) throw new NetstringError('netstring length is missing');
    const length = Number(this.buf.subarray(0, colon).toString('ascii'));
    // netstrings.txt: "leading zeros are prohibited" (but "0:," is the empty string).
    if (colon > 1 && this.buf[0] === 0x30) throw new NetstringError('netstring length has a leading zero');
    if (length > this.maxLength) {
      throw new NetstringError(`netstring length ${length} exceeds the limit of ${this.maxLength}`);
    }
    const end = colon + 1 + length;
    if (this.buf.length <= end) return undefined;
    if (this.buf[end] !== COMMA) throw new NetstringError('netstring does not end with ","');
    const frame = this.buf.subarray(colon + 1, end);
    this.buf = this.buf.subarray(end + 1);
    return Buffer.from(frame);
  }

  /** The length prefix must be decimal digits only, and not absurdly long. */
  private checkDigits(count: number): void {
    for (let i = 0; i < count; i++) {
      const c = this.buf[i]!;
      if (c < 0x30 || c > 0x39) throw new NetstringError('netstring length is not a decimal number');
    }
    if (count > MAX_LENGTH_DIGITS) throw new NetstringError('netstring length is too long');
  }
}
