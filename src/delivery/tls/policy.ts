/**
 * policy.ts — decide the TLS policy (smtp_tls_policy.c policy_create()) in
 * two steps, by asking the policy sources (sources/) and combining their
 * answers (combine.ts):
 *
 *   decideHop()     per next hop, before MX resolution: main.cf, the message's
 *                   TLS-Required: No, smtp_tls_policy_maps, smtp_tls_per_site;
 *   decideServer()  per server of the MX list, before connecting: the sources
 *                   that depend on the host (per-site host entries, DANE's
 *                   TLSA records, the MTA-STS mx patterns), refining the hop
 *                   decision.
 *
 * The sources, in precedence order: main.cf, TLS-Required: No,
 * smtp_tls_policy_maps, smtp_tls_per_site, DANE, MTA-STS (combine.ts has
 * the rules).
 *
 * then fill in main.cf defaults for everything the winning entry leaves out
 * (protocols, ciphers, exclusions, match lists, SNI, trust anchors).
 *
 * Contract:
 * - Never rejects for configuration or lookup trouble. Fail closed: an
 *   `invalid` answer gives an InvalidPolicy (built only by `invalidPolicy()`)
 *   with the source's deferral; a bad main.cf value or an unreadable tafile
 *   gives `client TLS configuration problem` 4.7.5 with Postfix's warnings.
 *   `TLS policy lookup for DEST/HOST: REASON` is logged per server, as
 *   smtp_connect.c does (Postfix decides the policy in its address loop):
 *   decideServer() logs it for an invalid hop decision and for a server the
 *   sources defer, with the server's host name.
 * - Every decision carries its trace (what every source said, who won) —
 *   what `sealpost tls explain` prints — and the RFC 8460 facts of the
 *   winner (`applied`).
 * - Policies are frozen. A server step that changes nothing returns the hop
 *   policy itself (the same object: SecureContexts and connection-cache keys
 *   stay shared).
 *
 * Not here: certificate evaluation (verify.ts), SecureContexts (context.ts),
 * caching (engine.ts), what each source looks up (sources/).
 */
import { asciiForLookup } from '../../smtp/idna.ts';
import { accessSync, constants as fsConstants } from 'node:fs';
import { domainToASCII } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import type { Config } from '../../config/types.ts';
import { parseNexthop, type WalkTable } from '../../maps/domain-walk.ts';
import type { PolicyResolver } from '../dns/resolver.ts';
import type { StsRequirement } from '../mta-sts/match.ts';
import type { StsPolicySource } from '../mta-sts/service.ts';
import type { AppliedPolicy, TlsRptPolicyType } from '../outcome.ts';
import { combine, type Combined, type PolicyTrace } from './combine.ts';
import { mustPkix, usesMandatorySettings } from './level.ts';
import type { PolicyEntry } from './policy-table.ts';
import { parseMainCfProtocols, parseTableProtocols } from './protocols.ts';
import { cipherString, levelExclusions } from './ciphers.ts';
import { CONFIG_PROBLEM, policyLookupWarning, policyWhere } from './reasons.ts';
import { daneSource } from './sources/dane.ts';
import { mainCfSource } from './sources/main-cf.ts';
import { stsSource } from './sources/mta-sts.ts';
import { perSiteSource } from './sources/per-site.ts';
import { policyMapsSource } from './sources/policy-maps.ts';
import { tlsRequiredNoSource } from './sources/tls-required.ts';
import type { MessageTlsFlags, PolicySource, TraceStep } from './sources/types.ts';
import type { ConnectPolicy, InvalidPolicy, ServerIdentity, ServerPolicy, TlsDeferral, TlsLevel, TlsPolicy } from './types.ts';

export { globalLevel, tlsDeprecationWarnings } from './sources/main-cf.ts';
export type { MessageTlsFlags } from './sources/types.ts';

