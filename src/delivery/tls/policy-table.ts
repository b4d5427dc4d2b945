/**
 * policy-table.ts — parse one smtp_tls_policy_maps value (postconf(5)
 * smtp_tls_policy_maps; smtp_tls_policy.c tls_policy_lookup_one()):
 *
 *     secure match=nexthop:dot-nexthop ciphers=high protocols=>=TLSv1.2
 *     fingerprint match=AB:CD:...|12:34:... match=...
 *     secure { policy_string = mode: enforce } policy_type=sts ...
 *
 * Contract: pure. A level keyword, then attributes separated by whitespace
 * and/or commas; `{ name = value }` protects whitespace. Inside a value, list
 * items are colon-separated (`|` for fingerprints). Every error is Postfix's
 * text (without the `smtp_tls_policy_maps, next-hop destination "X": ` prefix,
 * which the caller adds) and makes the whole entry invalid — never a partial
 * policy. At level `none` attributes are ignored with a warning each.
 *
 * Not here: interpreting protocols/ciphers (protocols.ts, ciphers.ts), reading
 * tafile= files (policy.ts), defaults from main.cf (policy.ts).
 */
import { extractBraced, splitOutsideBraces } from '../../maps/braces.ts';
import { isValidHostname } from '../../maps/domain-walk.ts';
import type { TlsLevel } from './types.ts';
import { mustPkix, parseLevel } from './level.ts';

export interface StsAttributes {
  readonly policyType?: string;
  readonly policyDomain?: string;
  readonly policyStrings: readonly string[];
  readonly mxHostPatterns: readonly string[];
  readonly policyFailure?: string;
}

export interface PolicyEntry {
  readonly level: TlsLevel;
  readonly ciphers?: string;
  readonly protocols?: string;
  readonly exclude?: string;
  /** verify/secure: names and strategies; fingerprint: fingerprints. Empty = main.cf default. */
  readonly match: readonly string[];
  /** A host name, or `hostname` / `nexthop`. */
  readonly servername?: string;
  readonly tafiles: readonly string[];
  readonly connectionReuse?: boolean;
  readonly enableRpk?: boolean;
  readonly sts: StsAttributes;
}

export type PolicyParse =
  | { readonly ok: true; readonly entry: PolicyEntry; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly error: string; readonly warnings: readonly string[] };

/** split_nameval(3): `name = value` with optional blanks around `=`. */
export function splitNameValue(tok: string): { name: string; value: string } | { error: string } {
  const t = tok.replace(/^\s+/, '');
  if (t === '' || t[0] === '=') return { error: 'missing attribute name' };
  const m = /^([^\s=]+)\s*(=?)/.exec(t)!;
  if (m[2] !== '=') return { error: "missing '=' after attribute name" };
  return { name: m[1]!, value: t.slice(m[0].length).trim() };
}

const STS_VALUES = new Set(['policy_domain', 'policy_string', 'mx_host_pattern', 'policy_failure']);
const POLICY_FAILURES = new Set(['sts-policy-fetch-error', 'sts-policy-invalid', 'sts-webpki-invalid', 'validation-failure']);

class Invalid extends Error {}

/** Parse a policy table value. */
export function parsePolicyEntry(value: string): PolicyParse {
  const warnings: string[] = [];
  const tokens = splitOutsideBraces(value);
  const first = tokens.shift();
  // smtp_tls_policy.c: "invalid empty policy".
  if (first === undefined) return { ok: false, error: 'invalid empty policy', warnings };
  const level = parseLevel(first);
  if (level === undefined) return { ok: false, error: `invalid security level "${first}"`, warnings };
  if (level === 'none') {
    // smtp_tls_policy.c: "Warn about ignored attributes when TLS is disabled."
    for (const tok of tokens) warnings.push(`ignoring attribute "${tok}" with TLS disabled`);
    return { ok: true, entry: emptyEntry(level), warnings };
  }
  try {
    return { ok: true, entry: parseAttributes(level, tokens), warnings };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, error: err.message, warnings };
    throw err;
  }
}

function emptyEntry(level: TlsLevel): PolicyEntry {
  return { level, match: [], tafiles: [], sts: { policyStrings: [], mxHostPatterns: [] } };
}

/** What the attributes said so far (one entry being parsed). */
interface Draft {
  readonly level: TlsLevel;
  ciphers?: string;
  protocols?: string;
  exclude?: string;
  servername?: string;
  connectionReuse?: boolean;
  enableRpk?: boolean;
  policyType?: string;
  policyDomain?: string;
  policyFailure?: string;
  readonly match: string[];
  readonly tafiles: string[];
  readonly policyStrings: string[];
  readonly mxHostPatterns: string[];
  /** STS attributes in the order seen (policy_type must come with them). */
  readonly stsSeen: string[];
}

function once(name: string, current: unknown): void {
  if (current !== undefined) throw new Invalid(`attribute "${name}" is specified multiple times`);
}
function nonEmpty(name: string, v: string): void {
  if (v === '') throw new Invalid(`attribute "${name}" has empty value`);
}
function invalidAtLevel(name: string, level: TlsLevel): Invalid {
  return new Invalid(`attribute "${name}" invalid at security level "${level}"`);
}
function badValue(name: string, v: string): Invalid {
  return new Invalid(`attribute "${name}" has bad value: "${v}"`);
}
function yesNo(name: string, v: string): boolean {
  if (/^yes$/i.test(v)) return true;
  if (/^no$/i.test(v)) return false;
  throw badValue(name, v);
}

