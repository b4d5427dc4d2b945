/**
 * check-tls.ts — the TLS checks of `sealpost check`, `start` and `reload`,
 * made before any mail is deferred for them:
 *
 * 1. The level in main.cf (and in each delivery service's `-o` overrides):
 *    `smtp_tls_security_level` must be empty or one of Postfix's levels.
 *    Postfix's smtp(8) dies at its first delivery with `invalid tls security
 *    level: "secur"` (smtp_tls_policy.c); here it is an error naming the file,
 *    line and parameter and the valid values, so the start or the reload is
 *    refused and the running configuration stays.
 * 2. Every entry of every `smtp_tls_policy_maps` table whose source can be
 *    read (the source file of hash:/btree:/lmdb:/cdb:, texthash:, inline:,
 *    static:, the literal results of regexp:/pcre:; the compiled file's own
 *    listing when the source is gone) is parsed as smtp(8) will parse it; an
 *    unknown level or attribute is a warning in Postfix's words
 *    (`smtp_tls_policy_maps, next-hop destination "KEY": invalid security
 *    level "secur"`), prefixed with the file and line where the source is at
 *    hand. Warnings, not errors: Postfix reads tables per lookup and defers
 *    only the destinations concerned.
 * 3. The relayhost trap (MISSION.md step 5): a policy entry for a bare domain
 *    that is never consulted, because mail for that domain goes to another
 *    next hop (the relayhost, a transport_maps next hop): the Router
 *    (scheduler/resolve.ts) routes `postmaster@DOMAIN` and the entry is
 *    reported when the next hop is not DOMAIN. The detection is
 *    scheduler/relayhost-trap.ts, shared with `sealpost tls explain` (which
 *    asks it per recipient); this file only words the warning.
 *
 * Contract: `checkTls()` never throws for a configuration problem; it returns
 * one-line errors and warnings. Tables it cannot open are left alone (check.ts
 * reports those). No network: socketmap and other remote tables are not
 * listed.
 *
 * Not here: opening every table (check.ts), the policy semantics
 * (delivery/tls/policy-table.ts parsePolicyEntry, which this reuses).
 */
import { readFileSync } from 'node:fs';
import type { LoadedConfig } from '../config/load.ts';
import { LEVELS, parseLevel } from '../delivery/tls/level.ts';
import { parsePolicyEntry } from '../delivery/tls/policy-table.ts';
import { policyWhere } from '../delivery/tls/reasons.ts';
import { describeError } from '../lib/errors.ts';
import { resolvePath } from '../maps/file-table.ts';
import { parseInline } from '../maps/inline.ts';
import { loadPatternRules, parseMatchRule, flattenRules, type LoadedRules } from '../maps/pattern-table.ts';
import { PCRE_DIALECT } from '../maps/pcre.ts';
import { REGEXP_DIALECT } from '../maps/regexp.ts';
import { parseSpec, TableSet } from '../maps/registry.ts';
import { parseSource } from '../maps/source-file.ts';
import { staticValue } from '../maps/static.ts';
import { findRelayhostTrap } from '../scheduler/relayhost-trap.ts';
import { Router } from '../scheduler/resolve.ts';

/** A delivery service's configuration, as check.ts plans it. */
export interface TlsServicePlan {
  /** `smtp`, `relay` ...; undefined for main.cf itself. */
  readonly service?: { readonly name: string; readonly line: number };
  readonly config: LoadedConfig;
}

export interface TlsCheck {
  readonly errors: string[];
  readonly warnings: string[];
}

/** One policy table entry with where it was written. */
export interface PolicyTableEntry {
  readonly key: string;
  readonly value: string;
  /** `FILE, line N: ` (or `SPEC: ` when no line is known). */
  readonly where: string;
  /** A bare domain key of a fixed-string table (what the relayhost trap is about). */
  readonly domainKey: boolean;
}

const LEVEL_NAMES = LEVELS.join(', ');

