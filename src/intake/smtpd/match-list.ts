/**
 * match-list.ts — Postfix's match lists for relay control: domain lists
 * (`mydestination`, `relay_domains`; domain_list(3)) and network lists
 * (`mynetworks`; namadr_list(3)).
 *
 * Contract:
 * - A list is parsed once (synchronously) from the parameter's list items;
 *   `type:name` tables are opened lazily through a TableSet on first match and
 *   shared by every session that uses the same settings.
 * - Items are tried in order; the first that matches decides. `!item` negates:
 *   a match on it means "no match" and ends the search (match_list(3)).
 * - `/file/name` items are read at parse time (one pattern per line or
 *   separated by white space/commas; `#` comments) — an unreadable file is a
 *   ConfigError naming the parameter.
 * - Domain lists: `example.com` matches itself and, when the parameter is
 *   listed in parent_domain_matches_subdomains, any subdomain; `.example.com`
 *   matches subdomains only. Tables are queried with the domain and then (with
 *   parent matching) each parent domain; a found value that reads `DUNNO` is
 *   not a match, as Postfix's "REJECT"/"OK"-free domain tables treat any
 *   other value as a match.
 * - Network lists: `a.b.c.d`, `a.b.c.d/len`, `[v6addr]`, `[v6addr]/len`
 *   (Postfix syntax), tables are queried with the client address. Host name
 *   patterns never match (reverse DNS is out of scope: every client is
 *   `unknown`, see docs/intake.md).
 * - A table lookup error is returned as `error` (fail closed: the caller
 *   answers 451 4.3.0, never treats it as "no match").
 *
 * Not here: what a match means (restrictions.ts).
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../lib/errors.ts';
import { inNetwork, parseAddress, parseNetwork } from '../../maps/cidr.ts';
import type { Network } from '../../maps/cidr.ts';
import type { TableSet } from '../../maps/registry.ts';

export type MatchResult = { readonly kind: 'match' } | { readonly kind: 'nomatch' } | { readonly kind: 'error'; readonly message: string };

const MATCH: MatchResult = Object.freeze({ kind: 'match' });
const NOMATCH: MatchResult = Object.freeze({ kind: 'nomatch' });

type Item =
  | { readonly negate: boolean; readonly kind: 'table'; readonly spec: string }
  | { readonly negate: boolean; readonly kind: 'domain'; readonly domain: string }
  | { readonly negate: boolean; readonly kind: 'network'; readonly net: Network }
  | { readonly negate: boolean; readonly kind: 'name'; readonly text: string };

/** Split a list value as Postfix does (commas and white space). */
function splitItems(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s !== '' && !s.startsWith('#'));
}