/** One handler per attribute name (postconf(5) smtp_tls_policy_maps; smtp_tls_policy.c). */
const ATTRIBUTES: Readonly<Record<string, (d: Draft, val: string, name: string, written: string) => void>> = {
  ciphers(d, val, name) {
    nonEmpty(name, val);
    once(name, d.ciphers);
    d.ciphers = val;
  },
  protocols(d, val, name) {
    once(name, d.protocols);
    d.protocols = val;
  },
  exclude(d, val, name) {
    once(name, d.exclude);
    d.exclude = val;
  },
  match(d, val, name) {
    nonEmpty(name, val);
    // fingerprints are `|`-separated, names `:`-separated (smtp_tls_policy.c).
    if (d.level === 'fingerprint') d.match.push(...val.split('|').filter((s) => s !== ''));
    else if (d.level === 'verify' || d.level === 'secure') d.match.push(...val.split(':').filter((s) => s !== ''));
    else throw invalidAtLevel(name, d.level);
  },
  servername(d, val, name, written) {
    once(name, d.servername);
    // smtp_tls_policy.c: a valid hostname, or "hostname" / "nexthop".
    const keyword = /^(hostname|nexthop)$/i.test(val);
    if (!keyword && !isValidHostname(val)) throw new Invalid(`"${written}=${val}" specifies an invalid hostname`);
    d.servername = keyword ? val.toLowerCase() : val;
  },
  tafile(d, val, name) {
    // Only makes sense with CA-based trust (TLS_MUST_PKIX).
    if (!mustPkix(d.level)) throw invalidAtLevel(name, d.level);
    nonEmpty(name, val);
    d.tafiles.push(val);
  },
  connection_reuse(d, val, name) {
    // Last one wins.
    d.connectionReuse = yesNo(name, val);
  },
  enable_rpk(d, val, name) {
    if (d.level !== 'may' && d.level !== 'encrypt' && d.level !== 'fingerprint') throw invalidAtLevel(name, d.level);
    d.enableRpk = yesNo(name, val);
  },
  policy_type(d, val, name) {
    once(name, d.policyType);
    if (val !== 'sts' && val !== 'no-policy-found') throw badValue(name, val);
    d.policyType = val;
  },
  policy_domain(d, val, name) {
    once(name, d.policyDomain);
    nonEmpty(name, val);
    d.policyDomain = val;
    d.stsSeen.push(name);
  },
  policy_string(d, val, name) {
    nonEmpty(name, val);
    d.policyStrings.push(val);
    d.stsSeen.push(name);
  },
  mx_host_pattern(d, val, name) {
    nonEmpty(name, val);
    d.mxHostPatterns.push(val);
    d.stsSeen.push(name);
  },
  policy_failure(d, val, name) {
    once(name, d.policyFailure);
    if (!POLICY_FAILURES.has(val)) throw badValue(name, val);
    d.policyFailure = val;
    d.stsSeen.push(name);
  },
  policy_ttl() {
    // Deprecated and ignored (postconf(5) smtp_tls_policy_maps).
  },
};

/** One `name=value` token (or `{ name = value }`). */
function attribute(tok: string): { name: string; written: string; value: string } {
  let text = tok;
  if (tok[0] === '{') {
    const b = extractBraced(tok);
    if ('error' in b) throw new Invalid(`malformed attribute/value pair "${tok}": ${b.error}`);
    text = b.text;
  }
  const nv = splitNameValue(text);
  if ('error' in nv) throw new Invalid(`malformed attribute/value pair "${text}": ${nv.error}`);
  return { name: nv.name.toLowerCase(), written: nv.name, value: nv.value };
}

function parseAttributes(level: TlsLevel, tokens: readonly string[]): PolicyEntry {
  const d: Draft = { level, match: [], tafiles: [], policyStrings: [], mxHostPatterns: [], stsSeen: [] };
  for (const tok of tokens) {
    const a = attribute(tok);
    const handle = Object.prototype.hasOwnProperty.call(ATTRIBUTES, a.name) ? ATTRIBUTES[a.name] : undefined;
    if (!handle) throw new Invalid(`invalid attribute name: "${a.written}"`);
    handle(d, a.value, a.name, a.written);
  }
  // Postfix ≥3.10: the STS attributes require policy_type.
  if (d.policyType === undefined && d.stsSeen.length > 0 && STS_VALUES.has(d.stsSeen[0]!)) {
    throw new Invalid(`built-in policy has unexpected attribute "${d.stsSeen[0]}"`);
  }
  const sts: StsAttributes = {
    policyStrings: d.policyStrings,
    mxHostPatterns: d.mxHostPatterns,
    ...(d.policyType !== undefined ? { policyType: d.policyType } : {}),
    ...(d.policyDomain !== undefined ? { policyDomain: d.policyDomain } : {}),
    ...(d.policyFailure !== undefined ? { policyFailure: d.policyFailure } : {}),
  };
  return {
    level,
    match: d.match,
    tafiles: d.tafiles,
    sts,
    ...(d.ciphers !== undefined ? { ciphers: d.ciphers } : {}),
    ...(d.protocols !== undefined ? { protocols: d.protocols } : {}),
    ...(d.exclude !== undefined ? { exclude: d.exclude } : {}),
    ...(d.servername !== undefined ? { servername: d.servername } : {}),
    ...(d.connectionReuse !== undefined ? { connectionReuse: d.connectionReuse } : {}),
    ...(d.enableRpk !== undefined ? { enableRpk: d.enableRpk } : {}),
  };
}
