/**
 * combine.ts — the TLS policy combiner: from what every policy source said
 * (sources/), the effective demand and a trace of who won and why. Pure: no
 * I/O, no clock, no logging; warnings come back as values.
 *
 * Precedence (Postfix smtp_tls_policy.c policy_create(), then issue 11 for
 * the published policies, RFC 8461 §2 and RFC 7672), in this order:
 *   1. fail closed: any source that answered `invalid` (a bad main.cf level,
 *      a table lookup error, a malformed entry, an MTA-STS service that
 *      cannot be asked) → no connection, its deferral; at the server step
 *      `defer-server` / `skip-server` → this server is not tried (a TLSA
 *      lookup error among them: MTA-STS never overrides a failing DANE);
 *   2. `TLS-Required: No` (RFC 8689 §5, Postfix ≥3.10): the main.cf level,
 *      capped at `may`; no table is consulted, no DANE, no MTA-STS;
 *   3. an smtp_tls_policy_maps entry — it wins over main.cf, stronger or
 *      weaker, and over MTA-STS (a `dane` entry asks for DANE);
 *   4. the obsolete smtp_tls_per_site: its level, except that a per-site
 *      `may` yields to a stronger main.cf level ("override a wild-card
 *      per-site policy with a more specific global policy");
 *   5. the main.cf level.
 * Then the published policies:
 *   6. DANE where the level is `dane` or `dane-only`: usable TLSA records for
 *      this server (server step) → DANE applies and beats MTA-STS; no usable
 *      DANE → `dane` falls to the domain's MTA-STS policy when it publishes
 *      one, else to `may` (`encrypt` when TLSA exists but none is usable),
 *      the configured level kept for `tls=dane:may`; `dane-only` then defers
 *      (the DANE source answers `defer-server`). At the hop step, before the
 *      MX hosts are known, `dane` is `may` and `dane-only` waits for the
 *      server step — or, without a DANE source (or with DNSSEC lookups off),
 *      level.ts daneWithoutTlsa() decides at once;
 *   7. MTA-STS where published and nothing above fixed the policy (no table
 *      entry, no TLS-Required: No, no DANE): per MX host (server step), under
 *      `enforce` an unlisted MX is skipped and a listed one gets the policy's
 *      checks (`secure` against the MX name, TLS ≥ 1.2) — unless main.cf
 *      already demands `verify` or `secure`, which is kept (MTA-STS never
 *      lowers what main.cf demands); under `testing` the level stays and the
 *      checks are only recorded.
 *
 * At the server step a source's server answer replaces its hop answer; the
 * trace keeps both.
 *
 * Not here: asking the sources (policy.ts), main.cf defaults for protocols,
 * ciphers and names (policy.ts completePolicy).
 */
import type { PolicySourceName, TlsRptResultType } from '../outcome.ts';
import type { StsRequirement } from '../mta-sts/match.ts';
import { stsMxWarning, stsReasons } from '../mta-sts/match.ts';
import { daneWithoutTlsa, levelRank } from './level.ts';
import type { PolicyEntry } from './policy-table.ts';
import { CONFIG_PROBLEM } from './reasons.ts';
import type { Published, ReportFacts, SourceAnswer, TableEntryRef, TraceStep } from './sources/types.ts';
import type { DanePlan, StsPlan, TlsDeferral, TlsLevel } from './types.ts';

export interface PolicyTrace {
  /** Every answer, in the order asked (hop step, then server step). */
  readonly steps: readonly TraceStep[];
  readonly winner: PolicySourceName;
  /** One line: why the winner won. */
  readonly why: string;
}

export interface CombineContext {
  readonly nexthop: string;
  /** smtp_dns_support_level = dnssec with DNS lookups (for dane without TLSA). */
  readonly dnssecEnabled: boolean;
}

