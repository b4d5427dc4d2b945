/**
 * dane.ts — DANE for SMTP as Postfix 3.11 does it (RFC 7672, RFC 7671;
 * smtp_tls_policy.c dane_init(), tls_dane.c, OpenSSL's DANE verifier): what a
 * `dane`/`dane-only` destination becomes for one MX host once its TLSA RRset
 * is known, and whether the presented certificate chain matches the records.
 *
 * Contract (all pure; certificates come as verify.ts CertFacts, leaf first):
 * - `parseDaneDigests(text)`: tls_dane_digests (`sha512 sha256`, `name=N`),
 *   with Postfix's warnings; the first listed digest is the most preferred.
 * - `daneBeforeLookup(ctx)`: the checks that need no TLSA lookup (DNSSEC
 *   lookups configured? insecure MX under dane-only or insecure-MX policy
 *   `may`?); undefined means "look TLSA up now".
 * - `daneAfterLookup(ctx, tlsa)`: from a tlsa.ts TlsaLookup to a decision:
 *   `dane` (records to match, SNI = the TLSA base domain, the DANE-TA name
 *   list "nexthop, hostname", `halfdane` for an insecure MX under insecure-MX
 *   policy `dane`), `fallback` (`may` without TLSA; `encrypt` when every
 *   record is unusable), or `defer` (lookup error; dane-only without usable
 *   DANE) with Postfix's reason and the RFC 8460 result type.
 * - `matchDane(input)`: the verdict on a presented chain. DANE-EE(3) matches
 *   the leaf certificate (selector 0) or its SPKI (selector 1) — no name, no
 *   expiry checks. DANE-TA(2) matches a certificate above the leaf (never the
 *   leaf itself, as OpenSSL), or a bare public key (`2 1 0`) that signed a
 *   presented certificate; the chain below it must verify (signatures, CA
 *   flags, validity, the leaf's serverAuth purpose) and the leaf must carry
 *   one of the reference identifiers. The trust anchor itself is not subject
 *   to expiration (as Postfix's trust anchors, TLS_README). PKIX-TA(0) and
 *   PKIX-EE(1) are unusable for SMTP (RFC 7672 §3.1.3).
 * - Digest agility (RFC 7671 §9, OpenSSL's dane_match()): per usage and
 *   selector only the records with the most preferred matching type present
 *   are used; Full(0) ranks below every digest.
 * - RFC 8460 result types (decided here, never from text):
 *     lookup error (SERVFAIL/bogus, timeout)         → dnssec-invalid
 *     dane-only, MX insecure or no TLSA records      → dane-required
 *     every TLSA record unusable                     → tlsa-invalid
 *     no record matches the chain                    → validation-failure
 *     TA matched, chain member expired               → certificate-expired
 *     TA matched, leaf lacks the reference names     → certificate-host-mismatch
 *     TA matched, signature/CA/purpose/not-yet-valid → validation-failure
 * - Log texts are Postfix's (without `warning: `): tls_dane.c `unusable TLSA
 *   RR`, `unsupported TLSA certificate usage`, `Matched DANE ... at depth N`;
 *   tls_client.c `all TLSA records unusable, fallback to unauthenticated TLS`;
 *   tls_verify.c `certificate verification failed for H: untrusted issuer X`.
 *   TLSA data in log lines is upper-case hex, cut to 32+32 bytes as Postfix
 *   does; the presentation form (`3 1 1 ab12...`, RFC 8460 policy-string) is
 *   whole and lower case.
 *
 * - `daneSettings(config)` reads the Postfix parameters DANE uses
 *   (smtp_dns_support_level, smtp_host_lookup,
 *   smtp_tls_dane_insecure_mx_policy, smtp_tls_force_insecure_host_tlsa_lookup,
 *   tls_dane_digests, smtp_tls_scert_verifydepth); invalid values are a
 *   ConfigError worded as smtp.c's msg_fatal().
 *
 * Not here: the TLSA lookup (dns/tlsa.ts), the handshake and SNI (engine),
 * what a failure means for the next MX (enforce.ts / trouble.ts).
 */
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { TlsRptResultType } from '../outcome.ts';
import type { TlsaLookup, TlsaRecord } from '../dns/tlsa.ts';
import type { CertFacts } from './verify.ts';
import { matchServerName } from './verify.ts';
import { NOT_VERIFIED, verifyLog } from './reasons.ts';
import type { TlsTrust } from './types.ts';
import type { Config } from '../../config/types.ts';
import { ConfigError } from '../../lib/errors.ts';

