/**
 * idna.ts — internationalised domain names as Postfix converts them (util/midna_domain.c,
 * global/midna_adomain.c, util/valid_utf8_hostname.c, util/valid_hostname.c): U-labels to
 * A-labels for DNS, routing, table lookups and TLS name checks, and back for display.
 *
 * Contract (pure, no I/O; results cached as midna_domain's ctable is, 256 entries):
 * - `domainToAscii(name)` is midna_domain_to_ascii(): UTS #46 ToASCII with the options
 *   Postfix gives ICU — non-transitional processing (`enable_idna2003_compatibility = no`,
 *   so `ß` stays `ß` → `xn--zca`), case mapping and normalisation, hyphen checks
 *   (leading, trailing, `--` in positions 3-4), DNS length checks, fake A-labels refused;
 *   no STD3 rules, no Bidi or ContextJ checks — then valid_hostname() on the result. Any
 *   failure is `{ ok: false, reason }` with ICU's error name where Postfix would log one.
 *   An all-ASCII name goes through the same processing (lower-cased, checked), as
 *   midna_domain_to_ascii() does; callers that follow Postfix use `asciiForLookup()`,
 *   which converts only names that are not all ASCII.
 * - `domainToUtf8(name)` is midna_domain_to_utf8(): ToUnicode, and the result must convert
 *   back to a valid A-label form.
 * - `asciiForLookup(name)` is the pattern at every Postfix call site (smtp_addr.c for DNS,
 *   tls_client.c for name checks, smtp_tls_policy.c for MTA-STS MX patterns): an
 *   all-ASCII name is used as it is; otherwise its A-label form, or undefined when it has
 *   none — the caller must then fail (never send raw UTF-8 to DNS).
 * - `validUtf8Hostname(enableUtf8, name)` is valid_utf8_hostname(): what trivial-rewrite's
 *   resolver and smtpd accept as a domain (`501 5.1.3 Bad recipient address syntax` /
 *   `501 5.1.7 Bad sender address syntax` at smtpd, `5.1.3 bad address syntax` bounce in
 *   the queue manager otherwise).
 * - `addressToAscii()` / `addressToUtf8()` are midna_adomain_to_ascii/_utf8(): the domain of
 *   `local@domain` converted, the local part untouched, address literals left alone.
 * - `translationWarning()` is midna's log text:
 *   `midna_domain_to_ascii_create: Problem translating domain "NAME" to ASCII form: REASON`.
 *
 * The UTS #46 tables are the `tr46` package's (Unicode 18). Debian 12's Postfix 3.7 links
 * ICU 72 (Unicode 15): the two differ only where Unicode changed a mapping since (Georgian
 * capitals U+10A0-10C5 and U+1E9E ẞ now map instead of being disallowed or mapped to `ss`;
 * some default-ignorable format characters are now ignored) — checked against ICU 72 with
 * Postfix's options on 3,000 generated names (docs/differences-from-postfix.md).
 *
 * Not here: where the conversion is applied (scheduler/resolve.ts before table lookups,
 * delivery/dns before MX/A lookups, delivery/tls for name checks and SNI), SMTPUTF8.
 */
import tr46 from 'tr46';

export type IdnaResult = { readonly ok: true; readonly value: string } | { readonly ok: false; readonly reason: string };

/** uidna_openUTS46(UIDNA_NONTRANSITIONAL_TO_ASCII): Postfix's options, as tr46 names them. */
const UTS46: tr46.Options = {
  checkHyphens: true,
  checkBidi: false,
  checkJoiners: false,
  useSTD3ASCIIRules: false,
  transitionalProcessing: false,
  verifyDNSLength: true,
};

/** valid_hostname(): VALID_LABEL_LEN and VALID_HOSTNAME_LEN. */
const LABEL_MAX = 63;
const HOSTNAME_MAX = 255;

/** allascii(). */
export function isAllAscii(s: string): boolean {
  return !/[^\x00-\x7f]/.test(s);
}

/**
 * valid_hostname(name, DONT_GRIPE): letters, digits, `_` and `-`; labels 1-63 long, no
 * leading or trailing hyphen, no empty label (so no trailing dot), not all-numeric, at most
 * 255 characters.
 */
export function validHostname(name: string): boolean {
  if (name === '' || name.length > HOSTNAME_MAX) return false;
  let label = 0;
  let nonNumeric = false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const digit = c >= 0x30 && c <= 0x39;
    if (digit || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f) {
      if (++label > LABEL_MAX) return false;
      if (!digit) nonNumeric = true;
    } else if (c === 0x2e) {
      if (label === 0 || i === name.length - 1) return false;
      label = 0;
    } else if (c === 0x2d) {
      nonNumeric = true;
      if (++label === 1 || i === name.length - 1 || name[i + 1] === '.') return false;
    } else return false;
  }
  return nonNumeric;
}

