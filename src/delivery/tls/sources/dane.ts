/**
 * dane.ts — the DANE source (RFC 7672; Postfix smtp_tls_policy.c
 * dane_init()): for a server of a `dane` or `dane-only` destination, its
 * TLSA records from the DNSSEC-validating resolver and what they make of
 * the connection.
 *
 * Contract:
 * - Hop step: silent (TLSA records belong to MX hosts). Its presence tells
 *   the combiner that `dane-only` is decided per server, not at the hop.
 * - Server step, only where the hop decided `dane` or `dane-only` (anything
 *   else: silent, no lookup) and DNSSEC lookups are on
 *   (smtp_dns_support_level = dnssec with `dns` in smtp_host_lookup; off:
 *   silent, the hop step already ran `dane` as `may` with Postfix's warning):
 *     - dane.ts daneBeforeLookup() (insecure MX under dane-only or insecure-MX
 *       policy `may`), then dns/tlsa.ts lookupTlsa() (the host's address
 *       lookup must be secure; CNAME rules of RFC 7672 §2.2.2), then
 *       daneAfterLookup();
 *     - `published` `tlsa` with the DANE plan (usable records, TLSA base
 *       domain for SNI and the DANE-TA names, halfdane) and the RFC 8460
 *       facts (policy type `tlsa`, the records in presentation form);
 *     - `published` `dane-fallback` (`may` without TLSA or with an insecure
 *       zone, `encrypt` when records exist but none is usable);
 *     - `defer-server` for a TLSA lookup error (`TLSA lookup error for
 *       host:port`, 4.7.5, `dnssec-invalid`) and for dane-only without usable
 *       DANE (`no TLSA records found`, `non DNSSEC destination`, `TLSA
 *       records unusable`, `dane-required`) — fail closed, never a downgrade.
 *   Postfix's warnings (`unusable TLSA RR`, `all TLSA records unusable,
 *   fallback to unauthenticated TLS`, `DANE TLSA lookup problem: ...`) are
 *   logged through `warn` as they happen.
 * - Without a resolver (`sealpost tls explain -n`): silent, "not looked up".
 *
 * Not here: matching the certificate chain (tls/dane.ts matchDane(), called
 * by engine.ts after the handshake), the precedence over MTA-STS (combine.ts).
 */
import type { Config } from '../../../config/types.ts';
import { parseNexthop } from '../../../maps/domain-walk.ts';
import type { PolicyResolver } from '../../dns/resolver.ts';
import { lookupTlsa, type TlsaLookup } from '../../dns/tlsa.ts';
import { daneAfterLookup, daneBeforeLookup, daneSettings, tlsaPresentation, type DaneContext, type DaneDecision, type DaneSettings } from '../dane.ts';
import { CONFIG_PROBLEM } from '../reasons.ts';
import type { DanePlan } from '../types.ts';
import type { PolicySource, ReportFacts, ServerQuery, SourceAnswer } from './types.ts';

export interface DaneSourceEnv {
  readonly config: Config;
  /** The DNSSEC-validating resolver (sealpost_dns_resolvers); undefined: no lookups (offline explain). */
  readonly resolver: PolicyResolver | undefined;
  readonly warn: (text: string) => void;
  /** RFC 8460 policy-domain of a next-hop domain (policy.ts reportDomain). */
  readonly reportDomain: (domain: string) => string;
}

function isDomainHop(nexthop: string): { bracketed: boolean } | undefined {
  try {
    return { bracketed: parseNexthop(nexthop).bracketed };
  } catch {
    return undefined;
  }
}

/** The DANE context of one server (dane.ts DaneContext). */
function contextOf(q: ServerQuery, level: 'dane' | 'dane-only', s: DaneSettings, bracketed: boolean): DaneContext {
  const { hostname, address, port } = q.server;
  return {
    level,
    nexthop: q.nexthop,
    dnssecEnabled: s.dnssecEnabled,
    // A [nexthop] has no MX lookup: it counts as a secure MX (postconf(5) smtp_dns_support_level).
    mxSecure: bracketed ? undefined : q.server.mxAuthenticated,
    ...(bracketed ? {} : { mxNames: { qname: q.nexthopDomain, rname: q.nexthopDomain } }),
    insecureMxPolicy: s.insecureMxPolicy,
    digests: s.digests,
    where: `${hostname}[${address}]:${port}`,
  };
}