export const USAGE = Object.freeze({ PKIX_TA: 0, PKIX_EE: 1, DANE_TA: 2, DANE_EE: 3 });
export const SELECTOR = Object.freeze({ CERT: 0, SPKI: 1 });
export const MATCHING = Object.freeze({ FULL: 0, SHA2_256: 1, SHA2_512: 2, PRIVATE: 255 });

// ------------------------------------------------------------------ digests

export interface DaneDigests {
  /** matching type → node:crypto digest name and preference (higher = preferred). */
  readonly types: ReadonlyMap<number, { readonly digest: string; readonly ord: number }>;
  readonly warnings: readonly string[];
}

/** tls_dane.c tls_dane_digest_init(): parse tls_dane_digests. */
export function parseDaneDigests(text: string, available: (name: string) => boolean = defaultDigestAvailable): DaneDigests {
  const P = 'tls_dane_digests';
  const warnings: string[] = [];
  const listed: Array<{ mtype: number; digest: string }> = [];
  for (const item of text.split(/[\s,]+/).filter((s) => s !== '')) {
    const eq = item.indexOf('=');
    const name = (eq < 0 ? item : item.slice(0, eq)).toLowerCase();
    const code = eq < 0 ? undefined : item.slice(eq + 1);
    let mtype: number | undefined;
    if (code !== undefined && code !== '') {
      if (!/^\d+$/.test(code) || Number(code) >= 255) { warnings.push(`Invalid matching type number in ${P}: ${name}=${code}`); continue; }
      if (Number(code) === 0) { warnings.push(`Reserved matching type number in ${P}: ${name}=${code}`); continue; }
      mtype = Number(code);
    }
    if (name === '') continue; // `=N` alone disables N: it is simply not listed.
    if (mtype === undefined) {
      if (name === 'sha256') mtype = 1;
      else if (name === 'sha512') mtype = 2;
      else { warnings.push(`${P}: digest algorithm ${name} needs an explicit number`); continue; }
    } else if (mtype === 1 && name !== 'sha256') { warnings.push(`${P}: matching type 1 can only be sha256`); continue; }
    else if (mtype === 2 && name !== 'sha512') { warnings.push(`${P}: matching type 2 can only be sha512`); continue; }
    if (listed.some((l) => l.mtype === mtype)) { warnings.push(`${P}: matching type ${mtype} specified more than once`); continue; }
    if (!available(name)) { warnings.push(`${P}: digest algorithm "${name}"(${mtype}) unknown`); continue; }
    listed.push({ mtype, digest: name });
  }
  // Postfix lists the most preferred first; it gets the highest ordinal.
  const types = new Map(listed.map((l, i) => [l.mtype, { digest: l.digest, ord: listed.length - i }] as const));
  return Object.freeze({ types, warnings: Object.freeze(warnings) });
}

function defaultDigestAvailable(name: string): boolean {
  try {
    createHash(name);
    return true;
  } catch {
    return false;
  }
}

export const DEFAULT_DANE_DIGESTS = parseDaneDigests('sha512 sha256');

// --------------------------------------------------------- record texts

function hex(data: Buffer): string {
  return data.toString('hex');
}

