/**
 * types.ts — the policy-source seam: every source of a TLS demand (main.cf,
 * smtp_tls_policy_maps, the obsolete smtp_tls_per_site, the message's
 * `TLS-Required: No`, DANE and MTA-STS) is one module with one question
 * to answer — "what do you demand here?" — asked at two steps:
 *
 *   hop step     once per next hop, before MX resolution (table lookups,
 *                a domain-level policy fetch);
 *   server step  once per server of the MX list, before connecting
 *                (anything that depends on the MX host, its address or on
 *                whether the MX answer was DNSSEC-validated: TLSA records,
 *                MTA-STS mx patterns, per-site host entries).
 *
 * The answers are plain data. combine.ts turns them into the effective
 * policy plus a trace (what each source said, which one won); `sealpost tls
 * explain` prints that trace.
 *
 * Contract:
 * - A source never throws for a lookup problem: it answers `invalid` (at the
 *   hop step: no connection at all) or `defer-server` (at the server step:
 *   this server is not tried; the next one is) — fail closed, never a
 *   downgrade. It logs Postfix's warnings itself through the `warn` it was
 *   built with.
 * - A source that has nothing to say answers `silent` (with a note for the
 *   trace); a source that is not asked at a step has no method for it.
 * - At the server step a source gets its own hop-step answer back
 *   (`atHop`), so it can refine it (per-site: the next-hop entry and the
 *   server-hostname entry combine); its server answer replaces its hop
 *   answer in the combiner.
 * - Published policies (DANE's TLSA records, an MTA-STS policy) answer
 *   `published`: what the policy asks of this server. Whether it applies is
 *   the combiner's precedence (issue 11), not the source's. A source that
 *   would look something up over the network first looks at `earlier` (the
 *   answers of the sources asked before it, hop step) or `hopLevel` (the
 *   level the hop step decided, server step) and stays silent where it
 *   cannot apply — a lookup is never made for nothing.
 *
 * Not here: precedence between sources (combine.ts), main.cf defaults for
 * what an entry leaves out (policy.ts completePolicy).
 */
import type { PolicySourceName, TlsRptPolicyType, TlsRptResultType } from '../../outcome.ts';
import type { StsCacheEntry } from '../../mta-sts/cache.ts';
import type { StsRequirement } from '../../mta-sts/match.ts';
import type { PolicyEntry } from '../policy-table.ts';
import type { DanePlan, ServerIdentity, TlsDeferral, TlsLevel } from '../types.ts';

/** What a message says about TLS (RFC 8689). */
export interface MessageTlsFlags {
  readonly tlsRequiredNo: boolean;
  readonly requireTls: boolean;
}

export interface HopQuery {
  /** The next hop verbatim: `example.com`, `[mx.example.com]:587`. */
  readonly nexthop: string;
  /** Without brackets and port. */
  readonly nexthopDomain: string;
  readonly message: MessageTlsFlags;
  /** Hop step: the answers of the sources asked before this one (a published source skips its lookup where a table entry decides). */
  readonly earlier?: ReadonlyMap<PolicySourceName, SourceAnswer>;
}

export interface ServerQuery extends HopQuery {
  /** The MX host (or the [host] of the next hop), its address and port, and whether the MX lookup was DNSSEC-validated. */
  readonly server: ServerIdentity;
  /** The level the hop step decided, as configured (`dane` even where it runs as `may`). */
  readonly hopLevel?: TlsLevel;
}

export interface TableEntryRef {
  readonly table: string;
  readonly key: string;
  readonly value: string;
}

/** One lookup key tried in one table, in order (for the trace). */
export interface TriedKey {
  readonly table: string;
  readonly key: string;
}

/** RFC 8460 facts a source contributes when it wins (a published policy). */
export interface ReportFacts {
  readonly type: TlsRptPolicyType;
  readonly domain?: string;
  readonly strings: readonly string[];
  readonly mxHostPatterns: readonly string[];
  readonly stsMode?: 'enforce' | 'testing';
  readonly stsId?: string;
}

/**
 * What a published policy asks (DANE, MTA-STS). The combiner places it in
 * the precedence of issue 11; the source only says what the policy is.
 */
export type Published =
  /** Usable TLSA records for this server (RFC 7672): authenticate with them. */
  | { readonly kind: 'tlsa'; readonly level: 'dane' | 'dane-only'; readonly dane: DanePlan; readonly report: ReportFacts }
  /** `dane` without usable DANE here: `may` (no TLSA, insecure zone) or `encrypt` (TLSA, none usable). */
  | { readonly kind: 'dane-fallback'; readonly level: 'may' | 'encrypt'; readonly why: string; readonly report?: ReportFacts }
  /** Hop step: the domain publishes an MTA-STS policy (enforce or testing); applied per MX host. */
  | { readonly kind: 'sts-policy'; readonly policy: StsCacheEntry; readonly from: 'cache' | 'fetch'; readonly report: ReportFacts; readonly txt?: string }
  /** Server step: what the MTA-STS policy asks of this MX host (RFC 8461 §4, §5). */
  | {
      readonly kind: 'sts-server';
      readonly policy: StsCacheEntry;
      readonly mode: 'enforce' | 'testing';
      /** The MX host matched one of the policy's `mx:` patterns. */
      readonly listed: boolean;
      readonly mxHost: string;
      readonly requirement: StsRequirement;
      readonly report: ReportFacts;
    };

interface Noted {
  /** One line for the trace: what the source looked at and found. */
  readonly note: string;
  /** Table keys tried, in order, when the source walked tables. */
  readonly tried?: readonly TriedKey[];
  /** Where the level came from, as a policy's `source` names it (`smtp_tls_security_level`, `hash:/etc/postfix/tls_policy`). */
  readonly label?: string;
}

export type SourceAnswer =
  /** Nothing to demand here (not configured, not applicable, or no entry matched). */
  | (Noted & { readonly kind: 'silent' })
  /** A demand: this level, and from a table entry its attributes. */
  | (Noted & {
      readonly kind: 'demand';
      readonly level: TlsLevel;
      readonly entry?: PolicyEntry;
      readonly tableEntry?: TableEntryRef;
      readonly report?: ReportFacts;
    })
  /** Fail closed at the hop step: no connection; defer with `deferral`. */
  | (Noted & { readonly kind: 'invalid'; readonly deferral: TlsDeferral; readonly tableEntry?: TableEntryRef })
  /** Server step: do not connect to this server (it is not allowed); try the next. */
  | (Noted & { readonly kind: 'skip-server'; readonly reason: string; readonly dsn: string; readonly resultType?: TlsRptResultType })
  /** Server step: this server cannot be judged now (a lookup failed); try the next, defer if none is left. */
  | (Noted & { readonly kind: 'defer-server'; readonly deferral: TlsDeferral; readonly resultType?: TlsRptResultType; readonly report?: ReportFacts })
  /** A published policy (DANE, MTA-STS): what it asks; the combiner decides whether it applies. */
  | (Noted & { readonly kind: 'published'; readonly published: Published });

export interface PolicySource {
  readonly name: PolicySourceName;
  /** The hop step. Absent: the source says nothing before the MX list is known. */
  hop?(q: HopQuery): Promise<SourceAnswer> | SourceAnswer;
  /** The server step, with this source's own hop-step answer. Absent: nothing per server. */
  server?(q: ServerQuery, atHop: SourceAnswer | undefined): Promise<SourceAnswer> | SourceAnswer;
}

/** One answer in the trace. */
export interface TraceStep {
  readonly source: PolicySourceName;
  readonly step: 'hop' | 'server';
  readonly answer: SourceAnswer;
}
