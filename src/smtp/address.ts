/**
 * address.ts — RFC 5321 envelope addresses: parse a Path (`<local@domain>`), quote a local
 * part for the wire or the log, fold domains, and flag the tricks relay control cares about.
 *
 * Contract: `parsePath()` never throws; it returns `{ ok: false, reason }` only for structural
 * damage (unbalanced quotes or brackets, junk after `>`, a broken source route, a missing
 * address). Everything else parses and is described by flags, so the caller (smtpd relay
 * control, the client) decides: `hasPercentHack` (`user%other@domain`), `hasBangPath`
 * (`host!user`), `quotedAt` (`"user@other"@domain`), `hadSourceRoute` (`<@a,@b:user@c>`,
 * stripped as RFC 5321 §C and Postfix do), `rfc5321Syntax` (the strict RFC 5321 §4.1.2
 * grammar, RFC 6531 UTF-8 allowed), `overLimits` (RFC 5321 §4.5.3.1 lengths, which Postfix
 * does not enforce) and `needsSmtpUtf8` (non-ASCII anywhere: RFC 6531).
 * The internal form (`address`) is Postfix's: local part unquoted, `@`, domain as received.
 *
 * Not here: IDNA conversion (A-label/U-label), DNS checks, `$myorigin` completion of
 * domain-less addresses, RFC 822 comments and phrases in envelopes.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type LiteralKind = 'ipv4' | 'ipv6' | 'general' | 'invalid';
export type LengthLimit = 'local-part' | 'domain' | 'path';

export interface ParsedAddress {
  /** `<>`: the null reverse-path. */
  readonly isNull: boolean;
  /** Local part in internal (unquoted) form. */
  readonly localPart: string;
  /** Domain or address literal (with brackets) as received; '' when there is none. */
  readonly domain: string;
  /** Postfix's internal form: `localPart@domain`, the local part alone, or '' for `<>`. */
  readonly address: string;
  /** The local part was sent as a quoted string. */
  readonly quoted: boolean;
  /** Kind of address literal (`[192.0.2.1]`, `[IPv6:...]`, `[tag:...]`), if the domain is one. */
  readonly literal: LiteralKind | undefined;
  /** RFC 5321 §C: the hops of a source route, without `@` (`<@a,@b:u@c>` → ['a', 'b']). */
  readonly sourceRoute: readonly string[];
  readonly hadSourceRoute: boolean;
  /** `%` in the local part: the "percent hack" relay trick. */
  readonly hasPercentHack: boolean;
  /** `!` in the local part: a UUCP bang path. */
  readonly hasBangPath: boolean;
  /** `@` inside the local part (only possible quoted, or with several unquoted `@`). */
  readonly quotedAt: boolean;
  /** RFC 6531: non-ASCII characters need SMTPUTF8. */
  readonly needsSmtpUtf8: boolean;
  /** Conforms to RFC 5321 §4.1.2 Mailbox syntax (RFC 6531 UTF-8 allowed; no domain is allowed). */
  readonly rfc5321Syntax: boolean;
  /** Octet lengths as received: local part (quoted form), domain, whole path with `<>`. */
  readonly lengths: { readonly localPart: number; readonly domain: number; readonly path: number };
  /** RFC 5321 §4.5.3.1.1–3 limits exceeded: local part 64, domain 255, path 256 octets. */
  readonly overLimits: readonly LengthLimit[];
}

export type AddressResult = { readonly ok: true; readonly value: ParsedAddress } | { readonly ok: false; readonly reason: string };

export interface ParsePathOptions {
  /** Accept `<>` (MAIL FROM yes, RCPT TO no). Default true. */
  readonly allowNull?: boolean;
  /** Require the `<...>` brackets (strict_rfc821_envelopes = yes). Default false. */
  readonly requireBrackets?: boolean;
}

/** RFC 5321 §4.5.3.1.1–3. */
export const MAX_LOCAL_PART = 64;
export const MAX_DOMAIN = 255;
export const MAX_PATH = 256;

