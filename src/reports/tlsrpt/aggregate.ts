/**
 * aggregate.ts — RFC 8460 counting, pure: which TLS session records count,
 * under which policy identity and failure-details group, and the in-memory
 * aggregate (summed counts) with its compact array encoding for the journal.
 *
 * Contract:
 * - `classify(record, exempt)` decides whether a session counts and how:
 *   * a reused connection (`tls.reused`) is not a new session — RFC 8460 §4.4
 *     counts sessions, and Postfix (TLSRPT_README) reports nothing for a
 *     reused SMTP connection since no TLS negotiation took place on it;
 *   * report mail is never counted (RFC 8460 §3: the report delivery must not
 *     be subject to TLS policy, so its sessions say nothing about the
 *     policy): `exempt` (TlsSessionEvent.tlsRptExempt) or a session whose
 *     policy came from the message's `TLS-Required: No` header (policy source
 *     `tls-required-no`: the recipient's policy was deliberately not applied);
 *   * `success` counts as a successful session; `failure` as a failed one
 *     with its result type, enforced or not (an MTA-STS `testing` failure is
 *     still a failure to report, RFC 8461 §5); `plaintext` because the
 *     server did not offer STARTTLS or refused it (at `may`) is a
 *     `starttls-not-supported` failure; any other `plaintext` is no TLS
 *     session and does not count: TLS off by configuration, and the
 *     plaintext retry after a failed handshake at `may` (that handshake has
 *     its own failure record; the retry negotiated nothing);
 *   * a record without a policy domain does not count (nothing to report to),
 *     nor one whose next hop is an address literal (`[192.0.2.1]`): no
 *     `_smtp._tls` can exist for it (Postfix smtp_connect.c creates no
 *     TLSRPT wrapper when `valid_hostaddr(domain)`).
 * - Policy identity = (policy-type, policy-domain, policy-strings, mx-host
 *   patterns): a domain whose MTA-STS policy changed during the day appears
 *   twice in `policies[]` (RFC 8460 §4.4 allows several policies per report).
 * - Failure-details group = (result-type, sending-mta-ip,
 *   receiving-mx-hostname, receiving-mx-helo, receiving-ip,
 *   failure-reason-code), with `failed-session-count` summed.
 * - Encoded entries are JSON arrays (small and order-stable):
 *   `[[type, domain, [strings], [mx]], success, failure, [[[detail...], n], ...]]`.
 *
 * Not here: files (journal.ts, store.ts), the report JSON (report.ts).
 */
import { isIP } from 'node:net';
import type { TlsRptPolicyType, TlsRptResultType, TlsSessionRecord } from '../../delivery/outcome.ts';
import { TLSRPT_RESULT_TYPES } from '../../delivery/outcome.ts';

export interface PolicyId {
  readonly type: TlsRptPolicyType;
  readonly domain: string;
  readonly strings: readonly string[];
  readonly mxHosts: readonly string[];
}

export interface DetailId {
  readonly resultType: TlsRptResultType;
  readonly sendingIp: string;
  readonly mxHostname: string;
  readonly mxHelo: string;
  readonly receivingIp: string;
  readonly reasonCode: string;
}

export type Classified =
  | { readonly counts: false; readonly why: 'reused' | 'exempt' | 'no-tls' | 'no-domain' }
  | { readonly counts: true; readonly policy: PolicyId; readonly failure?: DetailId };

/** See the header. Pure. */
export function classify(r: TlsSessionRecord, exempt = false): Classified {
  if (r.tls?.reused === true) return { counts: false, why: 'reused' };
  if (exempt || r.policy.source === 'tls-required-no') return { counts: false, why: 'exempt' };
  const domain = r.policy.domain.toLowerCase();
  if (domain === '' || isIP(domain) !== 0) return { counts: false, why: 'no-domain' };
  const policy: PolicyId = {
    type: r.policy.type,
    domain,
    strings: [...r.policy.strings],
    mxHosts: [...r.policy.mxHostPatterns],
  };
  const res = r.result;
  if (res.kind === 'success') return { counts: true, policy };
  if (res.kind === 'plaintext' && res.type !== 'starttls-not-supported') return { counts: false, why: 'no-tls' };
  const detail: DetailId = {
    resultType: res.type!,
    sendingIp: r.sendingIp ?? '',
    mxHostname: r.server.hostname,
    mxHelo: r.server.helo ?? '',
    receivingIp: r.server.address,
    reasonCode: res.kind === 'failure' ? res.reason : '',
  };
  return { counts: true, policy, failure: detail };
}

export type EncodedPolicy = [string, string, string[], string[]];
export type EncodedDetail = [string, string, string, string, string, string];
export type EncodedEntry = [EncodedPolicy, number, number, Array<[EncodedDetail, number]>];