/** What policy decisions need from outside: config, tables, a warning sink. */
export interface PolicyEnv {
  readonly config: Config;
  /** Open a table by spec (TableSet.get); may reject with a UserError. */
  readonly openTable: (spec: string) => Promise<WalkTable>;
  readonly warn: (text: string) => void;
  /** Parameter name prefix: `smtp` (or `lmtp`). */
  readonly prefix?: string;
  /** The sources to ask, in precedence order (default: policySources(env)). Tests and later issues add their own. */
  readonly sources?: readonly PolicySource[];
  /** The DNSSEC-validating resolver for TLSA records; undefined: no TLSA lookups. */
  readonly resolver?: PolicyResolver;
  /** The MTA-STS policy service (or a worker's client); undefined: no MTA-STS lookups. */
  readonly sts?: StsPolicySource;
}

/** Extra per-policy facts the engine needs but the shared TlsPolicy does not carry. */
export interface PolicyDetails {
  /** STS attributes from the entry (policy_failure=, mx_host_pattern=). */
  readonly policyFailure?: string;
  readonly mxHostPatterns: readonly string[];
  readonly enableRpk: boolean;
}

/** One frozen policy plus engine-private details and the trace that decided it. */
export interface DecidedPolicy {
  readonly policy: TlsPolicy;
  readonly details: PolicyDetails;
  readonly trace: PolicyTrace;
}

/** A hop decision keeps the hop answers for the server step. */
export interface HopDecision extends DecidedPolicy {
  readonly steps: readonly TraceStep[];
  readonly nexthopDomain: string;
  readonly flags: MessageTlsFlags;
}

export interface ServerDecision {
  readonly verdict: ServerPolicy;
  readonly details: PolicyDetails;
  readonly trace: PolicyTrace;
}

const NO_DETAILS: PolicyDetails = Object.freeze({ mxHostPatterns: [], enableRpk: false });
const EMPTY_TRACE: PolicyTrace = Object.freeze({ steps: [], winner: 'default', why: '' });

/** The sources, in precedence order: main.cf, TLS-Required: No, smtp_tls_policy_maps, smtp_tls_per_site, DANE, MTA-STS. */
export function policySources(env: PolicyEnv): PolicySource[] {
  const p = env.prefix ?? 'smtp';
  const maps = env.config.getList(`${p}_tls_policy_maps`);
  const sources = [
    mainCfSource(env.config, p, env.warn),
    tlsRequiredNoSource(),
    policyMapsSource({ specs: maps, openTable: env.openTable, warn: env.warn, title: `${p}_tls_policy_maps` }),
  ];
  // smtp_session.c: smtp_tls_per_site is ignored when smtp_tls_policy_maps is set.
  const perSite = maps.length === 0 ? env.config.getList(`${p}_tls_per_site`) : [];
  if (perSite.length > 0) sources.push(perSiteSource({ specs: perSite, openTable: env.openTable, warn: env.warn, title: `${p}_tls_per_site` }));
  sources.push(daneSource({ config: env.config, resolver: env.resolver, warn: env.warn, reportDomain }));
  // MTA-STS is an SMTP thing (RFC 8461 §1): not for LMTP.
  sources.push(stsSource({ enabled: p === 'smtp' && env.config.getBool('sealpost_mta_sts'), sts: env.sts, warn: env.warn }));
  return sources;
}

/** The next hop's domain lower-cased in A-label form (RFC 8460 policy-domain). */
export function reportDomain(domain: string): string {
  const lower = domain.toLowerCase();
  return domainToASCII(lower) || lower;
}

function stsType(entry: PolicyEntry | undefined): TlsRptPolicyType | undefined {
  const t = entry?.sts.policyType;
  return t === 'sts' || t === 'no-policy-found' ? t : undefined;
}

