/**
 * queue-id.ts — Postfix's queue IDs: the short (hex) and the long (base-52) form.
 *
 * Contract (mail_queue.h MQID_*; postconf(5) enable_long_queue_ids):
 * - Short form: the microseconds of the creation time as exactly five upper-case
 *   hex digits (`%05X`), followed by the queue file's inode number in upper-case
 *   hex without padding (`%lX`). Example: `C3CD21F3E90`. IDs are reused over time.
 * - Long form: the creation time in seconds in the 52-character "safe" alphabet
 *   (digits, then B-Z and b-z without vowels), at least six characters; the
 *   microseconds in the same alphabet, exactly four characters; the separator
 *   `z`; then the inode number in base 51 (the alphabet without `z`, so the
 *   separator is unambiguous). Example: `3Pt2mN2VXxznjll`. IDs do not repeat.
 * - As in Postfix, the ID is derived from the inode of the already created queue
 *   file (spool.ts creates the file, reads its inode, then renames it to the ID),
 *   so two files that exist at the same time never share an ID.
 *
 * Not here: file creation and renaming (spool.ts); the time source (callers
 * pass seconds and microseconds so that tests are deterministic).
 */

/** safe_ultostr.c: digits, then consonants B-Z (values 10-30), then b-z (31-51). */
export const SAFE_ALPHABET = '0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz';

const SAFE_VALUE: ReadonlyMap<string, number> = new Map([...SAFE_ALPHABET].map((c, i) => [c, i]));

// mail_queue.h: MQID_LG_SEC_BASE 52, MQID_LG_SEC_PAD 6, MQID_LG_USEC_BASE 52,
// MQID_LG_USEC_PAD 4, MQID_LG_INUM_SEP 'z', MQID_LG_INUM_BASE 51; MQID_SH_USEC_PAD 5.
const LG_SEC_PAD = 6;
const LG_USEC_PAD = 4;
const LG_TIME_PAD = LG_SEC_PAD + LG_USEC_PAD;
const LG_INUM_SEP = 'z';
const SH_USEC_PAD = 5;

/** Encode a non-negative integer in the safe alphabet (safe_ultostr), left-padded with '0'. */
export function safeEncode(value: bigint | number, base: number, padLength: number): string {
  if (base < 2 || base > SAFE_ALPHABET.length) throw new RangeError(`bad base: ${base}`);
  let v = BigInt(value);
  if (v < 0n) throw new RangeError('negative value');
  const b = BigInt(base);
  let out = '';
  while (v !== 0n) {
    out = SAFE_ALPHABET[Number(v % b)]! + out;
    v /= b;
  }
  return out.padStart(padLength, '0');
}

/** Decode a safe-alphabet string (safe_strtoul); undefined when a character is outside the base. */
export function safeDecode(text: string, base: number): bigint | undefined {
  if (text.length === 0) return undefined;
  const b = BigInt(base);
  let sum = 0n;
  for (const ch of text) {
    const v = SAFE_VALUE.get(ch);
    if (v === undefined || v >= base) return undefined;
    sum = sum * b + BigInt(v);
  }
  return sum;
}

/** The short, repeating form: `%05X` microseconds + `%lX` inode. */
export function shortQueueId(usec: number, inode: bigint | number): string {
  return (usec >>> 0).toString(16).toUpperCase().padStart(SH_USEC_PAD, '0') + BigInt(inode).toString(16).toUpperCase();
}

/** The long, non-repeating form: seconds (base 52, >= 6) + usec (base 52, 4) + 'z' + inode (base 51). */
export function longQueueId(seconds: number, usec: number, inode: bigint | number): string {
  return safeEncode(seconds, 52, LG_SEC_PAD) + safeEncode(usec, 52, LG_USEC_PAD) + LG_INUM_SEP + safeEncode(inode, 51, 0);
}

export function makeQueueId(long: boolean, timeUs: bigint, inode: bigint | number): string {
  const seconds = Number(timeUs / 1_000_000n);
  const usec = Number(timeUs % 1_000_000n);
  return long ? longQueueId(seconds, usec, inode) : shortQueueId(usec, inode);
}

export type ParsedQueueId =
  | { readonly form: 'short'; readonly usec: number; readonly inode: bigint }
  | { readonly form: 'long'; readonly seconds: number; readonly usec: number; readonly inode: bigint };

/**
 * Split an ID into its time and inode parts (MQID_GET_INUM): it is long when a
 * `z` occurs at or after position 10 (MQID_FIND_LG_INUM_SEPARATOR), else short.
 */
export function parseQueueId(id: string): ParsedQueueId | undefined {
  const sep = id.lastIndexOf(LG_INUM_SEP);
  if (sep >= LG_TIME_PAD) {
    const seconds = safeDecode(id.slice(0, sep - LG_USEC_PAD), 52);
    const usec = safeDecode(id.slice(sep - LG_USEC_PAD, sep), 52);
    const inode = safeDecode(id.slice(sep + 1), 51);
    if (seconds === undefined || usec === undefined || inode === undefined || usec >= 1_000_000n) return undefined;
    return { form: 'long', seconds: Number(seconds), usec: Number(usec), inode };
  }
  if (!/^[0-9A-F]{6,}$/.test(id)) return undefined;
  const usec = Number.parseInt(id.slice(0, SH_USEC_PAD), 16);
  if (usec >= 1_000_000) return undefined;
  return { form: 'short', usec, inode: BigInt('0x' + id.slice(SH_USEC_PAD)) };
}

/**
 * mail_queue_id_ok(): a queue file name is non-empty, at most 255 characters
 * (VALID_HOSTNAME_LEN), and only letters, digits and `_`. Everything the tools
 * accept from the command line goes through this check before touching a file.
 */
export function isValidQueueId(id: string): boolean {
  return id.length > 0 && id.length <= 255 && /^[A-Za-z0-9_]+$/.test(id);
}

/** The current wall-clock time in microseconds (gettimeofday). */
export function nowMicros(): bigint {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
}
