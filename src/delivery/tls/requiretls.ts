/**
 * requiretls.ts — REQUIRETLS (RFC 8689) on the delivery side, as Postfix 3.11
 * decides it: the `smtp_requiretls_policy` action for a next hop, and at each
 * step of a delivery attempt whether to go on (and pass `REQUIRETLS` on),
 * try the next MX host, or give up with Postfix's exact 5.7.30 / 5.7.10
 * text; plus the `requiretls` feature of the `tls=` log field.
 *
 * The decision table (PF-SRC smtp_connect.c smtp_get_effective_tls_level,
 * smtp_proto.c; postconf(5) smtp_requiretls_policy, smtp_log_tls_feature_status):
 *
 *   step                     | enforce                        | opportunistic+starttls         | opportunistic
 *   -------------------------+--------------------------------+--------------------------------+-------------------------
 *   level cannot match certs | 5.7.10 "...disables certificate| (level none: 5.7.10 "...disables| go on
 *    (before connecting)     |  matching..." !requiretls:     |  encryption..." !requiretls:   |
 *                            |  nocertmatch                   |  noencryption; else info only) |
 *   no STARTTLS offered      | 5.7.30 "...TLS service was not offered by host H" !requiretls: | plaintext, requiretls:none
 *                            |  nostarttls, next MX                                            |
 *   STARTTLS refused         | 5.7.10 "...host H refused to start TLS: R" !requiretls:nostarttls, next MX | level decides
 *   certificate not verified | 5.7.10 "...no matching|trusted | the level's own failure (4.7.5 Server certificate not
 *    (level requires it)     |  server certificate..." next MX|  verified); requiretls:nocertmatch
 *   EHLO after TLS lacks     | 5.7.30 "...no server was found | go on without the parameter: requiretls:none
 *    REQUIRETLS              |  that supports REQUIRETLS..."  |  (info line)
 *   EHLO after TLS has it    | send REQUIRETLS: `requiretls` when the certificate matched, else
 *                            |  `requiretls:nocertmatch`
 *
 * `disable` (and a message without REQUIRETLS, or requiretls_enable = no)
 * never changes anything. "Try the next MX" is Postfix's
 * SMTP_MISC_FAIL_SOFT_NON_FINAL: the failure is final (a bounce, 5.x) only
 * when no other server is left. A policy lookup error is 4.7.10 (defer).
 *
 * RFC 8689 §4.2.1 also asks for a secure MX lookup (DNSSEC or MTA-STS).
 * Postfix expresses that through the level: `dane` stays `dane` only with a
 * DNSSEC-signed MX and usable TLSA; `secure`/`verify` come from an MTA-STS
 * policy or the postmaster's own table; so "certificate matching required"
 * (TLS_MUST_MATCH) is the whole test, and this module takes the effective
 * level, not a separate "MX was secure" flag.
 *
 * Contract: pure, no I/O except through the injected table lookup of
 * `evaluateRequireTlsPolicy`. `TLS-Required: No` is overridden by REQUIRETLS
 * (postconf(5) requiretls_enable; smtp.h STATE_TLS_NOT_REQUIRED).
 *
 * Not here: the SMTP session that calls these steps (delivery/smtp/attempt.ts,
 * session.ts), the tls= security-level feature (delivery/smtp/record.ts).
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import type { LookupResult } from '../../maps/types.ts';
import type { AppliedPolicy, RequireTlsStatus } from '../outcome.ts';
import { mustMatch } from './level.ts';
import type { TlsLevel } from './types.ts';

export type RequireTlsAction = 'enforce' | 'opportunistic+starttls' | 'opportunistic' | 'disable';
export type RequireTlsPolicy = RequireTlsAction | 'error';

const ACTIONS: readonly RequireTlsAction[] = ['enforce', 'opportunistic+starttls', 'opportunistic', 'disable'];

/** What a table lookup answered (maps/ LookupResult shape, reduced to what is needed here). */
export type PolicyLookup = { readonly kind: 'found'; readonly value: string } | { readonly kind: 'notfound' } | { readonly kind: 'error' };