/** ICU's error name for why UTS #46 refused `name` (midna_domain_strerror()). */
function uts46Reason(name: string): string {
  const mapped = tr46.toUnicode(name, { ...UTS46, checkHyphens: false, verifyDNSLength: false });
  const labels = mapped.domain.split('.');
  if (labels.slice(0, -1).some((l) => l === '') || mapped.domain === '') return 'UIDNA_ERROR_EMPTY_LABEL';
  for (const l of labels) {
    if (l.startsWith('-')) return 'UIDNA_ERROR_LEADING_HYPHEN';
    if (l.endsWith('-')) return 'UIDNA_ERROR_TRAILING_HYPHEN';
    if (l.slice(2, 4) === '--' && !/^xn--/i.test(l)) return 'UIDNA_ERROR_HYPHEN_3_4';
  }
  if (mapped.error) {
    const fake = labels.some((l) => /^xn--/i.test(l) && tr46.toUnicode(l, UTS46).error);
    return fake ? 'UIDNA_ERROR_PUNYCODE' : 'UIDNA_ERROR_DISALLOWED';
  }
  const ascii = tr46.toASCII(name, { ...UTS46, verifyDNSLength: false }) ?? '';
  if (ascii.split('.').some((l) => l.length > LABEL_MAX)) return 'UIDNA_ERROR_LABEL_TOO_LONG';
  if (ascii.replace(/\.$/, '').length > 253) return 'UIDNA_ERROR_DOMAIN_NAME_TOO_LONG';
  return 'UIDNA_ERROR_EMPTY_LABEL';
}

/** Text that cannot be UTF-8 (a string decoded from bytes never has one; a caller's string may). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function toAsciiUncached(name: string): IdnaResult {
  // midna: "do not expose uidna_*() to unfiltered network data".
  if (LONE_SURROGATE.test(name)) return { ok: false, reason: 'malformed UTF-8' };
  const ascii = tr46.toASCII(name, UTS46);
  if (ascii === null || ascii === '') {
    // ICU accepts a final root label ("name."), then valid_hostname() refuses the dot.
    const mapped = tr46.toUnicode(name, UTS46).domain;
    const rooted = mapped.length > 1 && mapped.endsWith('.') && tr46.toASCII(mapped.slice(0, -1), UTS46);
    return { ok: false, reason: rooted ? 'malformed ASCII label(s)' : uts46Reason(name) };
  }
  // midna: "Paranoia: verify that the result passes valid_hostname()".
  if (!validHostname(ascii)) return { ok: false, reason: 'malformed ASCII label(s)' };
  return { ok: true, value: ascii };
}

function toUtf8Uncached(name: string): IdnaResult {
  if (LONE_SURROGATE.test(name)) return { ok: false, reason: 'malformed UTF-8' };
  const r = tr46.toUnicode(name, UTS46);
  if (r.error || r.domain === '') return { ok: false, reason: uts46Reason(name) };
  // midna_domain_to_utf8_create(): the result must pass midna_domain_to_ascii().
  const back = domainToAscii(r.domain);
  if (!back.ok) return back;
  return { ok: true, value: r.domain };
}

/** A small LRU cache (ctable(3) with DEF_MIDNA_CACHE_SIZE entries). */
class Cache {
  private readonly map = new Map<string, IdnaResult>();
  constructor(private readonly size: number) {}
  get(key: string, make: (k: string) => IdnaResult): IdnaResult {
    const hit = this.map.get(key);
    if (hit) {
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    const value = make(key);
    this.map.set(key, value);
    if (this.map.size > this.size) this.map.delete(this.map.keys().next().value as string);
    return value;
  }
}

const asciiCache = new Cache(256);
const utf8Cache = new Cache(256);

/** midna_domain_to_ascii(): see the header. */
export function domainToAscii(name: string): IdnaResult {
  return asciiCache.get(name, toAsciiUncached);
}

/** midna_domain_to_utf8(): see the header. */
export function domainToUtf8(name: string): IdnaResult {
  return utf8Cache.get(name, toUtf8Uncached);
}

/**
 * The name to use for DNS, routing and TLS name checks: the name itself when it is all
 * ASCII (Postfix converts only `!allascii(name)`), else its A-label form; undefined when a
 * non-ASCII name has no valid A-label form.
 */
export function asciiForLookup(name: string): string | undefined {
  if (isAllAscii(name)) return name;
  const r = domainToAscii(name);
  return r.ok ? r.value : undefined;
}

/** valid_utf8_hostname(): a non-ASCII name is valid when UTF-8 is enabled and it converts. */
export function validUtf8Hostname(enableUtf8: boolean, name: string): boolean {
  if (name === '') return false;
  if (enableUtf8 && !isAllAscii(name)) return domainToAscii(name).ok;
  return validHostname(name);
}

function convertAddress(address: string, convert: (domain: string) => IdnaResult, skipAscii: boolean): IdnaResult {
  const at = address.lastIndexOf('@');
  if (at < 0) return { ok: true, value: address };
  const domain = address.slice(at + 1);
  if (domain === '' || domain.startsWith('[') || (skipAscii && isAllAscii(domain))) return { ok: true, value: address };
  const r = convert(domain);
  return r.ok ? { ok: true, value: `${address.slice(0, at + 1)}${r.value}` } : r;
}

/** midna_adomain_to_ascii(): `local@U-label` → `local@A-label` (ASCII domains kept as they are). */
export function addressToAscii(address: string): IdnaResult {
  return convertAddress(address, domainToAscii, true);
}

/** midna_adomain_to_utf8(): `local@xn--...` → `local@U-label`. */
export function addressToUtf8(address: string): IdnaResult {
  return convertAddress(address, domainToUtf8, false);
}

/** midna's warning text (logged by the program that converted, as `warning: TEXT`). */
export function translationWarning(name: string, to: 'ASCII' | 'UTF8', reason: string): string {
  const fn = to === 'ASCII' ? 'midna_domain_to_ascii_create' : 'midna_domain_to_utf8_create';
  return `${fn}: Problem translating domain "${name.slice(0, 100)}" to ${to === 'ASCII' ? 'ASCII' : 'UTF8'} form: ${reason}`;
}
