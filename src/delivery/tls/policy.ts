/**
 * policy.ts — decide the TLS policy for one next hop before any connection
 * (smtp_tls_policy.c policy_create()): the main.cf default level (or what the
 * obsolete smtp_use_tls / smtp_enforce_tls / smtp_tls_enforce_peername mean),
 * then smtp_tls_policy_maps (first match wins, next hop verbatim, `.parent`
 * only for bare domains — domain-walk.ts tlsPolicyLookup) or the obsolete
 * smtp_tls_per_site, then main.cf defaults for everything the entry leaves
 * out (protocols, ciphers, exclusions, match lists, SNI, trust anchors).
 *
 * Contract:
 * - Never rejects. Fail closed: a table lookup error gives level `invalid`
 *   with `Temporary lookup error` 4.3.0; a malformed entry, a bad main.cf
 *   value or an unreadable tafile gives `client TLS configuration problem`
 *   4.7.5, with Postfix's warnings logged (`smtp_tls_policy_maps, next-hop
 *   destination "X": ...` and `TLS policy lookup for X/Y: ...`).
 * - RFC 8689 §4.2 / Postfix ≥3.10: `TLS-Required: No` skips every table and
 *   caps the level at `may`.
 * - The result is frozen.
 *
 * Not here: certificate evaluation (verify.ts), SecureContexts (context.ts).
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Config } from '../../config/types.ts';
import { parseNexthop, tlsPolicyLookup, type WalkTable, type WalkResult } from '../../maps/domain-walk.ts';
import { OBSOLETE } from '../../config/params.ts';
import type { TlsDeferral, TlsLevel, TlsPolicy } from './types.ts';
import { daneWithoutTlsa, levelRank, mustPkix, parseLevel, usesMandatorySettings } from './level.ts';
import { parsePolicyEntry, type PolicyEntry } from './policy-table.ts';
import { parseMainCfProtocols, parseTableProtocols } from './protocols.ts';
import { cipherString, levelExclusions } from './ciphers.ts';
import { CONFIG_PROBLEM, TEMP_LOOKUP_ERROR, policyLookupWarning, policyWhere } from './reasons.ts';

/** What policy decisions need from outside: config, tables, a warning sink. */
export interface PolicyEnv {
  readonly config: Config;
  /** Open a table by spec (TableSet.get); may reject with a UserError. */
  readonly openTable: (spec: string) => Promise<WalkTable>;
  readonly warn: (text: string) => void;
  /** Parameter name prefix: `smtp` (or `lmtp`). */
  readonly prefix?: string;
}

export interface MessageTlsFlags {
  readonly tlsRequiredNo: boolean;
  readonly requireTls: boolean;
}

/** Extra per-policy facts the engine needs but the shared TlsPolicy does not carry. */
export interface PolicyDetails {
  /** STS attributes from the entry (policy_failure=, mx_host_pattern=). */
  readonly policyFailure?: string;
  readonly mxHostPatterns: readonly string[];
  readonly enableRpk: boolean;
}

/** One frozen policy plus engine-private details. */
export interface DecidedPolicy {
  readonly policy: TlsPolicy;
  readonly details: PolicyDetails;
}

const NO_DETAILS: PolicyDetails = Object.freeze({ mxHostPatterns: [], enableRpk: false });

/** The global level (smtp_tls_policy.c global_tls_level()); `invalid` text when smtp_tls_security_level is bad. */
export function globalLevel(config: Config, prefix = 'smtp'): TlsLevel | { error: string } {
  const text = config.get(`${prefix}_tls_security_level`).trim();
  if (text !== '') {
    const l = parseLevel(text);
    return l ?? { error: `invalid tls security level: "${text}"` };
  }
  // Obsolete settings, as Postfix maps them (DEPRECATION_README).
  if (config.getBool(`${prefix}_enforce_tls`)) return config.getBool(`${prefix}_tls_enforce_peername`) ? 'verify' : 'encrypt';
  return config.getBool(`${prefix}_use_tls`) ? 'may' : 'none';
}

/**
 * One warning per obsolete TLS client parameter set in main.cf, naming the
 * replacement (DEPRECATION_README), for the daemon's start-up check.
 */
