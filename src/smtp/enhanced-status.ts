/**
 * enhanced-status.ts — RFC 3463 enhanced mail system status codes (`class.subject.detail`).
 *
 * Contract: pure string functions. `enhancedStatusLength()` recognises a code at the start of
 * a reply text exactly as Postfix's `dsn_valid()` does (class 2/4/5, then 1–3 digits, a dot,
 * 1–3 digits, followed by white space or the end); `parseEnhancedStatus()` turns a complete
 * code into numbers; `defaultEnhancedStatus()` derives the code Postfix assumes when a server
 * sent none (2xx → 2.0.0, 4xx → 4.0.0, 5xx → 5.0.0).
 *
 * Not here: the meaning of individual codes (reason texts live with the delivery agent), and
 * reply parsing (reply.ts).
 */

export interface EnhancedStatus {
  /** RFC 3463 §3.1: 2 (success), 4 (persistent transient failure), 5 (permanent failure). */
  readonly klass: 2 | 4 | 5;
  readonly subject: number;
  readonly detail: number;
}

function digitRun(text: string, from: number): number {
  let i = from;
  while (i < text.length && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
  return i - from;
}

function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n' || ch === '\v' || ch === '\f';
}

/**
 * Length of the enhanced status code at the start of `text`, or 0 when there is none.
 * RFC 3463 §2: status-code = class "." subject "." detail; class = "2"/"4"/"5";
 * subject = 1*3digit; detail = 1*3digit. Like Postfix's dsn_valid(), the code must be
 * followed by white space or the end of the text.
 */
export function enhancedStatusLength(text: string): number {
  const c = text[0];
  if ((c !== '2' && c !== '4' && c !== '5') || text[1] !== '.') return 0;
  const subj = digitRun(text, 2);
  if (subj < 1 || subj > 3 || text[2 + subj] !== '.') return 0;
  const detStart = 3 + subj;
  const det = digitRun(text, detStart);
  if (det < 1 || det > 3) return 0;
  const end = detStart + det;
  if (end < text.length && !isSpace(text[end])) return 0;
  return end;
}

/** True when `code` is exactly one valid enhanced status code. */
export function isValidEnhancedStatus(code: string): boolean {
  return code.length > 0 && enhancedStatusLength(code) === code.length;
}

/** Parse a complete enhanced status code, or undefined when it is not one. */
export function parseEnhancedStatus(code: string): EnhancedStatus | undefined {
  if (!isValidEnhancedStatus(code)) return undefined;
  const [k, s, d] = code.split('.');
  return { klass: Number(k) as 2 | 4 | 5, subject: Number(s), detail: Number(d) };
}

/** Render an EnhancedStatus as `X.Y.Z` (numbers without leading zeros). */
export function formatEnhancedStatus(s: EnhancedStatus): string {
  return `${s.klass}.${s.subject}.${s.detail}`;
}

/**
 * The enhanced code Postfix assumes when a server reply carried none:
 * 2xx → 2.0.0, 4xx → 4.0.0, 5xx → 5.0.0. Other classes (1xx, 3xx) have no DSN
 * equivalent (RFC 3463 §3.1 defines only 2, 4 and 5) and give undefined.
 */
export function defaultEnhancedStatus(replyCode: number): string | undefined {
  const klass = Math.floor(replyCode / 100);
  if (klass === 2 || klass === 4 || klass === 5) return `${klass}.0.0`;
  return undefined;
}

/** True when the enhanced code's class agrees with the basic reply code (RFC 3463 §2). */
export function enhancedMatchesReply(enhanced: string, replyCode: number): boolean {
  return enhanced[0] === String(replyCode)[0];
}
