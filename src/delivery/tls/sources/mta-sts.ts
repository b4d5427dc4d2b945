/**
 * mta-sts.ts — the MTA-STS source (RFC 8461): the policy a domain publishes,
 * from the daemon's one policy service (mta-sts/service.ts, reached through
 * mta-sts/rpc.ts from a worker thread), and what it asks of each MX host.
 *
 * Contract:
 * - Hop step: silent — without a lookup — when sealpost_mta_sts = no, the
 *   message has `TLS-Required: No` (RFC 8689 §5), a source asked before
 *   already decided (an smtp_tls_policy_maps or per-site entry — except a
 *   `dane` entry, whose fallback is MTA-STS — or an invalid answer), or the
 *   next hop is not a domain found by MX lookup (`[host]`: no MX, nothing to
 *   match). Otherwise the service is asked for the next-hop domain (RFC 8461
 *   §3.4: the policy domain is the next-hop domain):
 *     `policy` (enforce or testing) → `published` `sts-policy`;
 *     `none` (no record, no policy, mode none, a fetch that failed without a
 *     cached policy) → silent, with the reason in the note;
 *     `error` (the service could not be asked) → `invalid`, 4.7.5: the cache
 *     it cannot reach may hold an enforce policy — fail closed.
 * - Server step: for a published policy, match.ts stsForServer() on the MX
 *   host: `published` `sts-server` (listed or not, the requirement). The
 *   combiner skips an unlisted MX under `enforce` where MTA-STS applies, with
 *   Postfix's warning (`MX name 'H' does not match STS MX pattern for 'D'`).
 *
 * Not here: fetching and caching (mta-sts/), the precedence (combine.ts),
 * the certificate checks (verify.ts, engine.ts).
 */
import { parseNexthop } from '../../../maps/domain-walk.ts';
import { stsForServer, stsReasons } from '../../mta-sts/match.ts';
import { appliedStsFields, type StsLookup, type StsPolicySource } from '../../mta-sts/service.ts';
import type { HopQuery, PolicySource, ServerQuery, SourceAnswer } from './types.ts';

export interface StsSourceEnv {
  /** sealpost_mta_sts. */
  readonly enabled: boolean;
  /** The daemon's service (or a worker's client); undefined: no lookups (offline explain). */
  readonly sts: StsPolicySource | undefined;
  readonly warn: (text: string) => void;
}

const silent = (note: string): SourceAnswer => ({ kind: 'silent', note });

/** Why the source is not consulted for this hop, or undefined. */
function notConsulted(env: StsSourceEnv, q: HopQuery): string | undefined {
  if (!env.enabled) return 'sealpost_mta_sts = no';
  if (q.message.tlsRequiredNo) return 'not consulted: TLS-Required: No';
  for (const [name, a] of q.earlier ?? []) {
    if (a.kind === 'invalid') return 'not consulted: the policy is already invalid';
    // issue 11: an explicit local entry wins; a `dane` entry falls to MTA-STS without usable TLSA.
    if ((name === 'table' || name === 'per-site') && a.kind === 'demand' && a.level !== 'dane') return `not consulted: the ${name === 'table' ? 'policy table' : 'per-site'} entry decides`;
  }
  return undefined;
}

/** The note for a lookup without a policy. */
function noneNote(r: Extract<StsLookup, { kind: 'none' }>): string {
  const failed = r.failure ? ` (${r.failure.type})` : '';
  return `no policy: ${r.detail}${failed}`;
}

export function stsSource(env: StsSourceEnv): PolicySource {
  return {
    name: 'mta-sts',
    async hop(q: HopQuery): Promise<SourceAnswer> {
      const skip = notConsulted(env, q);
      if (skip) return silent(skip);
      let domain: string;
      try {
        const p = parseNexthop(q.nexthop);
        if (p.bracketed) return silent('not consulted: a [host] next hop has no MX hosts to match');
        domain = p.host.toLowerCase().replace(/\.$/, '');
      } catch {
        return silent('not consulted: not a domain');
      }
      if (!env.sts) return silent('not looked up (no network)');
      const r = await env.sts.lookup(domain);
      if (r.kind === 'error') {
        const reason = stsReasons.lookupError(domain, r.detail);
        env.warn(reason);
        return { kind: 'invalid', deferral: { reason, dsn: '4.7.5' }, note: reason, label: 'MTA-STS' };
      }
      if (r.kind === 'none') return silent(noneNote(r));
      const p = r.policy;
      const refresh = r.refreshFailure ? `; refresh failed (${r.refreshFailure.type}): ${r.refreshFailure.detail}` : '';
      return {
        kind: 'published', label: `MTA-STS policy of ${p.domain}`,
        note: `policy id ${p.id}, mode ${p.mode}, mx ${p.mx.join(' ')}, ${r.from === 'cache' ? 'cached' : 'fetched'}${refresh}`,
        published: { kind: 'sts-policy', policy: p, from: r.from, report: Object.freeze({ ...appliedStsFields(p) }), ...(r.txt ? { txt: r.txt } : {}) },
      };
    },
    server(q: ServerQuery, atHop: SourceAnswer | undefined): SourceAnswer {
      if (atHop?.kind !== 'published' || atHop.published.kind !== 'sts-policy') return atHop ?? silent('');
      const { policy, report } = atHop.published;
      const mode = policy.mode === 'enforce' ? 'enforce' : 'testing';
      const host = q.server.hostname.replace(/\.$/, '').toLowerCase();
      const plan = stsForServer({ domain: policy.domain, mode, mx: policy.mx }, host);
      const listed = plan.try && plan.pattern !== undefined;
      const requirement = Object.freeze({ level: 'secure' as const, match: Object.freeze([host]), minProtocol: 'TLSv1.2' as const, servername: host });
      return {
        kind: 'published', label: `MTA-STS policy of ${policy.domain}`,
        note: listed ? `${host} matches mx pattern ${plan.try ? plan.pattern : ''}` : `${host} matches no mx pattern (${policy.mx.join(' ')})`,
        published: { kind: 'sts-server', policy, mode, listed, mxHost: host, requirement, report },
      };
    },
  };
}
