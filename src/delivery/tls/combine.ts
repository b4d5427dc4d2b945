/**
 * combine.ts — the TLS policy combiner: from what every policy source said
 * (sources/), the effective demand and a trace of who won and why. Pure: no
 * I/O, no clock, no logging; warnings come back as values.
 *
 * Precedence (Postfix smtp_tls_policy.c policy_create(), in this order):
 *   1. fail closed: any source that answered `invalid` (a bad main.cf level,
 *      a table lookup error, a malformed entry) → no connection, its
 *      deferral; at the server step `defer-server` / `skip-server` → this
 *      server is not tried;
 *   2. `TLS-Required: No` (RFC 8689 §5, Postfix ≥3.10): the main.cf level,
 *      capped at `may`; no table is consulted;
 *   3. an smtp_tls_policy_maps entry — it wins over main.cf, stronger or weaker;
 *   4. the obsolete smtp_tls_per_site: its level, except that a per-site
 *      `may` yields to a stronger main.cf level ("override a wild-card
 *      per-site policy with a more specific global policy");
 *   5. the main.cf level.
 * Then `dane` / `dane-only` without usable TLSA records (level.ts
 * daneWithoutTlsa): `dane` runs as `may` (configured level kept for
 * `tls=dane:may`), `dane-only` defers. The DANE source (issue 11) answers at
 * the server step and, with usable records, takes this rule's place.
 *
 * At the server step a source's server answer replaces its hop answer; the
 * trace keeps both.
 *
 * Not here: asking the sources (policy.ts), main.cf defaults for protocols,
 * ciphers and names (policy.ts completePolicy).
 */
import type { PolicySourceName, TlsRptResultType } from '../outcome.ts';
import { daneWithoutTlsa, levelRank } from './level.ts';
import type { PolicyEntry } from './policy-table.ts';
import { CONFIG_PROBLEM } from './reasons.ts';
import type { ReportFacts, SourceAnswer, TableEntryRef, TraceStep } from './sources/types.ts';
import type { TlsDeferral, TlsLevel } from './types.ts';

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
  /** TlsPolicy.source: `smtp_tls_security_level`, a table spec, `TLS-Required: No`. */
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
    })
  | (Decided & { readonly kind: 'invalid'; readonly deferral: TlsDeferral })
  | (Decided & { readonly kind: 'skip-server'; readonly reason: string; readonly dsn: string; readonly resultType?: TlsRptResultType })
  | (Decided & { readonly kind: 'defer-server'; readonly deferral: TlsDeferral; readonly resultType?: TlsRptResultType });

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
    if (a.kind === 'defer-server') return { ...base, kind: 'defer-server', deferral: a.deferral, ...(a.resultType ? { resultType: a.resultType } : {}), trace: trace(steps, name, `server deferred: ${a.note}`) };
    if (a.kind === 'skip-server') return { ...base, kind: 'skip-server', reason: a.reason, dsn: a.dsn, ...(a.resultType ? { resultType: a.resultType } : {}), trace: trace(steps, name, `server skipped: ${a.note}`) };
  }
  return undefined;
}

type Demand = Extract<SourceAnswer, { kind: 'demand' }>;

function demand(answers: Map<PolicySourceName, SourceAnswer>, name: PolicySourceName): Demand | undefined {
  const a = answers.get(name);
  return a?.kind === 'demand' ? a : undefined;
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

/** Combine the answers; see the header for the precedence. */
export function combine(steps: readonly TraceStep[], ctx: CombineContext): Combined {
  const answers = latest(steps);
  const fallbackLabel = 'smtp_tls_security_level';
  const stop = stopper(answers, steps, fallbackLabel);
  if (stop) return stop;
  const base = demand(answers, 'default');
  if (!base) {
    return { kind: 'invalid', deferral: CONFIG_PROBLEM, winner: 'default', label: fallbackLabel, warnings: [], trace: trace(steps, 'default', 'fail closed: no main.cf level') };
  }
  const w = winning(answers, base);
  const decided = {
    winner: w.winner,
    label: w.answer.label ?? fallbackLabel,
    ...(w.answer.tableEntry ? { tableEntry: w.answer.tableEntry } : {}),
  };
  let level = w.level;
  let configuredLevel: TlsLevel | undefined;
  const warnings: string[] = [];
  let why = w.why;
  if (level === 'dane' || level === 'dane-only') {
    const d = daneWithoutTlsa(level, ctx.nexthop, ctx.dnssecEnabled);
    if (d.warning) warnings.push(d.warning);
    if (d.kind === 'invalid') return { ...decided, kind: 'invalid', deferral: d.deferral, warnings, trace: trace(steps, w.winner, `${level} without usable TLSA records: ${d.deferral.reason}`) };
    configuredLevel = level;
    level = d.level;
    why += `; ${configuredLevel} without usable TLSA records runs as ${level}`;
  }
  return {
    ...decided,
    kind: 'connect',
    level,
    ...(configuredLevel ? { configuredLevel } : {}),
    ...(w.answer.entry ? { entry: w.answer.entry } : {}),
    ...(w.answer.report ? { report: w.answer.report } : {}),
    warnings,
    trace: trace(steps, w.winner, why),
  };
}