/** RFC 6698 §2.2 presentation form, as RFC 8460 policy-string wants it: `3 1 1 ab12...`. */
export function tlsaPresentation(r: Pick<TlsaRecord, 'usage' | 'selector' | 'matchingType' | 'data'>): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${hex(r.data)}`;
}

/** tls_dane.c tlsa_info()/tlsa_carp(): `u s m HEX`, data longer than 64 bytes as first 32 ... last 32. */
export function tlsaLogText(r: Pick<TlsaRecord, 'usage' | 'selector' | 'matchingType' | 'data'>): string {
  const d = r.data;
  const text = d.length > 64
    ? `${hex(d.subarray(0, 32)).toUpperCase()}...${hex(d.subarray(d.length - 32)).toUpperCase()}`
    : d.length > 0 ? hex(d).toUpperCase() : '...';
  return `${r.usage} ${r.selector} ${r.matchingType} ${text}`;
}

// ------------------------------------------------------- record screening

/** tls_dane.c parse_tlsa_rr(): drop usages other than DANE-TA/DANE-EE and the private-use matching type. */
export function screenTlsa(records: readonly TlsaRecord[], qname: string): { kept: TlsaRecord[]; warnings: string[] } {
  const kept: TlsaRecord[] = [];
  const warnings: string[] = [];
  for (const r of records) {
    const via = r.owner !== '' && r.owner.toLowerCase() !== qname.toLowerCase() ? `${qname} -> ${r.owner}` : r.owner || qname;
    if (r.usage !== USAGE.DANE_TA && r.usage !== USAGE.DANE_EE) {
      // RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) do not apply to SMTP.
      warnings.push(`${via} unsupported TLSA certificate usage: ${tlsaLogText(r)}`);
    } else if (r.matchingType === MATCHING.PRIVATE) {
      warnings.push(`${via} reserved private-use matching type: ${tlsaLogText(r)}`);
    } else {
      kept.push(r);
    }
  }
  return { kept, warnings };
}

/** A record OpenSSL would load (SSL_dane_tlsa_add() > 0), with what it needs for matching. */
interface UsableRecord {
  readonly record: TlsaRecord;
  /** Digest ordinal: 0 for Full, the tls_dane_digests preference otherwise. */
  readonly ord: number;
  readonly digest?: string;
  /** DANE-TA(2) SPKI(1) Full(0): the bare trust-anchor public key. */
  readonly taKey?: KeyObject;
}

const DIGEST_LENGTH: Readonly<Record<string, number>> = { sha256: 32, sha384: 48, sha512: 64 };

function digestLength(name: string): number {
  return DIGEST_LENGTH[name] ?? createHash(name).digest().length;
}

/** SSL_dane_tlsa_add(): undefined when the record is unusable. */
function loadRecord(r: TlsaRecord, digests: DaneDigests): UsableRecord | undefined {
  if (r.usage > USAGE.DANE_EE || r.selector > SELECTOR.SPKI) return undefined;
  if (r.matchingType !== MATCHING.FULL) {
    const t = digests.types.get(r.matchingType);
    if (!t || r.data.length !== digestLength(t.digest)) return undefined;
    return { record: r, ord: t.ord, digest: t.digest };
  }
  try {
    if (r.selector === SELECTOR.CERT) {
      new X509Certificate(r.data);
      return { record: r, ord: 0 };
    }
    const key = createPublicKey({ key: r.data, format: 'der', type: 'spki' });
    return { record: r, ord: 0, ...(r.usage === USAGE.DANE_TA ? { taKey: key } : {}) };
  } catch {
    return undefined;
  }
}

/** Load every record; log the unusable ones as tls_dane.c tls_dane_enable() does. */
export function usableTlsa(records: readonly TlsaRecord[], digests: DaneDigests, where: string): { usable: TlsaRecord[]; warnings: string[] } {
  const usable: TlsaRecord[] = [];
  const warnings: string[] = [];
  for (const r of records) {
    if (loadRecord(r, digests)) usable.push(r);
    else warnings.push(`${where}: unusable TLSA RR: ${tlsaLogText(r)}`);
  }
  return { usable, warnings };
}

/** RFC 7671 §9 digest agility: per usage+selector, only the most preferred matching type present. */
function agile(loaded: readonly UsableRecord[]): UsableRecord[] {
  const best = new Map<string, number>();
  for (const u of loaded) {
    const k = `${u.record.usage}/${u.record.selector}`;
    best.set(k, Math.max(best.get(k) ?? -1, u.ord));
  }
  return loaded.filter((u) => u.ord === best.get(`${u.record.usage}/${u.record.selector}`));
}

// ------------------------------------------------------------ the decision

export type InsecureMxPolicy = 'may' | 'encrypt' | 'dane';

export interface DaneContext {
  readonly level: 'dane' | 'dane-only';
  /** The next hop as configured (Postfix's iter->dest, for warnings). */
  readonly nexthop: string;
  /** smtp_dns_support_level = dnssec and smtp_host_lookup includes dns. */
  readonly dnssecEnabled: boolean;
  /** The MX RRset was DNSSEC-secure; undefined when there was no MX lookup ([nexthop]: treated as a secure MX). */
  readonly mxSecure: boolean | undefined;
  /** The MX lookup's names: the domain asked (qname) and where the MX RRset was found (rname); absent for [nexthop]. */
  readonly mxNames?: { readonly qname: string; readonly rname: string };
  /** smtp_tls_dane_insecure_mx_policy. */
  readonly insecureMxPolicy: InsecureMxPolicy;
  readonly digests: DaneDigests;
  /** `host[addr]:port` of the server (Postfix's namaddr), for the per-connection warnings. */
  readonly where: string;
}

export interface DaneFailure {
  readonly type: TlsRptResultType;
  /** Postfix's TLSRPT failure code, when it gives one (`all-TLSA-records-unusable`). */
  readonly code?: string;
}

export type DaneDecision =
  | {
      readonly kind: 'dane';
      /** `halfdane`: the MX RRset was insecure (insecure-MX policy `dane`); success is logged `Trusted`. */
      readonly level: 'dane' | 'dane-only' | 'halfdane';
      /** Usable records (what matchDane() gets). */
      readonly records: readonly TlsaRecord[];
      /** Every well-formed record found, in presentation form (RFC 8460 policy-string). */
      readonly policyStrings: readonly string[];
      /** SNI name (postconf(5) smtp_tls_servername: with DANE the TLSA base domain). */
      readonly baseDomain: string;
      /** DANE-TA reference identifiers: TLSA base domain, then the next-hop domain(s). */
      readonly matchNames: readonly string[];
      /** dane-only with no usable record: the handshake goes ahead and verification must fail (tls_client.c must_fail). */
      readonly mustFail: boolean;
      readonly failure?: DaneFailure;
      readonly warnings: readonly string[];
    }
  | {
      readonly kind: 'fallback';
      /** `may` without (secure) TLSA, `encrypt` when TLSA exists but cannot be used. */
      readonly level: 'may' | 'encrypt';
      readonly why: string;
      readonly failure?: DaneFailure;
      readonly warnings: readonly string[];
    }
  | {
      readonly kind: 'defer';
      readonly reason: string;
      readonly dsn: string;
      readonly failure: DaneFailure;
      readonly warnings: readonly string[];
    };

/** smtp_tls_policy.c dane_incompat(): dane falls back, dane-only defers. */
function incompat(ctx: DaneContext, err: 'config' | 'dest' | 'cantauth', text: string, warnings: string[], failure?: DaneFailure): DaneDecision {
  if (ctx.level === 'dane') {
    if (err === 'config') warnings.push(text);
    return { kind: 'fallback', level: err === 'cantauth' ? 'encrypt' : 'may', why: text, ...(failure ? { failure } : {}), warnings };
  }
  if (err === 'config') {
    warnings.push(text);
    return { kind: 'defer', reason: 'client TLS configuration problem', dsn: '4.7.5', failure: failure ?? { type: 'dane-required' }, warnings };
  }
  return { kind: 'defer', reason: text, dsn: '4.7.5', failure: failure ?? { type: 'dane-required' }, warnings };
}

/** dane_init() up to the TLSA lookup; undefined = look TLSA up now. */
export function daneBeforeLookup(ctx: DaneContext): DaneDecision | undefined {
  if (!ctx.dnssecEnabled) return incompat(ctx, 'config', `${ctx.nexthop}: ${ctx.level} configured with dnssec lookups disabled`, []);
  // RFC 7672 §2.2.1: an insecure MX RRset; dane-only (or insecure-MX policy `may`) gives up here.
  if (ctx.mxSecure === false && (ctx.level === 'dane-only' || ctx.insecureMxPolicy === 'may')) {
    return incompat(ctx, 'dest', 'non DNSSEC destination', []);
  }
  return undefined;
}

/** dane_init() after the TLSA lookup, plus tls_client.c's "all TLSA records unusable". */
export function daneAfterLookup(ctx: DaneContext, tlsa: TlsaLookup): DaneDecision {
  const warnings = [...tlsa.warnings];
  if (tlsa.kind === 'error') {
    return { kind: 'defer', reason: tlsa.reason, dsn: tlsa.dsn, failure: { type: 'dnssec-invalid' }, warnings };
  }
  if (tlsa.kind !== 'secure-records') return incompat(ctx, 'dest', 'no TLSA records found', warnings);
  const screened = screenTlsa(tlsa.records, tlsa.qname);
  warnings.push(...screened.warnings);
  const unusable: DaneFailure = { type: 'tlsa-invalid', code: 'all-TLSA-records-unusable' };
  if (screened.kept.length === 0) return incompat(ctx, 'cantauth', 'TLSA records unusable', warnings, unusable);
  if (ctx.mxSecure === false && ctx.insecureMxPolicy === 'encrypt') {
    return incompat(ctx, 'cantauth', 'Verification not possible, MX RRset is insecure', warnings);
  }
  const loaded = usableTlsa(screened.kept, ctx.digests, ctx.where);
  warnings.push(...loaded.warnings);
  if (loaded.usable.length === 0 && ctx.level === 'dane') {
    warnings.push(`${ctx.where}: all TLSA records unusable, fallback to unauthenticated TLS`);
    return { kind: 'fallback', level: 'encrypt', why: 'all TLSA records unusable', failure: unusable, warnings };
  }
  if (loaded.usable.length === 0) warnings.push(`${ctx.where}: all TLSA records unusable`);
  return {
    kind: 'dane',
    level: ctx.mxSecure === false ? 'halfdane' : ctx.level,
    records: Object.freeze(loaded.usable),
    policyStrings: Object.freeze(tlsa.records.map(tlsaPresentation)),
    baseDomain: tlsa.baseDomain,
    matchNames: Object.freeze(referenceNames(tlsa.baseDomain, ctx.mxNames)),
    mustFail: loaded.usable.length === 0,
    ...(loaded.usable.length === 0 ? { failure: unusable } : {}),
    warnings,
  };
}

/** smtp_tls_policy.c: "nexthop, hostname" — the TLSA base domain, then the MX RRset's names. */
function referenceNames(base: string, mx: DaneContext['mxNames']): string[] {
  const out = [base];
  if (mx) {
    for (const n of [mx.rname, mx.qname]) {
      const l = n.replace(/\.$/, '').toLowerCase();
      if (!out.includes(l)) out.push(l);
    }
  }
  return out;
}

// --------------------------------------------------------------- matching

export interface DaneMatchInput {
  readonly records: readonly TlsaRecord[];
  /** The presented chain, leaf first (verify.ts peerFacts().chain). */
  readonly chain: readonly CertFacts[];
  readonly matchNames: readonly string[];
  readonly level: 'dane' | 'dane-only' | 'halfdane';
  readonly mustFail?: boolean;
  readonly digests?: DaneDigests;
  /** `host[addr]:port`. */
  readonly where: string;
  /** smtp_tls_scert_verifydepth. */
  readonly maxDepth?: number;
  /** smtp_tls_loglevel (first number): ≥ 2 logs the match. */
  readonly logLevel?: number;
  /** OpenSSL's PKIX verdict against the local CAs: a trusted chain that matches no record is `no matching DANE TLSA records` (OpenSSL 3's text, as Postfix logs it). */
  readonly pkixTrusted?: boolean;
  readonly now?: number;
}

export type DaneVerdict =
  | {
      readonly ok: true;
      readonly trust: TlsTrust;
      readonly record: TlsaRecord;
      /** `3 1 1 ab12...` (outcome.ts TlsFacts.peer.matchedTlsa). */
      readonly presentation: string;
      readonly depth: number;
      readonly how: 'EE certificate' | 'TA certificate' | 'TA public key verified certificate';
      /** The certificate name that matched a reference identifier (DANE-TA only). */
      readonly matchedName?: string;
      readonly logLines: readonly string[];
    }
  | {
      readonly ok: false;
      readonly trust: TlsTrust;
      readonly type: TlsRptResultType;
      /** Postfix's deferral: `Server certificate not verified` (4.7.5). */
      readonly reason: string;
      readonly dsn: string;
      readonly logLines: readonly string[];
    };

interface Node {
  readonly facts: CertFacts;
  readonly x509: X509Certificate;
}

function digestOf(data: Buffer, digest: string | undefined): Buffer {
  return digest ? createHash(digest).update(data).digest() : data;
}

function recordMatches(u: UsableRecord, cert: CertFacts): boolean {
  const subject = u.record.selector === SELECTOR.CERT ? cert.der : cert.spki;
  return digestOf(subject, u.digest).equals(u.record.data);
}

function fail(trust: TlsTrust, type: TlsRptResultType, lines: string[]): DaneVerdict {
  return Object.freeze({ ok: false as const, trust, type, reason: NOT_VERIFIED.reason, dsn: NOT_VERIFIED.dsn, logLines: Object.freeze(lines) });
}

/** The verdict on a presented chain (see the header). */
export function matchDane(input: DaneMatchInput): DaneVerdict {
  const digests = input.digests ?? DEFAULT_DANE_DIGESTS;
  const loaded = agile(input.records.flatMap((r) => loadRecord(r, digests) ?? []));
  const leaf = input.chain[0];
  if (input.mustFail || loaded.length === 0 || !leaf) {
    // tls_verify.c: must_fail forces X509_V_ERR_UNSPECIFIED (num=1) at depth 0.
    const lines = leaf ? [verifyLog.generic(input.where, 1, 'unspecified certificate verification error')] : [];
    return fail(leaf ? 'Untrusted' : 'Anonymous', loaded.length === 0 ? 'tlsa-invalid' : 'validation-failure', lines);
  }
  const ee = loaded.find((u) => u.record.usage === USAGE.DANE_EE && recordMatches(u, leaf));
  if (ee) return success(input, ee.record, 0, 'EE certificate', undefined);
  return matchTrustAnchor(input, loaded.filter((u) => u.record.usage === USAGE.DANE_TA));
}

function success(input: DaneMatchInput, record: TlsaRecord, depth: number, how: 'EE certificate' | 'TA certificate' | 'TA public key verified certificate', name: string | undefined): DaneVerdict {
  const lines: string[] = [];
  if ((input.logLevel ?? 1) >= 2) {
    if (name !== undefined) lines.push(verifyLog.matchedPeername(input.where, name));
    lines.push(`${input.where}: Matched DANE ${how} at depth ${depth}: ${tlsaLogText(record)}`);
  }
  return Object.freeze({
    ok: true as const,
    trust: input.level === 'halfdane' ? 'Trusted' as const : 'Verified' as const,
    record, presentation: tlsaPresentation(record), depth, how,
    ...(name !== undefined ? { matchedName: name } : {}),
    logLines: Object.freeze(lines),
  });
}

type Anchor = { readonly depth: number; readonly record: TlsaRecord; readonly key?: KeyObject };

/** Build the path from the leaf through the presented certificates until a DANE-TA record anchors it (OpenSSL build_chain + check_dane_issuer). */
function findAnchor(path: Node[], pool: Node[], tas: readonly UsableRecord[], maxDepth: number): Anchor | 'too-long' | undefined {
  for (let d = 0; ; d++) {
    const cur = path[d]!;
    if (d > 0) {
      const hit = tas.find((u) => recordMatches(u, cur.facts));
      if (hit) return { depth: d, record: hit.record };
    }
    // A bare TA public key (2 1 0) that signed this certificate.
    const byKey = tas.find((u) => u.taKey && safeVerify(cur.x509, u.taKey));
    if (byKey) return { depth: d, record: byKey.record, key: byKey.taKey! };
    const issuer = pool.find((c) => !path.includes(c) && safeIssued(cur.x509, c.x509));
    if (!issuer) return undefined;
    if (d + 1 > maxDepth) return 'too-long';
    path.push(issuer);
  }
}

function safeVerify(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.verify(key);
  } catch {
    return false;
  }
}

function safeIssued(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer);
  } catch {
    return false;
  }
}

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const ANY_EKU = '2.5.29.37.0';

function matchTrustAnchor(input: DaneMatchInput, tas: readonly UsableRecord[]): DaneVerdict {
  const nodes: Node[] = input.chain.map((facts) => ({ facts, x509: new X509Certificate(facts.der) }));
  const path = [nodes[0]!];
  const maxDepth = input.maxDepth ?? 9;
  // The path is built even without DANE-TA records: the failure line names the top of it.
  const anchor = findAnchor(path, nodes.slice(1), tas, maxDepth);
  if (anchor === 'too-long') return fail('Untrusted', 'validation-failure', [verifyLog.chainTooLong(input.where, maxDepth)]);
  if (!anchor) return fail('Untrusted', 'validation-failure', [noMatchLine(input, path)]);
  const problem = chainProblem(input, path, anchor);
  if (problem) return fail('Untrusted', problem.type, [problem.line]);
  const name = matchServerName(path[0]!.facts, input.matchNames);
  if (name === undefined) {
    // OpenSSL X509_V_ERR_HOSTNAME_MISMATCH (62), logged by tls_log_verify_error()'s default case; the chain was trusted.
    return fail('Trusted', 'certificate-host-mismatch', [verifyLog.generic(input.where, 62, 'hostname mismatch')]);
  }
  return success(input, anchor.record, anchor.depth, anchor.key ? 'TA public key verified certificate' : 'TA certificate', name);
}

/** tls_verify.c for a chain no record anchors: self-signed leaf, untrusted issuer, or (PKIX-trusted) no DANE match. */
function noMatchLine(input: DaneMatchInput, path: readonly Node[]): string {
  if (input.pkixTrusted) return verifyLog.generic(input.where, 65, 'no matching DANE TLSA records');
  const top = path[path.length - 1]!;
  if (path.length === 1 && safeIssued(top.x509, top.x509)) return verifyLog.selfSigned(input.where);
  return verifyLog.untrustedIssuer(input.where, top.facts.issuer);
}

/** The first problem closest to the leaf (OpenSSL reports the lowest depth): signature, CA flag, validity, purpose. */
function chainProblem(input: DaneMatchInput, path: readonly Node[], anchor: Anchor): { type: TlsRptResultType; line: string } | undefined {
  const now = input.now ?? Date.now();
  const w = input.where;
  // Certificates below the anchor; with a bare key the anchored certificate itself is checked too.
  const last = anchor.key ? anchor.depth : anchor.depth - 1;
  for (let i = 0; i <= last; i++) {
    const purpose = i > 0 ? 'CA' : 'server';
    const cert = path[i]!;
    const signer = i < anchor.depth ? path[i + 1]!.x509.publicKey : anchor.key!;
    if (!safeVerify(cert.x509, signer)) return { type: 'validation-failure', line: `${purpose} certificate verification failed for ${w}: num=7:certificate signature failure` };
    if (i > 0 && !cert.x509.ca) return { type: 'validation-failure', line: `${purpose} certificate verification failed for ${w}: num=24:invalid CA certificate` };
    if (cert.facts.validFrom > now) return { type: 'validation-failure', line: `${purpose} certificate verification failed for ${w}: certificate not yet valid` };
    if (cert.facts.validTo < now) return { type: 'certificate-expired', line: `${purpose} certificate verification failed for ${w}: certificate has expired` };
  }
  if (!anchor.key && anchor.depth > 0 && !path[anchor.depth]!.x509.ca) {
    return { type: 'validation-failure', line: `CA certificate verification failed for ${w}: num=24:invalid CA certificate` };
  }
  const eku = path[0]!.x509.keyUsage;
  if (eku && eku.length > 0 && !eku.includes(SERVER_AUTH) && !eku.includes(ANY_EKU)) {
    return { type: 'validation-failure', line: verifyLog.notServer(w) };
  }
  return undefined;
}

/** RFC 8460 policy-string for a DANE policy: the TLSA RRset in presentation form. */
export function tlsaPolicyStrings(records: readonly TlsaRecord[]): string[] {
  return records.map(tlsaPresentation);
}

// ------------------------------------------------------------ from main.cf

export type DnsSupportLevel = 'disabled' | 'enabled' | 'dnssec';

export interface DaneSettings {
  /** postconf(5) smtp_dns_support_level (empty = `enabled`, or `disabled` with disable_dns_lookups = yes). */
  readonly dnsSupport: DnsSupportLevel;
  /** DANE is possible: dnssec lookups and `dns` in smtp_host_lookup (smtp_tls_policy.c dane_init()). */
  readonly dnssecEnabled: boolean;
  readonly insecureMxPolicy: InsecureMxPolicy;
  readonly forceInsecureHostLookup: boolean;
  readonly digests: DaneDigests;
  readonly maxDepth: number;
}

/** The DANE parameters of main.cf (see the header). */
export function daneSettings(config: Config): DaneSettings {
  const raw = config.get('smtp_dns_support_level').trim().toLowerCase();
  let dnsSupport: DnsSupportLevel;
  if (raw === '') dnsSupport = config.getBool('disable_dns_lookups') ? 'disabled' : 'enabled';
  else if (raw === 'disabled' || raw === 'enabled' || raw === 'dnssec') dnsSupport = raw;
  else throw new ConfigError(`invalid smtp_dns_support_level: "${config.get('smtp_dns_support_level')}": use disabled, enabled or dnssec`);
  const policy = config.get('smtp_tls_dane_insecure_mx_policy').trim().toLowerCase();
  if (policy !== 'may' && policy !== 'encrypt' && policy !== 'dane') {
    throw new ConfigError(`invalid smtp_tls_dane_insecure_mx_policy: "${config.get('smtp_tls_dane_insecure_mx_policy')}": use may, encrypt or dane`);
  }
  const lookup = config.getList('smtp_host_lookup').map((x) => x.toLowerCase());
  return {
    dnsSupport,
    dnssecEnabled: dnsSupport === 'dnssec' && lookup.includes('dns'),
    insecureMxPolicy: policy,
    forceInsecureHostLookup: config.getBool('smtp_tls_force_insecure_host_tlsa_lookup'),
    digests: parseDaneDigests(config.getList('tls_dane_digests').join(' ')),
    maxDepth: config.getInt('smtp_tls_scert_verifydepth'),
  };
}