export function encodePolicy(p: PolicyId): EncodedPolicy {
  return [p.type, p.domain, [...p.strings], [...p.mxHosts]];
}

export function encodeDetail(d: DetailId): EncodedDetail {
  return [d.resultType, d.sendingIp, d.mxHostname, d.mxHelo, d.receivingIp, d.reasonCode];
}

const POLICY_TYPES = new Set(['sts', 'tlsa', 'no-policy-found']);
const RESULT_TYPES = new Set<string>(TLSRPT_RESULT_TYPES);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Validate one decoded entry (journal or snapshot); undefined when malformed. */
export function decodeEntry(v: unknown): { policy: PolicyId; success: number; failure: number; details: Array<{ detail: DetailId; count: number }> } | undefined {
  if (!Array.isArray(v) || v.length !== 4) return undefined;
  const [p, s, f, ds] = v as unknown[];
  if (!Array.isArray(p) || p.length !== 4 || !POLICY_TYPES.has(p[0] as string) || typeof p[1] !== 'string') return undefined;
  if (!isStrings(p[2]) || !isStrings(p[3]) || !isCount(s) || !isCount(f) || !Array.isArray(ds)) return undefined;
  const details: Array<{ detail: DetailId; count: number }> = [];
  for (const x of ds as unknown[]) {
    if (!Array.isArray(x) || x.length !== 2 || !isCount(x[1])) return undefined;
    const d = x[0] as unknown;
    if (!isStrings(d) || d.length !== 6 || !RESULT_TYPES.has(d[0]!)) return undefined;
    details.push({
      detail: { resultType: d[0] as TlsRptResultType, sendingIp: d[1]!, mxHostname: d[2]!, mxHelo: d[3]!, receivingIp: d[4]!, reasonCode: d[5]! },
      count: x[1],
    });
  }
  return { policy: { type: p[0] as TlsRptPolicyType, domain: p[1], strings: p[2], mxHosts: p[3] }, success: s, failure: f, details };
}

export interface PolicyTotals {
  readonly policy: PolicyId;
  success: number;
  failure: number;
  readonly details: Map<string, { readonly detail: DetailId; count: number }>;
}

/** Summed counts per policy identity and failure group. */
export class Aggregate {
  readonly byPolicy = new Map<string, PolicyTotals>();
  /** Sessions added (successes + failures). */
  sessions = 0;

  private totalsFor(policy: PolicyId): PolicyTotals {
    const key = JSON.stringify(encodePolicy(policy));
    let t = this.byPolicy.get(key);
    if (!t) {
      t = { policy, success: 0, failure: 0, details: new Map() };
      this.byPolicy.set(key, t);
    }
    return t;
  }

  /** Add `n` sessions of one kind. */
  add(policy: PolicyId, failure: DetailId | undefined, n = 1): void {
    const t = this.totalsFor(policy);
    this.sessions += n;
    if (!failure) {
      t.success += n;
      return;
    }
    t.failure += n;
    const key = JSON.stringify(encodeDetail(failure));
    const d = t.details.get(key);
    if (d) d.count += n;
    else t.details.set(key, { detail: failure, count: n });
  }

  get empty(): boolean {
    return this.sessions === 0;
  }

  /** Add every count of `other` (already validated entries). */
  merge(other: Aggregate): void {
    for (const e of other.encode()) this.addEncoded(e);
  }

  /** Add one encoded entry; false when it is malformed. */
  addEncoded(raw: unknown): boolean {
    const e = decodeEntry(raw);
    if (!e) return false;
    const t = this.totalsFor(e.policy);
    t.success += e.success;
    this.sessions += e.success;
    for (const d of e.details) this.add(e.policy, d.detail, d.count);
    // A failure count without details (never written by us) still counts.
    const detailed = e.details.reduce((a, d) => a + d.count, 0);
    if (e.failure > detailed) {
      t.failure += e.failure - detailed;
      this.sessions += e.failure - detailed;
    }
    return true;
  }

  encode(): EncodedEntry[] {
    return [...this.byPolicy.values()].map((t) => [
      encodePolicy(t.policy),
      t.success,
      t.failure,
      [...t.details.values()].map((d): [EncodedDetail, number] => [encodeDetail(d.detail), d.count]),
    ]);
  }

  /** The policy domains present, sorted. */
  domains(): string[] {
    return [...new Set([...this.byPolicy.values()].map((t) => t.policy.domain))].sort();
  }

  /** Totals of one policy domain. */
  forDomain(domain: string): PolicyTotals[] {
    return [...this.byPolicy.values()].filter((t) => t.policy.domain === domain);
  }
}
