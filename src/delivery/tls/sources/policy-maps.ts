/**
 * policy-maps.ts — the smtp_tls_policy_maps source (postconf(5)
 * smtp_tls_policy_maps; smtp_tls_policy.c tls_policy_lookup()): the next
 * hop verbatim as the key, `.parent` walk only for bare domains, each key in
 * every table before the next key (maps/domain-walk.ts tlsPolicyLookup), the
 * first match wins; its value parsed by policy-table.ts.
 *
 * Contract (hop step only):
 * - `silent` when the parameter is empty, no entry matched, or the message
 *   has `TLS-Required: No` (RFC 8689 §5: no table lookups at all).
 * - `demand` with the parsed entry and the entry as found (table, key, value).
 * - Fail closed: a table that cannot be opened or a lookup error (a dead
 *   socketmap, an unreadable file) logs the table's own complaint, then
 *   `smtp_tls_policy_maps, next-hop destination "X": policy table lookup
 *   error`, and answers `invalid` with `client TLS configuration problem`
 *   4.7.5 — Postfix 3.7 and 3.11 (MARK_INVALID), never the main.cf default;
 *   a malformed entry the same, with the parser's warning.
 * - Every key tried is in the answer (`tried`), for `sealpost tls explain`.
 *
 * Not here: main.cf defaults for what the entry leaves out (policy.ts).
 */
import { tlsPolicyLookup, type WalkTable } from '../../../maps/domain-walk.ts';
import { parsePolicyEntry } from '../policy-table.ts';
import { CONFIG_PROBLEM, policyWhere } from '../reasons.ts';
import type { HopQuery, PolicySource, SourceAnswer, TriedKey } from './types.ts';

export interface TableSourceEnv {
  readonly specs: readonly string[];
  /** Open a table by spec (TableSet.get); may reject. */
  readonly openTable: (spec: string) => Promise<WalkTable>;
  readonly warn: (text: string) => void;
  /** The parameter name: `smtp_tls_policy_maps` (or `lmtp_...`). */
  readonly title: string;
}

/** Open every table; the first that fails is reported. */
export async function openTables(env: TableSourceEnv): Promise<WalkTable[] | { error: string }> {
  try {
    return await Promise.all(env.specs.map((s) => env.openTable(s)));
  } catch (err) {
    return { error: (err as Error).message };
  }
}

async function lookup(env: TableSourceEnv, q: HopQuery): Promise<SourceAnswer> {
  const where = policyWhere(env.title, q.nexthop);
  const tables = await openTables(env);
  if ('error' in tables) {
    env.warn(`${env.title}: ${tables.error}`);
    env.warn(`${where}: policy table lookup error`);
    return { kind: 'invalid', deferral: CONFIG_PROBLEM, note: `cannot open: ${tables.error}`, label: env.title };
  }
  const r = await tlsPolicyLookup(tables, q.nexthop);
  const tried: TriedKey[] = r.tried.map((t) => ({ table: t.table, key: t.key }));
  if (r.kind === 'notfound') return { kind: 'silent', note: 'no entry matched', tried };
  if (r.kind === 'error') {
    // The table's own complaint, then smtp_tls_policy.c's line.
    env.warn(r.error.message);
    env.warn(`${where}: policy table lookup error`);
    return { kind: 'invalid', deferral: CONFIG_PROBLEM, note: `lookup error: ${r.error.message}`, tried, label: r.table };
  }
  const tableEntry = Object.freeze({ table: r.table, key: r.key, value: r.value });
  const parsed = parsePolicyEntry(r.value);
  for (const w of parsed.warnings) env.warn(`${where}: ${w}`);
  if (!parsed.ok) {
    env.warn(`${where}: ${parsed.error}`);
    return { kind: 'invalid', deferral: CONFIG_PROBLEM, note: `bad entry: ${parsed.error}`, tried, tableEntry, label: r.table };
  }
  return { kind: 'demand', level: parsed.entry.level, entry: parsed.entry, tableEntry, note: `found: "${r.value}"`, tried, label: r.table };
}

export function policyMapsSource(env: TableSourceEnv): PolicySource {
  return {
    name: 'table',
    hop(q: HopQuery): Promise<SourceAnswer> | SourceAnswer {
      if (env.specs.length === 0) return { kind: 'silent', note: '(empty)' };
      if (q.message.tlsRequiredNo) return { kind: 'silent', note: 'not consulted: TLS-Required: No' };
      return lookup(env, q);
    },
  };
}