interface Decided {
  readonly winner: PolicySourceName;
  /** TlsPolicy.source: `smtp_tls_security_level`, a table spec, `TLS-Required: No`, `MTA-STS policy of D`. */
  readonly label: string;
  readonly tableEntry?: TableEntryRef;
  readonly warnings: readonly string[];
  readonly trace: PolicyTrace;
}

export type Combined =
  | (Decided & {
      readonly kind: 'connect';
      readonly level: TlsLevel;
      readonly configuredLevel?: TlsLevel;
      readonly entry?: PolicyEntry;
      readonly report?: ReportFacts;
      /** DANE applies (usable TLSA records for this server). */
      readonly dane?: DanePlan;
      /** An MTA-STS policy applies to this server. */
      readonly sts?: StsPlan;
      /** MTA-STS enforce decides the checks (level `secure` against the MX name, TLS ≥ 1.2, SNI, the MTA-STS roots). */
      readonly stsRequirement?: StsRequirement;
    })
  | (Decided & { readonly kind: 'invalid'; readonly deferral: TlsDeferral })
  | (Decided & { readonly kind: 'skip-server'; readonly reason: string; readonly dsn: string; readonly resultType?: TlsRptResultType; readonly report?: ReportFacts })
  | (Decided & { readonly kind: 'defer-server'; readonly deferral: TlsDeferral; readonly resultType?: TlsRptResultType; readonly report?: ReportFacts });

type Connect = Extract<Combined, { kind: 'connect' }>;

/** Each source's latest answer (server over hop), in the order the sources were asked. */
function latest(steps: readonly TraceStep[]): Map<PolicySourceName, SourceAnswer> {
  const out = new Map<PolicySourceName, SourceAnswer>();
  for (const s of steps) out.set(s.source, s.answer);
  return out;
}

function trace(steps: readonly TraceStep[], winner: PolicySourceName, why: string): PolicyTrace {
  return Object.freeze({ steps: Object.freeze([...steps]), winner, why });
}

/** Rule 1: the first source that stops the connection. */
function stopper(answers: Map<PolicySourceName, SourceAnswer>, steps: readonly TraceStep[], label: string): Combined | undefined {
  for (const [name, a] of answers) {
    const base = { winner: name, label: a.label ?? label, warnings: [], ...(a.kind === 'invalid' && a.tableEntry ? { tableEntry: a.tableEntry } : {}) };
    if (a.kind === 'invalid') return { ...base, kind: 'invalid', deferral: a.deferral, trace: trace(steps, name, `fail closed: ${a.note}`) };
    if (a.kind === 'defer-server') {
      return { ...base, kind: 'defer-server', deferral: a.deferral, ...(a.resultType ? { resultType: a.resultType } : {}), ...(a.report ? { report: a.report } : {}), trace: trace(steps, name, `server deferred: ${a.note}`) };
    }
    if (a.kind === 'skip-server') return { ...base, kind: 'skip-server', reason: a.reason, dsn: a.dsn, ...(a.resultType ? { resultType: a.resultType } : {}), trace: trace(steps, name, `server skipped: ${a.note}`) };
  }
  return undefined;
}

type Demand = Extract<SourceAnswer, { kind: 'demand' }>;

function demand(answers: Map<PolicySourceName, SourceAnswer>, name: PolicySourceName): Demand | undefined {
  const a = answers.get(name);
  return a?.kind === 'demand' ? a : undefined;
}

function published(answers: Map<PolicySourceName, SourceAnswer>, name: PolicySourceName): Published | undefined {
  const a = answers.get(name);
  return a?.kind === 'published' ? a.published : undefined;
}