export interface PolicyTables {
  lookup(table: string, key: string): Promise<PolicyLookup>;
  /** True for fixed-string tables (hash, lmdb, cdb, inline ...): they are also asked `.parent` keys. */
  isFixed(table: string): boolean;
}

/**
 * PolicyTables over the daemon's open tables (maps/registry.ts TableSet.get):
 * an open or lookup failure is `error` (the evaluation then fails closed,
 * 4.7.10); fixed-string tables are those whose keys are not patterns.
 */
export function policyTables(open: (spec: string) => Promise<{ readonly keyKind: 'fixed' | 'pattern'; lookup(key: string): Promise<LookupResult> }>): PolicyTables {
  const fixed = new Map<string, boolean>();
  return {
    async lookup(spec, key) {
      try {
        const table = await open(spec);
        fixed.set(spec, table.keyKind === 'fixed');
        const r = await table.lookup(key);
        return r.kind === 'error' ? { kind: 'error' } : r;
      } catch {
        return { kind: 'error' };
      }
    },
    isFixed: (spec) => fixed.get(spec) ?? false,
  };
}

/** smtp_reqtls_policy_eval's query name: the next hop without [], :port or :service, in A-label form. */
export function policyQueryName(nexthop: string): string {
  let h = nexthop.trim();
  const br = /^\[([^\]]*)\](?::.*)?$/.exec(h);
  if (br) h = br[1]!;
  else if (isIP(h) !== 6) h = h.replace(/:[^:]*$/, '');
  if (isIP(h) !== 0 || /^[\x00-\x7f]*$/.test(h)) return h.toLowerCase();
  return domainToASCII(h) || h;
}

/**
 * Evaluate `smtp_requiretls_policy` (already split into items) for a next hop,
 * first match wins; no match = `enforce` (smtp_reqtls_policy.c). A table
 * result must be a single action (no table, no list); `error` and unknown
 * words end the evaluation with `error`. `warn` gets Postfix's warning texts.
 */
export async function evaluateRequireTlsPolicy(
  items: readonly string[], nexthop: string, tables: PolicyTables, warn: (text: string) => void, origin = 'smtp_requiretls_policy',
): Promise<RequireTlsPolicy> {
  const name = policyQueryName(nexthop);
  for (const item of items) {
    const word = item.toLowerCase();
    if ((ACTIONS as readonly string[]).includes(word)) return word as RequireTlsAction;
    if (word === 'error') return 'error';
    if (!item.includes(':')) {
      warn(`${origin}: unknown policy action: '${item}' -- ignoring the remainder of this policy`);
      return 'error';
    }
    // Fixed-string tables are also searched with the .parent domains (never for an address).
    for (let key: string | undefined = name; key; ) {
      const r = await tables.lookup(item, key);
      if (r.kind === 'error') {
        warn(`${origin}: ${item}: table lookup error -- ignoring the remainder of this policy`);
        return 'error';
      }
      if (r.kind === 'found') {
        const v = r.value.trim();
        if (v.includes(':')) {
          warn(`table ${item}: nested lookup result "${v}" is not allowed -- ignoring remainder of policy`);
          return 'error';
        }
        if (/[\s,]/.test(v)) {
          warn(`table ${item}: composite lookup result "${v}" is not allowed -- ignoring remainder of policy`);
          return 'error';
        }
        return evaluateRequireTlsPolicy([v], key, tables, warn, item);
      }
      if (!tables.isFixed(item) || isIP(key) !== 0) break;
      const dot = key.indexOf('.', 1);
      key = dot < 0 ? undefined : key.slice(dot);
    }
  }
  return 'enforce';
}

/** The action for this message: `disable` unless the sender asked for REQUIRETLS and requiretls_enable = yes. */
export function requireTlsAction(message: { readonly requireTls: boolean }, requireTlsEnable: boolean, policy: RequireTlsPolicy): RequireTlsPolicy {
  return requireTlsEnable && message.requireTls ? policy : 'disable';
}