// RFC 5322 atext as used by RFC 5321 §4.1.2, plus RFC 6531 UTF8-non-ascii.
const ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~\\u0080-\\uffff";
const DOT_STRING = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*$`);
// RFC 5321 §4.1.2 sub-domain = Let-dig [Ldh-str]; RFC 6531 allows U-labels.
const SUB_DOMAIN = /^[A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\u0080-\uffff-]*[A-Za-z0-9\u0080-\uffff])?$/;
const GENERAL_LITERAL = /^[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+$/;

function fail(reason: string): AddressResult {
  return { ok: false, reason };
}

/** Index of the first unquoted `ch` in s from `from`, honouring "..." and backslash escapes; -1 if none. */
function findUnquoted(s: string, ch: string, from = 0): number {
  let inQuote = false;
  for (let i = from; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '"') inQuote = !inQuote;
    else if (!inQuote && c === ch) return i;
  }
  return -1;
}

/** Index of the `"` that closes the quoted string opened at s[0]; -1 if none. */
function closingQuote(s: string): number {
  for (let i = 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i;
  }
  return -1;
}

function lastUnquotedAt(s: string): number {
  let at = -1;
  for (let i = findUnquoted(s, '@'); i !== -1; i = findUnquoted(s, '@', i + 1)) at = i;
  return at;
}

/** Remove the `<` `>` brackets, or refuse the token. */
function unbracket(text: string, requireBrackets: boolean): { inner: string } | { error: string } {
  if (!text.startsWith('<')) {
    if (requireBrackets) return { error: 'address not enclosed in <>' };
    if (findUnquoted(text, '>') !== -1 || findUnquoted(text, '<') !== -1) return { error: 'unbalanced <>' };
    return { inner: text };
  }
  const close = findUnquoted(text, '>', 1);
  if (close === -1) return { error: 'missing closing >' };
  if (close !== text.length - 1) return { error: 'junk after >' };
  return { inner: text.slice(1, close) };
}

/** RFC 5321 §C / §4.1.1.3: strip `@a,@b:` and return the hops. */
function stripSourceRoute(inner: string): { route: string[]; rest: string } | { error: string } {
  if (!inner.startsWith('@')) return { route: [], rest: inner };
  const colon = findUnquoted(inner, ':');
  if (colon === -1) return { error: 'source route without ":"' };
  const hops = inner.slice(0, colon).split(',');
  if (!hops.every((h) => h.length > 1 && h.startsWith('@'))) return { error: 'malformed source route' };
  return { route: hops.map((h) => h.slice(1)), rest: inner.slice(colon + 1) };
}

/** Unquote `"..."` (RFC 5321 quoted-pairSMTP = "\" %d32-126); undefined when unterminated. */
function unquote(q: string): string | undefined {
  let out = '';
  for (let i = 1; i < q.length; i++) {
    const c = q[i] as string;
    if (c === '\\') {
      if (i + 1 >= q.length) return undefined;
      out += q[++i];
    } else if (c === '"') {
      return i === q.length - 1 ? out : undefined;
    } else {
      out += c;
    }
  }
  return undefined;
}

function classifyLiteral(domain: string): LiteralKind | undefined {
  if (!domain.startsWith('[')) return undefined;
  if (!domain.endsWith(']')) return 'invalid';
  const body = domain.slice(1, -1);
  // RFC 5321 §4.1.3 address literals.
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(body)) return isIPv4(body) ? 'ipv4' : 'invalid';
  if (/^IPv6:/i.test(body)) return isIPv6(body.slice(5)) ? 'ipv6' : 'invalid';
  return GENERAL_LITERAL.test(body) ? 'general' : 'invalid';
}

function domainSyntaxOk(domain: string, literal: LiteralKind | undefined): boolean {
  if (domain === '') return true;
  if (literal !== undefined) return literal !== 'invalid';
  return domain.split('.').every((label) => SUB_DOMAIN.test(label));
}

