/**
 * ehlo.ts — EHLO replies: parse a server's EHLO response into capabilities (client side) and
 * format our own EHLO response from a capability list (server side).
 *
 * Contract: `parseEhlo()` takes the reply's text lines (enhanced codes already stripped by
 * reply.ts, though EHLO replies normally carry none). RFC 5321 §4.1.1.1: the first line is
 * the server's domain plus optional greeting text; every further line is
 * `ehlo-keyword *(SP ehlo-param)`. Keywords are case-insensitive (RFC 5321 §2.4), stored in
 * upper case; unknown keywords are kept. Malformed values never throw: they are recorded in
 * `warnings` in the words Postfix's smtp client logs, and the keyword still counts as offered
 * (Postfix: `bad EHLO SIZE limit`).
 *
 * Not here: deciding what to use (the session state machine decides: for example STARTTLS
 * before anything else), discarding keywords per smtp_discard_ehlo_keywords (a policy layer).
 */
import { formatReply } from './reply.ts';
import type { SmtpReply } from './reply.ts';

export interface EhloCapabilities {
  /** The whole first line: domain and optional greeting text. */
  readonly greeting: string;
  /** The first word of the first line: the name the server gives itself. */
  readonly domain: string;
  /** Every keyword (upper case) with its parameters, in the order received. */
  readonly keywords: ReadonlyMap<string, readonly string[]>;
  readonly pipelining: boolean; // RFC 2920
  /** RFC 1870: SIZE offered. */
  readonly size: boolean;
  /** RFC 1870 §4: the fixed limit; 0 = no fixed limit; undefined when absent or not a number. */
  readonly sizeLimit: number | undefined;
  readonly eightBitMime: boolean; // RFC 6152
  readonly smtpUtf8: boolean; // RFC 6531
  readonly dsn: boolean; // RFC 3461
  readonly startTls: boolean; // RFC 3207
  readonly enhancedStatusCodes: boolean; // RFC 2034
  /** RFC 4954 mechanisms (upper case, no duplicates) from `AUTH ...` and the old `AUTH=...` form. */
  readonly auth: readonly string[];
  readonly requireTls: boolean; // RFC 8689
  readonly chunking: boolean; // RFC 3030
  readonly binaryMime: boolean; // RFC 3030
  /** Keywords this module does not interpret, upper case, in order. */
  readonly unknown: readonly string[];
  /** Problems found, one line each (Postfix's client logs these as warnings). */
  readonly warnings: readonly string[];
}

const KNOWN = new Set([
  'PIPELINING', 'SIZE', '8BITMIME', 'SMTPUTF8', 'DSN', 'STARTTLS', 'ENHANCEDSTATUSCODES',
  'AUTH', 'REQUIRETLS', 'CHUNKING', 'BINARYMIME',
]);

/** Parse EHLO response lines (text without codes). */
export function parseEhlo(lines: readonly string[]): EhloCapabilities {
  const greeting = (lines[0] ?? '').trim();
  const keywords = new Map<string, string[]>();
  const unknown: string[] = [];
  const warnings: string[] = [];
  const auth: string[] = [];
  for (const line of lines.slice(1)) {
    const words = line.trim().split(/[ \t]+/).filter((w) => w !== '');
    if (words.length === 0) continue;
    let keyword = (words[0] as string).toUpperCase();
    let params = words.slice(1);
    // Old Microsoft-era form "AUTH=LOGIN PLAIN" (broken_sasl_auth_clients): same as AUTH.
    if (keyword.startsWith('AUTH=')) {
      params = [keyword.slice(5), ...params].filter((p) => p !== '');
      keyword = 'AUTH';
    }
    if (keyword === 'AUTH') {
      for (const mech of params) if (!auth.includes(mech.toUpperCase())) auth.push(mech.toUpperCase());
    }
    const prev = keywords.get(keyword);
    if (prev) prev.push(...params);
    else keywords.set(keyword, [...params]);
    if (!KNOWN.has(keyword) && !unknown.includes(keyword)) unknown.push(keyword);
  }
  const sizeLimit = parseSizeLimit(keywords.get('SIZE'), warnings);
  return Object.freeze({
    greeting,
    domain: greeting.split(/[ \t]+/)[0] ?? '',
    keywords,
    pipelining: keywords.has('PIPELINING'),
    size: keywords.has('SIZE'),
    sizeLimit,
    eightBitMime: keywords.has('8BITMIME'),
    smtpUtf8: keywords.has('SMTPUTF8'),
    dsn: keywords.has('DSN'),
    startTls: keywords.has('STARTTLS'),
    enhancedStatusCodes: keywords.has('ENHANCEDSTATUSCODES'),
    auth,
    requireTls: keywords.has('REQUIRETLS'),
    chunking: keywords.has('CHUNKING'),
    binaryMime: keywords.has('BINARYMIME'),
    unknown,
    warnings,
  });
}

function parseSizeLimit(params: readonly string[] | undefined, warnings: string[]): number | undefined {
  if (params === undefined) return undefined;
  // RFC 1870 §4: "SIZE" alone, or "SIZE" followed by the maximum as a decimal number (0 = none).
  if (params.length === 0) return 0;
  const value = params[0] as string;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    warnings.push(`bad EHLO SIZE limit "${value}"`);
    return undefined;
  }
  return Number(value);
}

/** Parse the EHLO reply value returned by the reply parser. */
export function parseEhloReply(reply: SmtpReply): EhloCapabilities {
  return parseEhlo(reply.lines);
}

/** True when the server offered `keyword` (case-insensitive). */
export function offers(caps: EhloCapabilities, keyword: string): boolean {
  return caps.keywords.has(keyword.toUpperCase());
}

/**
 * Server side: the EHLO response. RFC 5321 §4.1.1.1: first line is our domain (plus optional
 * text), one keyword line each after it, all with code 250 and no enhanced status code (Postfix
 * sends none on EHLO). Capabilities are given as lines, e.g. `SIZE 10240000`, `AUTH PLAIN LOGIN`.
 */
export function formatEhloReply(greeting: string, capabilities: readonly string[]): string {
  return formatReply(250, undefined, [greeting, ...capabilities]);
}