/** smtp.h STATE_TLS_NOT_REQUIRED: `TLS-Required: No` applies unless REQUIRETLS was requested. */
export function tlsRequiredNoApplies(message: { readonly requireTls: boolean; readonly tlsRequiredNo: boolean }, settings: { readonly tlsRequiredEnable: boolean; readonly requireTlsEnable: boolean }): boolean {
  return settings.tlsRequiredEnable && message.tlsRequiredNo && !(settings.requireTlsEnable && message.requireTls);
}

/** smtp_reqtls_policy.h TLS_REQUIRED_BY_REQTLS_POLICY: no plaintext, not even the `may` fallback. */
export function tlsRequiredByPolicy(action: RequireTlsPolicy): boolean {
  return action === 'enforce' || action === 'opportunistic+starttls';
}

/**
 * Does the policy a server is reached with verify its certificate, in
 * REQUIRETLS's sense (postconf(5) requiretls_enable: TLS_MUST_MATCH —
 * `fingerprint`, `verify`, `secure`, `dane-only`, `dane` that stayed DANE;
 * RFC 8689 §4.2.1 also names MTA-STS, which counts only in `enforce` mode: a
 * `testing` policy never stops delivery, so it verifies nothing).
 */
export function certificateMatchRequired(applied: Pick<AppliedPolicy, 'level' | 'source' | 'stsMode'>): boolean {
  if (applied.source === 'mta-sts' && applied.stsMode !== 'enforce') return false;
  return mustMatch(applied.level);
}

/** One feature of the tls= field (pol_stats.c): its name, the name it ended as, and whether it was decided. */
export interface FeatureStatus {
  readonly name: string;
  readonly final?: string;
  readonly status: 'undecided' | 'compliant' | 'violation';
}

/** pol_stats_format(): `[!]name[:final][?]` joined with `/`. */
export function formatFeatures(features: readonly (FeatureStatus | undefined)[]): string {
  return features
    .filter((f): f is FeatureStatus => f !== undefined)
    .map((f) => `${f.status === 'violation' ? '!' : ''}${f.name}${f.final !== undefined && f.final !== f.name ? `:${f.final}` : ''}${f.status === 'undecided' ? '?' : ''}`)
    .join('/');
}

const FINALS = new Set(['nocertmatch', 'nostarttls', 'noencryption', 'none']);

/** The plain-data form of the requiretls feature for a session record (outcome.ts RequireTlsStatus); undefined when inactive. */
export function requireTlsStatus(action: RequireTlsPolicy, feature: FeatureStatus | undefined, sent: boolean): RequireTlsStatus | undefined {
  if (action === 'disable' || action === 'error') return undefined;
  const f = feature ?? requireTlsFeature(action)!;
  const final = f.final !== undefined && FINALS.has(f.final) ? (f.final as RequireTlsStatus['final']) : undefined;
  return Object.freeze({ policy: action, status: f.status, sent, ...(final ? { final } : {}) });
}

/** The tls= feature of a record's REQUIRETLS status (`requiretls`, `!requiretls:nostarttls`, `requiretls?` ...). */
export function statusFeature(s: RequireTlsStatus): FeatureStatus {
  return { name: 'requiretls', status: s.status, ...(s.final ? { final: s.final } : {}) };
}

/** The requiretls feature before anything was decided (`requiretls?` if the attempt ends there); undefined when inactive. */
export function requireTlsFeature(action: RequireTlsPolicy): FeatureStatus | undefined {
  return action === 'disable' ? undefined : { name: 'requiretls', status: 'undecided' };
}

export type Step =
  | { readonly kind: 'continue'; readonly sendRequireTls: boolean; readonly feature?: FeatureStatus; readonly info?: string }
  /** Give up on this server: try the next one (`nextMx`), the failure is final only when none is left. */
  | { readonly kind: 'fail'; readonly dsn: string; readonly text: string; readonly nextMx: boolean; readonly feature?: FeatureStatus };

const prefix = 'Sender requested REQUIRETLS, but';
const decided = (final: string, status: FeatureStatus['status']): FeatureStatus => ({ name: 'requiretls', final, status });
const go = (feature?: FeatureStatus, info?: string): Step => ({ kind: 'continue', sendRequireTls: false, ...(feature ? { feature } : {}), ...(info ? { info } : {}) });