export function tlsDeprecationWarnings(config: Config): string[] {
  const out: string[] = [];
  for (const name of ['smtp_use_tls', 'smtp_enforce_tls', 'smtp_tls_enforce_peername', 'smtp_tls_per_site', 'smtpd_use_tls', 'smtpd_enforce_tls']) {
    if (!config.isSet(name)) continue;
    const instead = OBSOLETE[name] ?? 'smtp_tls_security_level';
    const ignored = name.startsWith('smtp_') && name !== 'smtp_tls_per_site' && config.get('smtp_tls_security_level').trim() !== '' ? ' (ignored: smtp_tls_security_level is set)' : '';
    out.push(`support for parameter "${name}" will be removed; instead, specify "${instead}"${ignored}`);
  }
  if (config.get('smtp_tls_per_site').trim() !== '' && config.get('smtp_tls_policy_maps').trim() !== '') {
    // smtp_session.c smtp_tls_list_init().
    out.push('smtp_tls_per_site ignored when smtp_tls_policy_maps is not empty.');
  }
  return out;
}

/** Split a main.cf list on whitespace, commas and colons (Postfix "\t\n\r, :"). */
function splitCmatch(text: string): string[] {
  return text.split(/[\s,:]+/).filter((s) => s !== '');
}

function invalidPolicy(nexthop: string, nexthopDomain: string, d: TlsDeferral, source: string, flags: MessageTlsFlags, matched?: TlsPolicy['matchedEntry']): DecidedPolicy {
  const policy: TlsPolicy = {
    level: 'invalid',
    nexthop,
    nexthopDomain,
    invalid: d,
    match: [],
    ciphers: '',
    trustAnchorFiles: [],
    connectionReuse: false,
    source,
    tlsRequiredNo: flags.tlsRequiredNo,
    ...(matched ? { matchedEntry: matched } : {}),
  };
  return { policy: Object.freeze(policy), details: NO_DETAILS };
}

interface TableOutcome {
  readonly kind: 'none' | 'entry' | 'invalid';
  readonly entry?: PolicyEntry;
  readonly level?: TlsLevel;
  readonly deferral?: TlsDeferral;
  readonly source?: string;
  readonly matched?: TlsPolicy['matchedEntry'];
}

/** smtp_tls_policy_maps walk and parse (tls_policy_lookup()). */
async function lookupPolicyMaps(env: PolicyEnv, specs: readonly string[], nexthop: string, title: string): Promise<TableOutcome> {
  const where = policyWhere(title, nexthop);
  let tables: WalkTable[];
  try {
    tables = await Promise.all(specs.map((s) => env.openTable(s)));
  } catch (err) {
    env.warn(`${title}: ${(err as Error).message}`);
    return { kind: 'invalid', deferral: TEMP_LOOKUP_ERROR, source: title };
  }
  const r: WalkResult = await tlsPolicyLookup(tables, nexthop);
  if (r.kind === 'notfound') return { kind: 'none' };
  if (r.kind === 'error') {
    // The table's own complaint, then smtp_tls_policy.c's line.
    env.warn(r.error.message);
    env.warn(`${where}: policy table lookup error`);
    return { kind: 'invalid', deferral: TEMP_LOOKUP_ERROR, source: r.table };
  }
  const matched = Object.freeze({ table: r.table, key: r.key, value: r.value });
  const parsed = parsePolicyEntry(r.value);
  for (const w of parsed.warnings) env.warn(`${where}: ${w}`);
  if (!parsed.ok) {
    env.warn(`${where}: ${parsed.error}`);
    return { kind: 'invalid', deferral: CONFIG_PROBLEM, source: r.table, matched };
  }
  return { kind: 'entry', entry: parsed.entry, level: parsed.entry.level, source: r.table, matched };
}

/** Obsolete smtp_tls_per_site (tls_site_lookup()): NONE, MAY, MUST_NOPEERMATCH, MUST. */
async function lookupPerSite(env: PolicyEnv, specs: readonly string[], nexthop: string, global: TlsLevel): Promise<TableOutcome> {
  let tables: WalkTable[];
  try {
    tables = await Promise.all(specs.map((s) => env.openTable(s)));
  } catch (err) {
    env.warn(`smtp_tls_per_site: ${(err as Error).message}`);
    return { kind: 'invalid', deferral: TEMP_LOOKUP_ERROR, source: 'smtp_tls_per_site' };
  }
  for (const t of tables) {
    const r = await t.lookup(nexthop);
    if (r.kind === 'error') {
      env.warn(`${t.spec}: next-hop destination "${nexthop}": per-site table lookup error`);
      return { kind: 'invalid', deferral: TEMP_LOOKUP_ERROR, source: t.spec };
    }
    if (r.kind === 'notfound') continue;
    const matched = Object.freeze({ table: t.spec, key: nexthop, value: r.value });
    const v = r.value.trim().toUpperCase();
    const level: TlsLevel | undefined =
      v === 'NONE' ? 'none' : v === 'MAY' ? 'may' : v === 'MUST_NOPEERMATCH' ? 'encrypt' : v === 'MUST' ? 'verify' : undefined;
    if (level === undefined) {
      env.warn(`${t.spec}: unknown TLS policy '${r.value}' for next-hop destination ${nexthop}`);
      return { kind: 'invalid', deferral: CONFIG_PROBLEM, source: t.spec, matched };
    }
    // A wildcard per-site MAY yields to a stronger global level.
    const effective = level === 'may' && levelRank(global) > levelRank('may') ? global : level;
    return { kind: 'entry', level: effective, source: t.spec, matched };
  }
  return { kind: 'none' };
}