/** The RFC 8460 view of a decision (outcome.ts AppliedPolicy). */
function appliedOf(c: Combined, nexthopDomain: string, level: TlsLevel, configuredLevel?: TlsLevel): AppliedPolicy {
  const entry = c.kind === 'connect' ? c.entry : undefined;
  const report = c.kind === 'invalid' ? undefined : c.report;
  return Object.freeze({
    source: c.winner,
    type: report?.type ?? stsType(entry) ?? 'no-policy-found',
    domain: report?.domain ?? (entry?.sts.policyDomain !== undefined ? reportDomain(entry.sts.policyDomain) : reportDomain(nexthopDomain)),
    strings: Object.freeze([...(report?.strings ?? entry?.sts.policyStrings ?? [])]),
    mxHostPatterns: Object.freeze([...(report?.mxHostPatterns ?? entry?.sts.mxHostPatterns ?? [])]),
    level,
    configuredLevel: configuredLevel ?? level,
    ...(c.tableEntry ? { tableEntry: c.tableEntry } : {}),
    ...(report?.stsMode ? { stsMode: report.stsMode } : {}),
    ...(report?.stsId ? { stsId: report.stsId } : {}),
    ...(c.kind === 'connect' && c.dane?.halfdane ? { halfDane: true } : {}),
  });
}

/** The one place an invalid policy is built. */
export function invalidPolicy(
  nexthop: string,
  nexthopDomain: string,
  deferral: TlsDeferral,
  source: string,
  flags: { readonly tlsRequiredNo: boolean },
  applied: AppliedPolicy,
  matched?: TlsPolicy['matchedEntry'],
): InvalidPolicy {
  return Object.freeze({
    level: 'invalid',
    nexthop,
    nexthopDomain,
    invalid: deferral,
    source,
    tlsRequiredNo: flags.tlsRequiredNo,
    applied,
    ...(matched ? { matchedEntry: matched } : {}),
  });
}

/** An invalid decision, for a combined result or any failure on the way; at the server step with the smtp_connect.c warning for `host`. */
function failed(env: PolicyEnv, d: Pick<HopDecision, 'flags' | 'nexthopDomain'> & { nexthop: string }, c: Combined, deferral: TlsDeferral, host?: string): DecidedPolicy {
  if (host !== undefined) env.warn(policyLookupWarning(d.nexthop, host, deferral.reason));
  const applied = appliedOf(c, d.nexthopDomain, 'none');
  return { policy: invalidPolicy(d.nexthop, d.nexthopDomain, deferral, c.label, d.flags, applied, c.tableEntry), details: NO_DETAILS, trace: c.trace };
}

type Answer = TraceStep['answer'];

/** Ask each source that has the step, in order; each sees the answers given before it at this step. */
async function ask(
  sources: readonly PolicySource[], step: 'hop' | 'server',
  run: (s: PolicySource, earlier: ReadonlyMap<TraceStep['source'], Answer>) => Promise<Answer> | Answer | undefined,
): Promise<TraceStep[]> {
  const out: TraceStep[] = [];
  const earlier = new Map<TraceStep['source'], Answer>();
  for (const s of sources) {
    const a = run(s, earlier);
    if (a === undefined) continue;
    const answer = await a;
    out.push({ source: s.name, step, answer });
    earlier.set(s.name, answer);
  }
  return out;
}

function dnssecEnabled(config: Config, p: string): boolean {
  return config.get(`${p}_dns_support_level`).trim() === 'dnssec' && /\bdns\b/.test(config.get(`${p}_host_lookup`));
}

/** The hop step: ask every source, combine, complete. */
export async function decideHop(env: PolicyEnv, nexthop: string, flags: MessageTlsFlags): Promise<HopDecision> {
  const p = env.prefix ?? 'smtp';
  let nexthopDomain: string;
  try {
    // Name checks, SNI and the published-policy domain use the A-label form (smtp(8) with IDNA
    // support); the tables are still asked with the next hop as routing gave it.
    const host = parseNexthop(nexthop).host;
    nexthopDomain = asciiForLookup(host) ?? host;
  } catch (err) {
    env.warn(`bad next-hop destination "${nexthop}": ${(err as Error).message}`);
    const applied = Object.freeze({ source: 'default' as const, type: 'no-policy-found' as const, domain: nexthop, strings: [], mxHostPatterns: [], level: 'none' as const, configuredLevel: 'none' as const });
    return { policy: invalidPolicy(nexthop, nexthop, CONFIG_PROBLEM, 'next hop', flags, applied), details: NO_DETAILS, trace: EMPTY_TRACE, steps: [], nexthopDomain: nexthop, flags };
  }
  const sources = env.sources ?? policySources(env);
  const steps = await ask(sources, 'hop', (s, earlier) => s.hop?.({ nexthop, nexthopDomain, message: flags, earlier }));
  const c = combine(steps, { nexthop, dnssecEnabled: dnssecEnabled(env.config, p) });
  for (const w of c.warnings) env.warn(w);
  const d = { nexthop, nexthopDomain, flags };
  if (c.kind !== 'connect') return { ...failed(env, d, c, c.kind === 'skip-server' ? CONFIG_PROBLEM : c.deferral), steps, nexthopDomain, flags };
  return { ...completePolicy(env, d, c), steps, nexthopDomain, flags };
}