/** 1: the global level of one configuration (main.cf, or a service whose -o overrides it). */
function checkLevel(plan: TlsServicePlan, main: LoadedConfig, out: TlsCheck): void {
  const name = 'smtp_tls_security_level';
  const text = plan.config.get(name).trim();
  if (text === '' || parseLevel(text) !== undefined) return;
  if (plan.service && text === main.get(name).trim()) return; // inherited from main.cf: reported once
  const loc = plan.config.location(name);
  const where = plan.service
    ? `${plan.config.masterCfPath}, line ${plan.service.line}: service "${plan.service.name}": `
    : loc
      ? `${loc.file}, line ${loc.line}: `
      : '';
  // smtp_tls_policy.c global_tls_level(): `invalid tls security level: "%s"` (fatal in smtp(8)).
  out.errors.push(`${where}invalid tls security level: "${text}" for parameter "${name}": specify one of ${LEVEL_NAMES}, or leave it empty for none`);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Entries of a postmap source file (hash/btree/lmdb/cdb source, texthash). */
function sourceEntries(path: string, fixed: boolean): PolicyTableEntry[] | undefined {
  const text = readText(path);
  if (text === undefined) return undefined;
  const out: PolicyTableEntry[] = [];
  for (const item of parseSource(text)) {
    if (item.kind !== 'entry') continue;
    out.push({ key: item.key, value: item.value, where: `${path}, line ${item.line}: `, domainKey: fixed && isDomainKey(item.key) });
  }
  return out;
}

/** A key that is a bare domain name (no `[]`, no `:port`, no leading dot). */
function isDomainKey(key: string): boolean {
  return /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/.test(key);
}

/** Literal results of a regexp:/pcre: table, keyed by the rule's pattern text. */
async function patternEntries(type: 'regexp' | 'pcre', name: string, spec: string, baseDir: string): Promise<PolicyTableEntry[]> {
  let loaded: LoadedRules;
  try {
    loaded = await loadPatternRules(type, name, spec, { baseDir }, parseMatchRule(type === 'regexp' ? REGEXP_DIALECT : PCRE_DIALECT));
  } catch {
    return [];
  }
  const textOf = new Map(loaded.lines.map((l) => [l.line, l.text]));
  const out: PolicyTableEntry[] = [];
  for (const rule of flattenRules(loaded.rules)) {
    // A result with $n substitutions is known only per lookup.
    if (rule.kind !== 'match' || rule.result.some((p) => typeof p === 'number')) continue;
    const text = textOf.get(rule.line) ?? '';
    const pattern = text.slice(0, text.length - (rule.result.join('').length)).trim() || `line ${rule.line}`;
    out.push({ key: pattern, value: rule.result.join(''), where: `${loaded.path ?? spec}, line ${rule.line}: `, domainKey: false });
  }
  return out;
}

/** The entries of one table whose source can be read; empty when none can. */
export async function policyTableEntries(spec: string, config: LoadedConfig, tables: TableSet): Promise<PolicyTableEntry[]> {
  let type: string;
  let name: string;
  try {
    ({ type, name } = parseSpec(spec, config.get('default_database_type') || 'hash'));
  } catch {
    return [];
  }
  const baseDir = config.configDir;
  switch (type) {
    case 'hash':
    case 'btree':
    case 'lmdb':
    case 'cdb':
    case 'texthash': {
      const fromSource = sourceEntries(resolvePath(name, baseDir), true);
      return fromSource ?? (await listedEntries(spec, tables));
    }
    case 'inline':
      try {
        return parseInline(name).map(([key, value]) => ({ key, value, where: `${spec}: `, domainKey: isDomainKey(key) }));
      } catch {
        return [];
      }
    case 'static':
      try {
        return [{ key: '(every next hop)', value: staticValue(name), where: `${spec}: `, domainKey: false }];
      } catch {
        return [];
      }
    case 'regexp':
    case 'pcre':
      return patternEntries(type, name, spec, baseDir);
    default:
      return [];
  }
}

/** A compiled table without its source: its own listing, without line numbers. */
async function listedEntries(spec: string, tables: TableSet): Promise<PolicyTableEntry[]> {
  try {
    const table = await tables.get(spec);
    if (!table.sequence) return [];
    const out: PolicyTableEntry[] = [];
    for await (const [key, value] of table.sequence()) out.push({ key, value, where: `${spec}: `, domainKey: isDomainKey(key) });
    return out;
  } catch {
    return [];
  }
}

/** 2: every entry parsed as smtp(8) parses it; Postfix's warning text per problem. */
function checkEntries(title: string, entries: readonly PolicyTableEntry[], out: TlsCheck): void {
  for (const e of entries) {
    const parsed = parsePolicyEntry(e.value);
    const where = `${e.where}${policyWhere(title, e.key)}`;
    for (const w of parsed.warnings) out.warnings.push(`${where}: ${w}`);
    if (!parsed.ok) out.warnings.push(`${where}: ${parsed.error} (mail to this next hop is deferred with "client TLS configuration problem" until the entry is fixed)`);
  }
}

/** 3: the relayhost trap for one bare-domain entry (relayhost-trap.ts decides; mail for local domains is not relayed). */
async function trapWarning(router: Router, config: LoadedConfig, tables: TableSet, e: PolicyTableEntry, title: string): Promise<string | undefined> {
  const domain = e.key.toLowerCase();
  const route = await router.resolve(`postmaster@${domain}`, '');
  if (route.kind !== 'deliver' || route.domainClass === 'local') return undefined;
  const trap = await findRelayhostTrap(config, tables, domain, route);
  if (!trap) return undefined;
  const { via } = trap;
  const hops = trap.nexthops.join(', ');
  return (
    `${e.where}${title} entry "${e.key} ${e.value}" is never used: mail for ${domain} goes to ${hops} (${via}), ` +
    `and the policy table is looked up by next hop; route ${domain} on its own ("${domain}  smtp:" in transport_maps) ` +
    `or give "${route.nexthops[0]}" the policy it needs ("sealpost tls explain postmaster@${domain}" shows the route)`
  );
}

/** Run the three checks over main.cf and the delivery services that override TLS settings. */
export async function checkTls(main: LoadedConfig, services: readonly TlsServicePlan[] = []): Promise<TlsCheck> {
  const out: TlsCheck = { errors: [], warnings: [] };
  const plans: TlsServicePlan[] = [{ config: main }, ...services.filter((s) => s.config !== main)];
  for (const plan of plans) checkLevel(plan, main, out);
  const tables = new TableSet({ baseDir: main.configDir, defaultType: main.get('default_database_type') || 'hash' });
  const seen = new Set<string>();
  try {
    for (const plan of plans) {
      const title = 'smtp_tls_policy_maps';
      let specs: readonly string[];
      try {
        specs = plan.config.getList(title);
      } catch {
        continue;
      }
      const router = new Router({ config: plan.config, tables });
      for (const spec of specs) {
        const entries = await policyTableEntries(spec, plan.config, tables);
        // Each table's entries once (main.cf first); the trap per routing configuration.
        if (!seen.has(spec)) checkEntries(title, entries, out);
        seen.add(spec);
        for (const e of entries.filter((x) => x.domainKey)) {
          try {
            const w = await trapWarning(router, plan.config, tables, e, title);
            if (w && !out.warnings.includes(w)) out.warnings.push(w);
          } catch (err) {
            out.warnings.push(`${e.where}cannot route ${e.key} to check its ${title} entry: ${describeError(err).message}`);
          }
        }
      }
    }
  } finally {
    await tables.close();
  }
  return out;
}