/** Decide the policy for one next hop. */
export async function decidePolicy(env: PolicyEnv, nexthop: string, flags: MessageTlsFlags): Promise<DecidedPolicy> {
  const p = env.prefix ?? 'smtp';
  const c = env.config;
  let nexthopDomain: string;
  try {
    nexthopDomain = parseNexthop(nexthop).host;
  } catch (err) {
    env.warn(policyLookupWarning(nexthop, nexthop, (err as Error).message));
    return invalidPolicy(nexthop, nexthop, CONFIG_PROBLEM, 'next hop', flags);
  }
  const fail = (d: TlsDeferral, source: string, matched?: TlsPolicy['matchedEntry']) => {
    env.warn(policyLookupWarning(nexthop, nexthopDomain, d.reason));
    return invalidPolicy(nexthop, nexthopDomain, d, source, flags, matched);
  };

  const g = globalLevel(c, p);
  if (typeof g !== 'string') {
    env.warn(g.error);
    return fail(CONFIG_PROBLEM, `${p}_tls_security_level`);
  }
  let level: TlsLevel = g;
  let source = `${p}_tls_security_level`;
  let entry: PolicyEntry | undefined;
  let matched: TlsPolicy['matchedEntry'];

  if (flags.tlsRequiredNo) {
    // RFC 8689 §4.2 (Postfix ≥3.10 policy_create): no table lookups, level capped at may.
    if (levelRank(level) > levelRank('may')) level = 'may';
    source = 'TLS-Required: No';
  } else {
    const maps = c.getList(`${p}_tls_policy_maps`);
    const perSite = c.getList(`${p}_tls_per_site`);
    let out: TableOutcome = { kind: 'none' };
    if (maps.length > 0) out = await lookupPolicyMaps(env, maps, nexthop, `${p}_tls_policy_maps`);
    else if (perSite.length > 0) out = await lookupPerSite(env, perSite, nexthop, g);
    if (out.kind === 'invalid') return fail(out.deferral!, out.source!, out.matched);
    if (out.kind === 'entry') {
      level = out.level!;
      entry = out.entry;
      source = out.source!;
      matched = out.matched;
    }
  }

  // dane/dane-only: sealpost has no TLSA lookups yet — a destination without TLSA records.
  let configuredLevel: TlsLevel | undefined;
  if (level === 'dane' || level === 'dane-only') {
    const dnssec = c.get(`${p}_dns_support_level`).trim() === 'dnssec' && /\bdns\b/.test(c.get(`${p}_host_lookup`));
    const d = daneWithoutTlsa(level, nexthop, dnssec);
    if (d.warning) env.warn(d.warning);
    if (d.kind === 'invalid') return fail(d.deferral, source, matched);
    configuredLevel = level;
    level = d.level;
  }
  return completePolicy(env, { nexthop, nexthopDomain, level, source, flags, ...(entry ? { entry } : {}), ...(matched ? { matched } : {}), ...(configuredLevel ? { configuredLevel } : {}) }, fail);
}

interface Decided {
  readonly nexthop: string;
  readonly nexthopDomain: string;
  readonly level: TlsLevel;
  readonly configuredLevel?: TlsLevel;
  readonly source: string;
  readonly flags: MessageTlsFlags;
  readonly entry?: PolicyEntry;
  readonly matched?: TlsPolicy['matchedEntry'];
}