/**
 * The server step for one server of a connectable hop decision. Sources
 * without a server step cost nothing: the hop policy is returned as it is.
 */
export async function decideServer(env: PolicyEnv, hop: HopDecision, server: ServerIdentity): Promise<ServerDecision> {
  const policy = hop.policy;
  if (policy.level === 'invalid') {
    // smtp_connect.c smtp_connect_inet(): the policy is looked up per address; a failure is
    // warned about with the host name and the next address is tried.
    env.warn(policyLookupWarning(policy.nexthop, server.hostname, policy.invalid.reason));
    return { verdict: { kind: 'defer', deferral: policy.invalid, applied: policy.applied, noRecord: true }, details: hop.details, trace: hop.trace };
  }
  const sources = (env.sources ?? policySources(env)).filter((s) => s.server !== undefined);
  const unchanged = (): ServerDecision => ({ verdict: { kind: 'connect', policy }, details: hop.details, trace: hop.trace });
  if (sources.length === 0) return unchanged();
  const q = { nexthop: policy.nexthop, nexthopDomain: hop.nexthopDomain, message: hop.flags, server, hopLevel: policy.configuredLevel ?? policy.level };
  const atHop = new Map(hop.steps.map((s) => [s.source, s.answer]));
  const serverSteps = await ask(sources, 'server', (s) => s.server?.(q, atHop.get(s.name)));
  const same = (s: TraceStep): boolean => {
    const before = atHop.get(s.source);
    return s.answer === before || (s.answer.kind === 'silent' && (before === undefined || before.kind === 'silent'));
  };
  if (serverSteps.every(same)) return unchanged();
  const p = env.prefix ?? 'smtp';
  const c = combine([...hop.steps, ...serverSteps], { nexthop: policy.nexthop, dnssecEnabled: dnssecEnabled(env.config, p) });
  for (const w of c.warnings) env.warn(w);
  const applied = appliedOf(c, hop.nexthopDomain, c.kind === 'connect' ? c.level : policy.level, c.kind === 'connect' ? c.configuredLevel : undefined);
  if (c.kind === 'skip-server') {
    return { verdict: { kind: 'skip', reason: c.reason, dsn: c.dsn, ...(c.resultType ? { resultType: c.resultType } : {}), applied }, details: hop.details, trace: c.trace };
  }
  if (c.kind !== 'connect') {
    // smtp_connect.c: "TLS policy lookup for %s/%s: %s", then the next server.
    env.warn(policyLookupWarning(policy.nexthop, server.hostname, c.deferral.reason));
    const resultType = c.kind === 'defer-server' ? c.resultType : undefined;
    return { verdict: { kind: 'defer', deferral: c.deferral, ...(resultType ? { resultType } : { noRecord: true }), applied }, details: hop.details, trace: c.trace };
  }
  const done = completePolicy(env, { nexthop: policy.nexthop, nexthopDomain: hop.nexthopDomain, flags: hop.flags }, c, server.hostname);
  if (done.policy.level === 'invalid') return { verdict: { kind: 'defer', deferral: done.policy.invalid, applied, noRecord: true }, details: hop.details, trace: c.trace };
  return { verdict: { kind: 'connect', policy: done.policy }, details: done.details, trace: c.trace };
}