/**
 * Before connecting (smtp_get_effective_tls_level). `host` is the server's
 * name (iter->host); `matchRequired` is certificateMatchRequired() of the
 * server's policy (default: the level's own TLS_MUST_MATCH).
 */
export function beforeConnect(action: RequireTlsPolicy, level: TlsLevel, host: string, queueId: string, matchRequired = mustMatch(level)): Step {
  if (action === 'error') return { kind: 'fail', dsn: '4.7.10', text: `REQUIRETLS policy configuration error. The last attempted server was ${host}`, nextMx: false };
  if (action === 'enforce' && !matchRequired) {
    return { kind: 'fail', dsn: '5.7.10', text: `${prefix} my configured TLS security level '${level}' disables certificate matching. The last attempted server was ${host}`, nextMx: true, feature: decided('nocertmatch', 'violation') };
  }
  if (action === 'opportunistic+starttls') {
    if (level === 'none') {
      return { kind: 'fail', dsn: '5.7.10', text: `${prefix} my configured TLS security level '${level}' disables encryption. The last attempted server was ${host}`, nextMx: true, feature: decided('noencryption', 'violation') };
    }
    if (!matchRequired) return go(undefined, `${queueId}: ${prefix} my configured TLS security level '${level}' disables certificate matching. The last attempted server was ${host}`);
  }
  return go();
}

/** The server did not offer STARTTLS (`namaddr` = host[addr]:port). */
export function noStarttls(action: RequireTlsPolicy, namaddr: string): Step {
  if (tlsRequiredByPolicy(action)) {
    return { kind: 'fail', dsn: '5.7.30', text: `${prefix} TLS service was not offered by host ${namaddr}`, nextMx: true, feature: decided('nostarttls', 'violation') };
  }
  return go(action === 'opportunistic' ? decided('none', 'compliant') : undefined);
}

/** The server answered STARTTLS with something other than 220. */
export function starttlsRefused(action: RequireTlsPolicy, namaddr: string, reply: string): Step {
  if (tlsRequiredByPolicy(action)) {
    return { kind: 'fail', dsn: '5.7.10', text: `${prefix} host ${namaddr} refused to start TLS: ${reply.replace(/\r?\n/g, ' ')}`, nextMx: true, feature: decided('nostarttls', 'violation') };
  }
  return go(action === 'opportunistic' ? decided('none', 'compliant') : undefined);
}

/**
 * The level required a certificate match and the certificate failed it
 * (`trusted`: the chain was fine but no name matched). Only `enforce` turns
 * the level's own failure into a REQUIRETLS failure.
 */
export function certificateFailed(action: RequireTlsPolicy, namaddr: string, trusted: boolean): Step | { readonly kind: 'level'; readonly feature?: FeatureStatus } {
  if (action === 'enforce') {
    return { kind: 'fail', dsn: '5.7.10', text: `${prefix} no ${trusted ? 'matching' : 'trusted'} server certificate was found. The last attempted server was ${namaddr}`, nextMx: true, feature: decided('nocertmatch', 'violation') };
  }
  // The level's own failure applies (4.7.5 Server certificate not verified, enforce.ts).
  return action === 'disable' || action === 'error' ? { kind: 'level' } : { kind: 'level', feature: decided('nocertmatch', 'compliant') };
}

/** EHLO after STARTTLS: does the server offer REQUIRETLS, and did the certificate match? */
export function afterTlsEhlo(action: RequireTlsPolicy, namaddr: string, queueId: string, offered: boolean, certMatched: boolean): Step {
  if (action === 'disable' || action === 'error') return go();
  if (offered) {
    return { kind: 'continue', sendRequireTls: true, feature: certMatched ? { name: 'requiretls', status: 'compliant' } : decided('nocertmatch', 'compliant') };
  }
  if (action === 'enforce') {
    return { kind: 'fail', dsn: '5.7.30', text: `${prefix} no server was found that supports REQUIRETLS. The last attempted server was ${namaddr}`, nextMx: true, feature: decided('none', 'violation') };
  }
  return go(decided('none', 'compliant'), `${queueId}: ${prefix} REQUIRETLS support was not offered by host ${namaddr}`);
}