/** Fill in main.cf defaults for what the entry left out (policy_create() after the lookups). */
function completePolicy(env: PolicyEnv, d: Decided, fail: (x: TlsDeferral, source: string, m?: TlsPolicy['matchedEntry']) => DecidedPolicy): DecidedPolicy {
  const p = env.prefix ?? 'smtp';
  const c = env.config;
  const { level, entry } = d;
  const where = policyWhere(`${p}_tls_policy_maps`, d.nexthop);
  const bad = (text: string) => {
    env.warn(text);
    return fail(CONFIG_PROBLEM, d.source, d.matched);
  };
  const base = {
    nexthop: d.nexthop,
    nexthopDomain: d.nexthopDomain,
    source: d.source,
    tlsRequiredNo: d.flags.tlsRequiredNo,
    ...(d.matched ? { matchedEntry: d.matched } : {}),
    ...(d.configuredLevel ? { configuredLevel: d.configuredLevel } : {}),
  };
  if (level === 'none') {
    const policy: TlsPolicy = { ...base, level, match: [], ciphers: '', trustAnchorFiles: [], connectionReuse: false };
    return { policy: Object.freeze(policy), details: NO_DETAILS };
  }
  const mandatory = usesMandatorySettings(level);

  // Protocols: protocols= or smtp_tls_(mandatory_)protocols.
  const protoText = entry?.protocols ?? c.get(mandatory ? `${p}_tls_mandatory_protocols` : `${p}_tls_protocols`);
  const range = entry?.protocols !== undefined ? parseTableProtocols(protoText) : parseMainCfProtocols(protoText);
  if ('error' in range) return bad(entry?.protocols !== undefined ? `${where}: ${range.error}` : `${p}_tls_${mandatory ? 'mandatory_' : ''}protocols: ${range.error}`);

  // Ciphers: ciphers= or smtp_tls_(mandatory_)ciphers; exclude= preempts both main.cf exclusion lists.
  const grade = entry?.ciphers ?? c.get(mandatory ? `${p}_tls_mandatory_ciphers` : `${p}_tls_ciphers`);
  const exclude =
    entry?.exclude !== undefined
      ? [entry.exclude]
      : [c.get(`${p}_tls_exclude_ciphers`), ...(mandatory ? [c.get(`${p}_tls_mandatory_exclude_ciphers`)] : [])];
  const ciphers = cipherString({
    grade,
    cipherlists: { high: c.get('tls_high_cipherlist'), medium: c.get('tls_medium_cipherlist'), null: c.get('tls_null_cipherlist') },
    exclude: [...exclude, ...levelExclusions(level)],
  });
  if (typeof ciphers !== 'string') return bad(`${entry?.ciphers !== undefined || entry?.exclude !== undefined ? where : `${p}_tls_ciphers`}: ${ciphers.error}`);

  // Match lists.
  let match: string[] = [];
  if (level === 'fingerprint') {
    match = entry && entry.match.length > 0 ? [...entry.match] : splitFingerprints(c.get(`${p}_tls_fingerprint_cert_match`));
    if (match.length === 0) {
      return bad(`nexthop domain ${d.nexthop}: configured at fingerprint security level, but with no fingerprints to match.`);
    }
  } else if (level === 'verify' || level === 'secure') {
    match = entry && entry.match.length > 0 ? [...entry.match] : splitCmatch(c.get(level === 'verify' ? `${p}_tls_verify_cert_match` : `${p}_tls_secure_cert_match`));
  }

  // Trust anchors: tafile= or smtp_tls_trust_anchor_file (PKIX levels only).
  let trustAnchorFiles: string[] = [];
  if (mustPkix(level)) {
    trustAnchorFiles = entry && entry.tafiles.length > 0 ? [...entry.tafiles] : c.getList(`${p}_tls_trust_anchor_file`);
    trustAnchorFiles = trustAnchorFiles.map((f) => (isAbsolute(f) ? f : resolve(c.configDir, f)));
    for (const f of trustAnchorFiles) {
      try {
        accessSync(f, fsConstants.R_OK);
      } catch {
        return bad(`error loading trust anchor file ${f}: cannot read it`);
      }
    }
  }

  const sni = entry?.servername ?? c.get(`${p}_tls_servername`).trim();
  const policy: TlsPolicy = {
    ...base,
    level,
    match: Object.freeze(match),
    minProtocol: range.min,
    maxProtocol: range.max,
    ciphers,
    ...(sni !== '' ? { servername: sni } : {}),
    trustAnchorFiles: Object.freeze(trustAnchorFiles),
    connectionReuse: entry?.connectionReuse ?? c.getBool(`${p}_tls_connection_reuse`),
  };
  const details: PolicyDetails = Object.freeze({
    mxHostPatterns: entry?.sts.mxHostPatterns ?? [],
    enableRpk: entry?.enableRpk ?? c.getBool(`${p}_tls_enable_rpk`),
    ...(entry?.sts.policyFailure !== undefined ? { policyFailure: entry.sts.policyFailure } : {}),
  });
  return { policy: Object.freeze(policy), details };
}

/** smtp_tls_fingerprint_cert_match: whitespace/comma separated ("\t\n\r, "). */
function splitFingerprints(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s !== '');
}
