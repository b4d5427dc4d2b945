/**
 * per-site.ts — the obsolete smtp_tls_per_site source (smtp_tls_policy.c
 * tls_site_lookup(), used only while smtp_tls_policy_maps is empty). Postfix
 * looks it up twice: by the next-hop destination (the hop step here) and by
 * the server's host name when that differs (the server step), and merges the
 * two answers in its own precedence — a permutation of the level order:
 *
 *   found      previous answer             result
 *   NONE       none, MAY, not found        none      (overrides MAY)
 *   MAY        not found                   may       (never overrides NONE)
 *   MUST_NOPEERMATCH  weaker than encrypt  encrypt
 *   MUST       weaker than verify          verify
 *
 * ("A combined per-site (NONE+MAY) consistently overrides global policy with
 * NONE"; the rule that a per-site MAY yields to a stronger main.cf level is
 * the combiner's, since it involves the main.cf source.)
 *
 * Contract:
 * - Keys are the next hop verbatim, then the server host name, each looked
 *   up in the tables in order (no `.parent` walk); the first table with the
 *   key answers.
 * - Fail closed: a lookup error logs `TABLE: next-hop destination "X":
 *   per-site table lookup error` (`server hostname "H"` at the server step)
 *   and gives `Temporary lookup error` 4.3.0 — the only place Postfix uses
 *   that text for TLS; an unknown value gives `client TLS configuration
 *   problem` 4.7.5. At the hop step that is `invalid` (no connection); at the
 *   server step `defer-server` (this server is not tried).
 *
 * Not here: smtp_tls_policy_maps (policy-maps.ts).
 */
import type { WalkTable } from '../../../maps/domain-walk.ts';
import { levelRank } from '../level.ts';
import { CONFIG_PROBLEM, TEMP_LOOKUP_ERROR } from '../reasons.ts';
import type { TlsLevel } from '../types.ts';
import { openTables, type TableSourceEnv } from './policy-maps.ts';
import type { HopQuery, PolicySource, ServerQuery, SourceAnswer, TableEntryRef } from './types.ts';

const PER_SITE: Readonly<Record<string, TlsLevel>> = { NONE: 'none', MAY: 'may', MUST_NOPEERMATCH: 'encrypt', MUST: 'verify' };

type SiteLookup =
  | { readonly kind: 'notfound' }
  | { readonly kind: 'found'; readonly level: TlsLevel; readonly entry: TableEntryRef }
  | { readonly kind: 'error'; readonly answer: SourceAnswer };

async function lookupSite(env: TableSourceEnv, tables: readonly WalkTable[], key: string, siteClass: string): Promise<SiteLookup> {
  for (const t of tables) {
    const r = await t.lookup(key);
    if (r.kind === 'error') {
      env.warn(`${t.spec}: ${siteClass} "${key}": per-site table lookup error`);
      return { kind: 'error', answer: { kind: 'invalid', deferral: TEMP_LOOKUP_ERROR, note: `lookup error for ${siteClass} "${key}"`, label: t.spec } };
    }
    if (r.kind === 'notfound') continue;
    const entry = Object.freeze({ table: t.spec, key, value: r.value });
    const level = PER_SITE[r.value.trim().toUpperCase()];
    if (level === undefined) {
      env.warn(`${t.spec}: unknown TLS policy '${r.value}' for ${siteClass} ${key}`);
      return { kind: 'error', answer: { kind: 'invalid', deferral: CONFIG_PROBLEM, note: `unknown TLS policy '${r.value}'`, tableEntry: entry, label: t.spec } };
    }
    return { kind: 'found', level, entry };
  }
  return { kind: 'notfound' };
}

/** tls_site_lookup()'s precedence: merge a found level into the previous answer. */
export function mergeSiteLevel(previous: TlsLevel | undefined, found: TlsLevel): TlsLevel {
  if (found === 'none') return previous === undefined || levelRank(previous) <= levelRank('may') ? 'none' : previous;
  if (found === 'may') return previous ?? 'may';
  return previous === undefined || levelRank(previous) < levelRank(found) ? found : previous;
}

function answerFor(level: TlsLevel, entry: TableEntryRef, siteClass: string): SourceAnswer {
  return { kind: 'demand', level, tableEntry: entry, note: `${entry.table}: ${siteClass} "${entry.key}": ${entry.value}`, label: entry.table };
}

export function perSiteSource(env: TableSourceEnv): PolicySource {
  const skip = (q: HopQuery): SourceAnswer | undefined =>
    env.specs.length === 0 ? { kind: 'silent', note: '(empty)' }
      : q.message.tlsRequiredNo ? { kind: 'silent', note: 'not consulted: TLS-Required: No' } : undefined;
  return {
    name: 'per-site',
    async hop(q: HopQuery): Promise<SourceAnswer> {
      const skipped = skip(q);
      if (skipped) return skipped;
      const tables = await openTables(env);
      if ('error' in tables) {
        env.warn(`${env.title}: ${tables.error}`);
        return { kind: 'invalid', deferral: TEMP_LOOKUP_ERROR, note: `cannot open: ${tables.error}`, label: env.title };
      }
      const r = await lookupSite(env, tables, q.nexthop, 'next-hop destination');
      if (r.kind === 'error') return r.answer;
      if (r.kind === 'notfound') return { kind: 'silent', note: `next-hop destination "${q.nexthop}": not found` };
      return answerFor(r.level, r.entry, 'next-hop destination');
    },
    async server(q: ServerQuery, atHop: SourceAnswer | undefined): Promise<SourceAnswer> {
      const hop = atHop ?? skip(q) ?? { kind: 'silent', note: '' };
      // smtp_tls_policy.c: the server host name only when it differs from the next hop.
      if (skip(q) || hop.kind === 'invalid' || q.server.hostname.toLowerCase() === q.nexthop.toLowerCase()) return hop;
      const tables = await openTables(env);
      if ('error' in tables) return { kind: 'defer-server', deferral: TEMP_LOOKUP_ERROR, note: `cannot open: ${tables.error}` };
      const r = await lookupSite(env, tables, q.server.hostname, 'server hostname');
      if (r.kind === 'error') {
        const a = r.answer;
        return { kind: 'defer-server', deferral: a.kind === 'invalid' ? a.deferral : TEMP_LOOKUP_ERROR, note: a.note };
      }
      if (r.kind === 'notfound') return hop;
      const previous = hop.kind === 'demand' ? hop.level : undefined;
      const level = mergeSiteLevel(previous, r.level);
      return level === previous && hop.kind === 'demand' ? hop : answerFor(level, r.entry, 'server hostname');
    },
  };
}