/** Rules 2–5: the winning demand and its level. */
function winning(answers: Map<PolicySourceName, SourceAnswer>, base: Demand): { winner: PolicySourceName; level: TlsLevel; answer: Demand; why: string } {
  if (demand(answers, 'tls-required-no')) {
    // RFC 8689 §5 / Postfix ≥3.10: never raise, cap at may.
    const level = levelRank(base.level) > levelRank('may') ? 'may' : base.level;
    return { winner: 'tls-required-no', level, answer: demand(answers, 'tls-required-no')!, why: 'TLS-Required: No caps the main.cf level at may; no table is consulted' };
  }
  const table = demand(answers, 'table');
  if (table) return { winner: 'table', level: table.level, answer: table, why: 'a policy table entry overrides the main.cf level' };
  const site = demand(answers, 'per-site');
  if (site) {
    // smtp_tls_policy.c: a per-site MAY yields to a stronger global level.
    if (site.level === 'may' && levelRank(base.level) > levelRank('may')) {
      return { winner: 'per-site', level: base.level, answer: site, why: 'the per-site MAY yields to the stronger main.cf level' };
    }
    return { winner: 'per-site', level: site.level, answer: site, why: 'a per-site entry overrides the main.cf level' };
  }
  return { winner: 'default', level: base.level, answer: base, why: 'no other source demands anything here' };
}

/** What the rules so far decided, before the published policies. */
interface Base {
  readonly steps: readonly TraceStep[];
  readonly decided: Pick<Decided, 'winner' | 'label' | 'tableEntry'>;
  readonly level: TlsLevel;
  readonly configuredLevel?: TlsLevel;
  readonly entry?: PolicyEntry;
  readonly report?: ReportFacts;
  readonly warnings: string[];
  readonly why: string;
}

function connect(b: Base, extra: Partial<Pick<Connect, 'dane' | 'sts' | 'stsRequirement'>> = {}): Combined {
  return {
    ...b.decided,
    kind: 'connect',
    level: b.level,
    ...(b.configuredLevel ? { configuredLevel: b.configuredLevel } : {}),
    ...(b.entry ? { entry: b.entry } : {}),
    ...(b.report ? { report: b.report } : {}),
    ...extra,
    warnings: b.warnings,
    trace: trace(b.steps, b.decided.winner, b.why),
  };
}

/** Combine the answers; see the header for the precedence. */
export function combine(steps: readonly TraceStep[], ctx: CombineContext): Combined {
  const answers = latest(steps);
  const fallbackLabel = 'smtp_tls_security_level';
  const stop = stopper(answers, steps, fallbackLabel);
  if (stop) return stop;
  const main = demand(answers, 'default');
  if (!main) {
    return { kind: 'invalid', deferral: CONFIG_PROBLEM, winner: 'default', label: fallbackLabel, warnings: [], trace: trace(steps, 'default', 'fail closed: no main.cf level') };
  }
  const w = winning(answers, main);
  const b: Base = {
    steps,
    decided: { winner: w.winner, label: w.answer.label ?? fallbackLabel, ...(w.answer.tableEntry ? { tableEntry: w.answer.tableEntry } : {}) },
    level: w.level,
    ...(w.answer.entry ? { entry: w.answer.entry } : {}),
    ...(w.answer.report ? { report: w.answer.report } : {}),
    warnings: [],
    why: w.why,
  };
  if (b.level === 'dane' || b.level === 'dane-only') return daneRule(answers, b, b.level, ctx);
  return stsRule(answers, b);
}