/** Split a main.cf list on whitespace, commas and colons (Postfix "\t\n\r, :"). */
function splitCmatch(text: string): string[] {
  return text.split(/[\s,:]+/).filter((s) => s !== '');
}

/** smtp_tls_fingerprint_cert_match: whitespace/comma separated ("\t\n\r, "). */
function splitFingerprints(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s !== '');
}

type Completion<T> = T | { readonly bad: string };

/** Protocols (protocols= or smtp_tls_(mandatory_)protocols) and ciphers (ciphers=/exclude= or main.cf). */
function protocolsAndCiphers(c: Config, p: string, level: TlsLevel, entry: PolicyEntry | undefined, where: string): Completion<{ min: string; max: string; ciphers: string }> {
  const mandatory = usesMandatorySettings(level);
  const protoText = entry?.protocols ?? c.get(mandatory ? `${p}_tls_mandatory_protocols` : `${p}_tls_protocols`);
  const range = entry?.protocols !== undefined ? parseTableProtocols(protoText) : parseMainCfProtocols(protoText);
  if ('error' in range) return { bad: entry?.protocols !== undefined ? `${where}: ${range.error}` : `${p}_tls_${mandatory ? 'mandatory_' : ''}protocols: ${range.error}` };
  // exclude= preempts both main.cf exclusion lists.
  const grade = entry?.ciphers ?? c.get(mandatory ? `${p}_tls_mandatory_ciphers` : `${p}_tls_ciphers`);
  const exclude = entry?.exclude !== undefined
    ? [entry.exclude]
    : [c.get(`${p}_tls_exclude_ciphers`), ...(mandatory ? [c.get(`${p}_tls_mandatory_exclude_ciphers`)] : [])];
  const ciphers = cipherString({
    grade,
    cipherlists: { high: c.get('tls_high_cipherlist'), medium: c.get('tls_medium_cipherlist'), null: c.get('tls_null_cipherlist') },
    exclude: [...exclude, ...levelExclusions(level)],
  });
  if (typeof ciphers !== 'string') return { bad: `${entry?.ciphers !== undefined || entry?.exclude !== undefined ? where : `${p}_tls_ciphers`}: ${ciphers.error}` };
  return { min: range.min, max: range.max, ciphers };
}

/** match= or the main.cf match list for the level; fingerprint needs at least one. */
function matchList(c: Config, p: string, level: TlsLevel, entry: PolicyEntry | undefined, nexthop: string): Completion<string[]> {
  if (level === 'fingerprint') {
    const match = entry && entry.match.length > 0 ? [...entry.match] : splitFingerprints(c.get(`${p}_tls_fingerprint_cert_match`));
    if (match.length === 0) return { bad: `nexthop domain ${nexthop}: configured at fingerprint security level, but with no fingerprints to match.` };
    return match;
  }
  if (level === 'verify' || level === 'secure') {
    return entry && entry.match.length > 0 ? [...entry.match] : splitCmatch(c.get(level === 'verify' ? `${p}_tls_verify_cert_match` : `${p}_tls_secure_cert_match`));
  }
  return [];
}

/** tafile= or smtp_tls_trust_anchor_file (PKIX levels only); each must be readable. */
function trustAnchors(c: Config, p: string, level: TlsLevel, entry: PolicyEntry | undefined): Completion<string[]> {
  if (!mustPkix(level)) return [];
  const files = (entry && entry.tafiles.length > 0 ? [...entry.tafiles] : c.getList(`${p}_tls_trust_anchor_file`)).map((f) => (isAbsolute(f) ? f : resolve(c.configDir, f)));
  for (const f of files) {
    try {
      accessSync(f, fsConstants.R_OK);
    } catch {
      return { bad: `error loading trust anchor file ${f}: cannot read it` };
    }
  }
  return files;
}

/** The lowest protocol of two (`TLSv1` < `TLSv1.1` < `TLSv1.2` < `TLSv1.3`). */
function atLeast(min: string, floor: string): string {
  const order = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
  return order.indexOf(min) >= order.indexOf(floor) ? min : floor;
}

