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

function parseAttributes(level: TlsLevel, tokens: readonly string[]): PolicyEntry {
  let ciphers: string | undefined;
  let protocols: string | undefined;
  let exclude: string | undefined;
  let servername: string | undefined;
  let connectionReuse: boolean | undefined;
  let enableRpk: boolean | undefined;
  let policyType: string | undefined;
  let policyDomain: string | undefined;
  let policyFailure: string | undefined;
  const match: string[] = [];
  const tafiles: string[] = [];
  const policyStrings: string[] = [];
  const mxHostPatterns: string[] = [];
  const stsSeen: string[] = [];

  const once = (name: string, current: unknown) => {
    if (current !== undefined) throw new Invalid(`attribute "${name}" is specified multiple times`);
  };
  const nonEmpty = (name: string, v: string) => {
    if (v === '') throw new Invalid(`attribute "${name}" has empty value`);
  };
  const invalidAtLevel = (name: string) => new Invalid(`attribute "${name}" invalid at security level "${level}"`);
  const yesNo = (name: string, v: string): boolean => {
    if (/^yes$/i.test(v)) return true;
    if (/^no$/i.test(v)) return false;
    throw new Invalid(`attribute "${name}" has bad value: "${v}"`);
  };

  for (const tok of tokens) {
    let text = tok;
    if (tok[0] === '{') {
      const b = extractBraced(tok);
      if ('error' in b) throw new Invalid(`malformed attribute/value pair "${tok}": ${b.error}`);
      text = b.text;
    }
    const nv = splitNameValue(text);
    if ('error' in nv) throw new Invalid(`malformed attribute/value pair "${text}": ${nv.error}`);
    const name = nv.name.toLowerCase();
    const val = nv.value;
    switch (name) {
      case 'ciphers':
        nonEmpty(name, val);
        once(name, ciphers);
        ciphers = val;
        break;
      case 'protocols':
        once(name, protocols);
        protocols = val;
        break;
      case 'exclude':
        once(name, exclude);
        exclude = val;
        break;
      case 'match':
        nonEmpty(name, val);
        // fingerprints are `|`-separated, names `:`-separated (smtp_tls_policy.c).
        if (level === 'fingerprint') match.push(...val.split('|').filter((s) => s !== ''));
        else if (level === 'verify' || level === 'secure') match.push(...val.split(':').filter((s) => s !== ''));
        else throw invalidAtLevel(name);
        break;
      case 'servername':
        once(name, servername);
        // smtp_tls_policy.c: a valid hostname, or "hostname" / "nexthop".
        if (!/^(hostname|nexthop)$/i.test(val) && !isValidHostname(val)) {
          throw new Invalid(`"${nv.name}=${val}" specifies an invalid hostname`);
        }
        servername = /^(hostname|nexthop)$/i.test(val) ? val.toLowerCase() : val;
        break;
      case 'tafile':
        // Only makes sense with CA-based trust (TLS_MUST_PKIX).
        if (!mustPkix(level)) throw invalidAtLevel(name);
        nonEmpty(name, val);
        tafiles.push(val);
        break;
      case 'connection_reuse':
        // Last one wins.
        connectionReuse = yesNo(name, val);
        break;
      case 'enable_rpk':
        if (level !== 'may' && level !== 'encrypt' && level !== 'fingerprint') throw invalidAtLevel(name);
        enableRpk = yesNo(name, val);
        break;
      case 'policy_type':
        once(name, policyType);
        if (val !== 'sts' && val !== 'no-policy-found') throw new Invalid(`attribute "${name}" has bad value: "${val}"`);
        policyType = val;
        break;
      case 'policy_domain':
        once(name, policyDomain);
        nonEmpty(name, val);
        policyDomain = val;
        stsSeen.push(name);
        break;
      case 'policy_string':
        nonEmpty(name, val);
        policyStrings.push(val);
        stsSeen.push(name);
        break;
      case 'mx_host_pattern':
        nonEmpty(name, val);
        mxHostPatterns.push(val);
        stsSeen.push(name);
        break;
      case 'policy_failure':
        once(name, policyFailure);
        if (!POLICY_FAILURES.has(val)) throw new Invalid(`attribute "${name}" has bad value: "${val}"`);
        policyFailure = val;
        stsSeen.push(name);
        break;
      case 'policy_ttl':
        // Deprecated and ignored (postconf(5) smtp_tls_policy_maps).
        break;
      default:
        throw new Invalid(`invalid attribute name: "${nv.name}"`);
    }
  }
  // Postfix ≥3.10: the STS attributes require policy_type.
  if (policyType === undefined && stsSeen.length > 0 && STS_VALUES.has(stsSeen[0]!)) {
    throw new Invalid(`built-in policy has unexpected attribute "${stsSeen[0]}"`);
  }
  const sts: StsAttributes = {
    policyStrings,
    mxHostPatterns,
    ...(policyType !== undefined ? { policyType } : {}),
    ...(policyDomain !== undefined ? { policyDomain } : {}),
    ...(policyFailure !== undefined ? { policyFailure } : {}),
  };
  return {
    level,
    match,
    tafiles,
    sts,
    ...(ciphers !== undefined ? { ciphers } : {}),
    ...(protocols !== undefined ? { protocols } : {}),
    ...(exclude !== undefined ? { exclude } : {}),
    ...(servername !== undefined ? { servername } : {}),
    ...(connectionReuse !== undefined ? { connectionReuse } : {}),
    ...(enableRpk !== undefined ? { enableRpk } : {}),
  };
}