/** Rule 6: DANE for a `dane` / `dane-only` level. */
function daneRule(answers: Map<PolicySourceName, SourceAnswer>, b: Base, level: 'dane' | 'dane-only', ctx: CombineContext): Combined {
  const d = published(answers, 'dane');
  if (d?.kind === 'tlsa') {
    // RFC 7672: usable TLSA records authenticate the server; MTA-STS does not apply (RFC 8461 §2).
    return connect({
      ...b, decided: { ...b.decided, winner: 'dane', label: `TLSA records of ${d.dane.qname}` },
      report: d.report, why: `${b.why}; usable TLSA records (${d.dane.qname}): DANE applies${d.dane.halfdane ? ' (MX RRset insecure: halfdane)' : ''}`,
    }, { dane: d.dane });
  }
  if (d?.kind === 'dane-fallback') {
    const sts = published(answers, 'mta-sts');
    if (level === 'dane' && sts) return stsRule(answers, { ...b, level: d.level, why: `${b.why}; ${level} without usable DANE (${d.why}): the MTA-STS policy applies` });
    const why = `${b.why}; ${level} without usable DANE (${d.why}) runs as ${d.level}`;
    return connect({ ...b, level: d.level, configuredLevel: level, ...(d.report ? { report: d.report, decided: { ...b.decided, winner: 'dane' } } : {}), why });
  }
  if (answers.has('dane') && ctx.dnssecEnabled) {
    // Hop step: TLSA records are looked up per MX host (server step).
    const why = `${b.why}; ${level}: TLSA records are looked up for each MX host`;
    if (level === 'dane-only') return connect({ ...b, why });
    return connect({ ...b, level: 'may', configuredLevel: level, why: `${why} (may until then)` });
  }
  const x = daneWithoutTlsa(level, ctx.nexthop, ctx.dnssecEnabled);
  const warnings = x.warning ? [x.warning] : [];
  if (x.kind === 'invalid') {
    return { ...b.decided, kind: 'invalid', deferral: x.deferral, warnings, trace: trace(b.steps, b.decided.winner, `${level} without usable TLSA records: ${x.deferral.reason}`) };
  }
  return connect({ ...b, level: x.level, configuredLevel: level, warnings, why: `${b.why}; ${level} without usable TLSA records runs as ${x.level}` });
}

/** Rule 7: MTA-STS where published (the source stays silent where a table entry or TLS-Required: No decides). */
function stsRule(answers: Map<PolicySourceName, SourceAnswer>, b: Base): Combined {
  const p = published(answers, 'mta-sts');
  if (!p || (p.kind !== 'sts-policy' && p.kind !== 'sts-server')) return connect(b);
  const mode = p.policy.mode === 'enforce' ? 'enforce' : 'testing';
  if (p.kind === 'sts-policy') {
    // Hop step: the MX hosts are not known yet.
    return connect({ ...b, why: `${b.why}; MTA-STS policy of ${p.policy.domain} (mode ${mode}, id ${p.policy.id}) is applied to each MX host` });
  }
  const decided = { ...b.decided, winner: 'mta-sts' as const, label: `MTA-STS policy of ${p.policy.domain}` };
  const plan: StsPlan = Object.freeze({ domain: p.policy.domain, mode, id: p.policy.id, mxHost: p.mxHost, listed: p.listed });
  if (mode === 'enforce' && !p.listed) {
    // RFC 8461 §5: enforce — never deliver to an MX host that matches no mx pattern.
    const reason = stsReasons.notListed(p.policy.domain, p.mxHost);
    // Postfix smtp_tls_authorize_mx_hostname(): the warning for a host it will not connect to.
    const warnings = [...b.warnings, stsMxWarning(p.mxHost, p.policy.domain)];
    return { ...decided, kind: 'skip-server', reason, dsn: '4.7.5', resultType: 'validation-failure', report: p.report, warnings, trace: trace(b.steps, 'mta-sts', `server skipped: ${reason}`) };
  }
  if (mode === 'testing') {
    return connect({ ...b, decided, report: p.report, why: `${b.why}; MTA-STS policy of ${p.policy.domain} in mode testing: its checks are recorded, not enforced` }, { sts: plan });
  }
  if (levelRank(b.level) >= levelRank('verify')) {
    // MTA-STS never lowers what main.cf demands: verify/secure keep their own checks.
    return connect({ ...b, decided, report: p.report, why: `${b.why}; MTA-STS policy of ${p.policy.domain} (enforce): MX host listed; the stronger ${b.level} level is kept` }, { sts: plan });
  }
  const { configuredLevel: _drop, entry: _entry, ...rest } = b;
  return connect({ ...rest, decided, level: 'secure', report: p.report, why: `${b.why}; MTA-STS policy of ${p.policy.domain} (enforce): a valid certificate for ${p.mxHost}, TLS 1.2 or later` }, { sts: plan, stsRequirement: p.requirement });
}