/**
 * What DANE and MTA-STS change of a completed policy: SNI (the TLSA base
 * domain, RFC 7672 §8.1; the MX name, RFC 8461 §7.1), the names an MTA-STS
 * `secure` checks (the MX host only, §4.2), TLS ≥ 1.2 under enforce (§7.2),
 * the roots MTA-STS trusts.
 */
function publishedOverrides(c: Extract<Combined, { kind: 'connect' }>, min: string): Partial<ConnectPolicy> {
  if (c.dane) return { dane: c.dane, servername: c.dane.baseDomain, match: Object.freeze([]), trustAnchorFiles: Object.freeze([]) };
  if (!c.sts) return {};
  const enforce = c.sts.mode === 'enforce';
  const req: StsRequirement | undefined = c.stsRequirement;
  return {
    sts: c.sts,
    servername: c.sts.mxHost,
    ...(enforce ? { minProtocol: atLeast(min, 'TLSv1.2') } : {}),
    ...(req ? { match: req.match, trustAnchorFiles: Object.freeze([]) } : {}),
    ...(req || !enforce ? { trustRoots: 'sts' as const } : {}),
  };
}

/** Fill in main.cf defaults for what the entry left out (policy_create() after the lookups). */
function completePolicy(env: PolicyEnv, d: { nexthop: string; nexthopDomain: string; flags: MessageTlsFlags }, c: Extract<Combined, { kind: 'connect' }>, host?: string): DecidedPolicy {
  const p = env.prefix ?? 'smtp';
  const cfg = env.config;
  const { level, entry } = c;
  const base = {
    nexthop: d.nexthop,
    nexthopDomain: d.nexthopDomain,
    source: c.label,
    tlsRequiredNo: d.flags.tlsRequiredNo,
    applied: appliedOf(c, d.nexthopDomain, level, c.configuredLevel),
    ...(c.tableEntry ? { matchedEntry: c.tableEntry } : {}),
    ...(c.configuredLevel ? { configuredLevel: c.configuredLevel } : {}),
  };
  if (level === 'none') {
    const policy: ConnectPolicy = { ...base, level, match: [], ciphers: '', trustAnchorFiles: [], connectionReuse: false, ...(c.sts ? { sts: c.sts } : {}) };
    return { policy: Object.freeze(policy), details: NO_DETAILS, trace: c.trace };
  }
  const pc = protocolsAndCiphers(cfg, p, level, entry, policyWhere(`${p}_tls_policy_maps`, d.nexthop));
  const match = 'bad' in pc ? pc : matchList(cfg, p, level, entry, d.nexthop);
  const anchors = 'bad' in match ? match : c.stsRequirement || c.dane ? [] : trustAnchors(cfg, p, level, entry);
  if ('bad' in anchors) {
    env.warn(anchors.bad);
    return failed(env, d, c, CONFIG_PROBLEM, host);
  }
  const { min, max, ciphers } = pc as { min: string; max: string; ciphers: string };
  const sni = entry?.servername ?? cfg.get(`${p}_tls_servername`).trim();
  const policy: ConnectPolicy = {
    ...base,
    level,
    match: Object.freeze(match as string[]),
    minProtocol: min,
    maxProtocol: max,
    ciphers,
    ...(sni !== '' ? { servername: sni } : {}),
    trustAnchorFiles: Object.freeze(anchors),
    connectionReuse: entry?.connectionReuse ?? cfg.getBool(`${p}_tls_connection_reuse`),
    ...publishedOverrides(c, min),
  };
  const details: PolicyDetails = Object.freeze({
    mxHostPatterns: entry?.sts.mxHostPatterns ?? [],
    enableRpk: entry?.enableRpk ?? cfg.getBool(`${p}_tls_enable_rpk`),
    ...(entry?.sts.policyFailure !== undefined ? { policyFailure: entry.sts.policyFailure } : {}),
  });
  return { policy: Object.freeze(policy), details, trace: c.trace };
}