function report(domain: string, tlsa: TlsaLookup | undefined): ReportFacts {
  const strings = tlsa?.kind === 'secure-records' ? tlsa.records.map(tlsaPresentation) : [];
  return Object.freeze({ type: 'tlsa' as const, domain, strings: Object.freeze(strings), mxHostPatterns: Object.freeze([]) });
}

/** A DANE decision as the source's answer. */
function answerOf(d: DaneDecision, ctx: DaneContext, tlsa: TlsaLookup | undefined, facts: ReportFacts): SourceAnswer {
  const qname = tlsa && tlsa.kind === 'secure-records' ? tlsa.qname : '';
  if (d.kind === 'defer') {
    return {
      kind: 'defer-server', deferral: { reason: d.reason, dsn: d.dsn }, resultType: d.failure.type,
      note: `${ctx.where}: ${d.reason}${tlsa?.kind === 'error' ? ` (${tlsa.detail})` : ''}`, label: 'DANE', report: facts,
    };
  }
  if (d.kind === 'fallback') {
    return {
      kind: 'published', label: 'DANE',
      note: `${ctx.where}: ${d.why}: ${ctx.level} runs as ${d.level}`,
      published: { kind: 'dane-fallback', level: d.level, why: d.why, ...(d.level === 'encrypt' && facts.strings.length > 0 ? { report: facts } : {}) },
    };
  }
  const plan: DanePlan = Object.freeze({
    level: ctx.level, halfdane: d.level === 'halfdane', records: d.records, baseDomain: d.baseDomain,
    matchNames: d.matchNames, mustFail: d.mustFail, qname,
  });
  return {
    kind: 'published', label: `TLSA records of ${qname}`,
    note: `${qname}: ${d.records.length} usable TLSA record(s) of ${facts.strings.length}; SNI ${d.baseDomain}${plan.halfdane ? '; MX RRset insecure (halfdane)' : ''}`,
    published: { kind: 'tlsa', level: ctx.level, dane: plan, report: facts },
  };
}

export function daneSource(env: DaneSourceEnv): PolicySource {
  let settings: DaneSettings | { readonly error: string };
  try {
    settings = daneSettings(env.config);
  } catch (err) {
    settings = { error: (err as Error).message };
  }
  const s = settings;
  return {
    name: 'dane',
    hop(): SourceAnswer {
      if ('error' in s) return { kind: 'silent', note: s.error };
      return { kind: 'silent', note: s.dnssecEnabled ? 'TLSA records are looked up for each MX host' : 'DNSSEC lookups are off (smtp_dns_support_level)' };
    },
    async server(q: ServerQuery): Promise<SourceAnswer> {
      const level = q.hopLevel;
      if (level !== 'dane' && level !== 'dane-only') return { kind: 'silent', note: `not asked: level ${level ?? 'none'}` };
      if ('error' in s) {
        env.warn(s.error);
        return { kind: 'defer-server', deferral: CONFIG_PROBLEM, note: s.error };
      }
      const hop = isDomainHop(q.nexthop);
      if (!s.dnssecEnabled || !hop) return { kind: 'silent', note: 'DNSSEC lookups are off: decided at the hop step' };
      const ctx = contextOf(q, level, s, hop.bracketed);
      const facts = report(env.reportDomain(q.nexthopDomain), undefined);
      const before = daneBeforeLookup(ctx);
      if (before) return done(env, before, ctx, undefined, facts);
      if (!env.resolver) return { kind: 'silent', note: 'TLSA records not looked up (no network)' };
      const host = { hostname: q.server.hostname, addressAuthenticated: q.server.addressAuthenticated ?? false, ...(q.server.canonicalName ? { canonicalName: q.server.canonicalName } : {}) };
      const tlsa = await lookupTlsa(env.resolver, host, q.server.port, { forceInsecureHostLookup: s.forceInsecureHostLookup });
      return done(env, daneAfterLookup(ctx, tlsa), ctx, tlsa, report(facts.domain ?? '', tlsa));
    },
  };
}

function done(env: DaneSourceEnv, d: DaneDecision, ctx: DaneContext, tlsa: TlsaLookup | undefined, facts: ReportFacts): SourceAnswer {
  for (const w of d.warnings) env.warn(w);
  return answerOf(d, ctx, tlsa, facts);
}