function octets(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Parse an RFC 5321 Path (`<...>`), or with requireBrackets false also a bare mailbox. */
export function parsePath(text: string, opts: ParsePathOptions = {}): AddressResult {
  const allowNull = opts.allowNull ?? true;
  const br = unbracket(text, opts.requireBrackets ?? false);
  if ('error' in br) return fail(br.error);
  if (br.inner === '') return allowNull ? { ok: true, value: NULL_ADDRESS } : fail('empty address');
  const sr = stripSourceRoute(br.inner);
  if ('error' in sr) return fail(sr.error);
  const mailbox = sr.rest;
  if (mailbox === '') return fail('empty address after source route');

  let rawLocal: string;
  let domain: string;
  let localPart: string;
  let quoted = false;
  if (mailbox.startsWith('"')) {
    const close = closingQuote(mailbox);
    if (close === -1) return fail('unterminated quoted string');
    const end = close + 1; // index just after the closing quote
    rawLocal = mailbox.slice(0, end);
    const after = mailbox.slice(end);
    if (after !== '' && !after.startsWith('@')) return fail('junk after quoted local part');
    domain = after.slice(1);
    const u = unquote(rawLocal);
    if (u === undefined) return fail('bad quoted string');
    localPart = u;
    quoted = true;
    if (after === '@') return fail('empty domain');
  } else {
    if (findUnquoted(mailbox, '"') !== -1 && (mailbox.split('"').length - 1) % 2 === 1) {
      return fail('unterminated quoted string');
    }
    const at = lastUnquotedAt(mailbox);
    rawLocal = at === -1 ? mailbox : mailbox.slice(0, at);
    domain = at === -1 ? '' : mailbox.slice(at + 1);
    if (at !== -1 && domain === '') return fail('empty domain');
    localPart = rawLocal;
  }
  if (/[\s\u0000-\u001f\u007f@"\\<>]/.test(domain)) return fail('bad character in domain');
  if (!quoted && /[\s\u0000-\u001f\u007f]/.test(rawLocal)) return fail('bad character in local part');

  const literal = classifyLiteral(domain);
  const lengths = {
    localPart: octets(rawLocal),
    domain: octets(domain),
    path: octets(text.startsWith('<') ? text : `<${text}>`),
  };
  const overLimits: LengthLimit[] = [];
  if (lengths.localPart > MAX_LOCAL_PART) overLimits.push('local-part');
  if (lengths.domain > MAX_DOMAIN) overLimits.push('domain');
  if (lengths.path > MAX_PATH) overLimits.push('path');
  const localOk = quoted ? /^[\x20-\x7e\u0080-\uffff]*$/.test(localPart) && localPart !== '' : DOT_STRING.test(rawLocal);
  const value: ParsedAddress = Object.freeze({
    isNull: false,
    localPart,
    domain,
    address: domain === '' ? localPart : `${localPart}@${domain}`,
    quoted,
    literal,
    sourceRoute: Object.freeze(sr.route),
    hadSourceRoute: sr.route.length > 0,
    hasPercentHack: localPart.includes('%'),
    hasBangPath: localPart.includes('!'),
    quotedAt: localPart.includes('@'),
    needsSmtpUtf8: needsSmtpUtf8(text),
    rfc5321Syntax: localOk && domainSyntaxOk(domain, literal),
    lengths,
    overLimits: Object.freeze(overLimits),
  });
  return { ok: true, value };
}

const NULL_ADDRESS: ParsedAddress = Object.freeze({
  isNull: true,
  localPart: '',
  domain: '',
  address: '',
  quoted: false,
  literal: undefined,
  sourceRoute: Object.freeze([]),
  hadSourceRoute: false,
  hasPercentHack: false,
  hasBangPath: false,
  quotedAt: false,
  needsSmtpUtf8: false,
  rfc5321Syntax: true,
  lengths: { localPart: 0, domain: 0, path: 2 },
  overLimits: Object.freeze([]),
});

/** RFC 6531: an address with any non-ASCII character needs SMTPUTF8. */
export function needsSmtpUtf8(s: string): boolean {
  return /[^\x00-\x7f]/.test(s);
}

/**
 * Quote a local part for the wire and the log as Postfix's quote_821_local() does: leave a
 * valid dot-string alone (UTF-8 allowed), otherwise wrap it in `"` and backslash-escape `"`
 * and `\`. An empty local part becomes `""` (Postfix leaves it empty).
 */
export function quoteLocalPart(local: string): string {
  if (DOT_STRING.test(local)) return local;
  return `"${local.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Externalise an internal-form address: quote the part before the last `@`. */
export function quoteAddress(address: string): string {
  if (address === '') return '';
  const at = address.lastIndexOf('@');
  if (at === -1) return quoteLocalPart(address);
  return `${quoteLocalPart(address.slice(0, at))}${address.slice(at)}`;
}

/** `<quoted-address>` for MAIL FROM / RCPT TO and for `from=<...>` log fields. */
export function formatPath(address: string): string {
  return `<${quoteAddress(address)}>`;
}

/** Fold a domain to lower case for comparison and table lookups (ASCII letters only; U-labels stay as sent). */
export function foldDomain(domain: string): string {
  return domain.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

/** Fold the domain of an internal-form address; the local part keeps its case (RFC 5321 §2.4). */
export function foldAddressDomain(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? address : `${address.slice(0, at + 1)}${foldDomain(address.slice(at + 1))}`;
}