function readListFile(file: string, param: string): string[] {
  try {
    const text = readFileSync(file, 'utf8');
    return text
      .split('\n')
      .map((l) => l.replace(/#.*/, ''))
      .flatMap(splitItems);
  } catch (e) {
    throw new ConfigError(`${param}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}; fix the file name or its permissions`);
  }
}

/** Expand `/file` items and split off `!`. */
function normalise(items: readonly string[], param: string): Array<{ negate: boolean; text: string }> {
  const out: Array<{ negate: boolean; text: string }> = [];
  for (const raw of items) {
    let text = raw;
    let negate = false;
    while (text.startsWith('!')) {
      negate = !negate;
      text = text.slice(1);
    }
    if (text.startsWith('/')) {
      for (const t of readListFile(text, param)) out.push(...normalise([negate ? `!${t}` : t], param));
      continue;
    }
    if (text !== '') out.push({ negate, text });
  }
  return out;
}

function isTableSpec(text: string): boolean {
  // `type:name`, but not an IPv6 address (bare or bracketed).
  return /^[a-z][a-z0-9_-]*:/i.test(text) && !text.startsWith('[') && parseAddress(text.split('/')[0]!) === undefined;
}

async function tableLookup(tables: TableSet, spec: string, key: string): Promise<MatchResult | undefined> {
  let table;
  try {
    table = await tables.get(spec);
  } catch (e) {
    return { kind: 'error', message: `${spec}: ${e instanceof Error ? e.message : String(e)}` };
  }
  const r = await table.lookup(key);
  if (r.kind === 'error') return { kind: 'error', message: r.error.message };
  if (r.kind === 'found') return r.value.trim().toUpperCase() === 'DUNNO' ? undefined : MATCH;
  return undefined;
}

/** A domain list such as mydestination or relay_domains. */
export class DomainList {
  private readonly items: readonly Item[];

  constructor(
    readonly param: string,
    items: readonly string[],
    private readonly tables: TableSet,
    private readonly parentMatches: boolean,
  ) {
    this.items = normalise(items, param).map(({ negate, text }) =>
      isTableSpec(text) ? { negate, kind: 'table', spec: text } : { negate, kind: 'domain', domain: text.toLowerCase().replace(/\.$/, '') },
    );
  }

  get empty(): boolean {
    return this.items.length === 0;
  }

  /** The table specs this list uses (for reload). */
  tableSpecs(): string[] {
    return this.items.flatMap((i) => (i.kind === 'table' ? [i.spec] : []));
  }

  async match(domainIn: string): Promise<MatchResult> {
    const domain = domainIn.toLowerCase().replace(/\.$/, '');
    if (domain === '') return NOMATCH;
    for (const item of this.items) {
      const hit = await this.matchItem(item, domain);
      if (hit.kind === 'error') return hit;
      if (hit.kind === 'match') return item.negate ? NOMATCH : MATCH;
    }
    return NOMATCH;
  }

  private async matchItem(item: Item, domain: string): Promise<MatchResult> {
    if (item.kind === 'domain') {
      const d = item.domain;
      if (d.startsWith('.')) return domain.endsWith(d) ? MATCH : NOMATCH;
      if (domain === d) return MATCH;
      // postconf(5) parent_domain_matches_subdomains.
      return this.parentMatches && domain.endsWith(`.${d}`) ? MATCH : NOMATCH;
    }
    if (item.kind !== 'table') return NOMATCH;
    const labels = domain.split('.');
    for (let i = 0; i < labels.length; i++) {
      const key = i === 0 ? domain : this.parentMatches ? labels.slice(i).join('.') : `.${labels.slice(i).join('.')}`;
      const r = await tableLookup(this.tables, item.spec, key);
      if (r) return r;
    }
    return NOMATCH;
  }
}

/** A network list such as mynetworks. */
export class NetworkList {
  private readonly items: readonly Item[];

  constructor(
    readonly param: string,
    items: readonly string[],
    private readonly tables: TableSet,
  ) {
    this.items = normalise(items, param).map(({ negate, text }) => parseNetworkItem(param, negate, text));
  }

  tableSpecs(): string[] {
    return this.items.flatMap((i) => (i.kind === 'table' ? [i.spec] : []));
  }

  async match(address: string): Promise<MatchResult> {
    const bytes = parseAddress(address);
    for (const item of this.items) {
      let hit: MatchResult = NOMATCH;
      if (item.kind === 'network') hit = bytes && inNetwork(bytes, item.net) ? MATCH : NOMATCH;
      else if (item.kind === 'table') hit = (await tableLookup(this.tables, item.spec, address)) ?? NOMATCH;
      if (hit.kind === 'error') return hit;
      if (hit.kind === 'match') return item.negate ? NOMATCH : MATCH;
    }
    return NOMATCH;
  }
}

function parseNetworkItem(param: string, negate: boolean, text: string): Item {
  if (isTableSpec(text)) return { negate, kind: 'table', spec: text };
  const looksNumeric = /^[0-9.]+(\/\d+)?$/.test(text) || text.startsWith('[') || (text.includes(':') && !isTableSpec(text));
  if (!looksNumeric) return { negate, kind: 'name', text };
  try {
    // Postfix's mynetworks syntax puts IPv6 in brackets: [2001:db8::]/32.
    return { negate, kind: 'network', net: parseNetwork(text, { file: param, line: 0 }) };
  } catch (e) {
    throw new ConfigError(`${param}: bad network pattern "${text}": ${e instanceof Error ? e.message.replace(/^.*?: /, '') : String(e)}; use a.b.c.d/len or [ipv6]/len`);
  }
}

/** A network list from a parameter value (list text). */
export function networkListFromText(param: string, text: string, tables: TableSet): NetworkList {
  return new NetworkList(param, splitItems(text), tables);
}

/** A domain list from a parameter value (list text). */
export function domainListFromText(param: string, text: string, tables: TableSet, parentMatches: boolean): DomainList {
  return new DomainList(param, splitItems(text), tables, parentMatches);
}
