/**
 * domain-walk.ts — the two lookup orders that routing and the TLS policy
 * engine share, as pure functions over tables (anything with a `lookup`):
 * the transport(5) order for a recipient address, and the
 * `smtp_tls_policy_maps` order for a next hop; plus `parseNexthop`.
 *
 * Contract:
 * - Each key is tried against every table in list order before the next key
 *   (Postfix's maps_find(3) per key, as in trivial-rewrite/transport.c and
 *   smtp/smtp_tls_policy.c); the first `found` wins.
 * - Fail closed: the first `error` stops the walk and is returned — a broken
 *   table never lets a later key or table decide (RFC-free rule of Postfix:
 *   `dict->error` aborts the search; STYLE.md "fail closed"). An empty value
 *   (a regexp rule without a result) is such an error too, as maps_find()
 *   makes it one: "<table> lookup of <key> returns an empty string result".
 * - Every result lists the (table, key) pairs tried, so `sealpost tls
 *   explain` can show the walk.
 * - Keys are passed to the tables as built here; case folding is the table's
 *   business (fixed-string tables fold, pattern tables do not).
 *
 * Not here: parsing the transport or TLS policy *values* (scheduler/resolve.ts,
 * delivery/tls/policy-table.ts); opening tables (registry.ts).
 */
import { UserError } from '../lib/errors.ts';
import type { KeyKind, LookupError, LookupResult } from './types.ts';

/** The part of a LookupTable the walks need. A bare function is a fixed-string table. */
export interface WalkTable {
  readonly spec: string;
  readonly keyKind: KeyKind;
  /** Table type; `socketmap` is treated like a pattern table for partial keys (see below). */
  readonly type?: string;
  lookup(key: string): Promise<LookupResult>;
}

export type LookupFn = (key: string) => Promise<LookupResult>;

/** Wrap a bare lookup callback as a table (spec shown in `tried`). */
export function walkTable(lookup: LookupFn, spec = 'lookup', keyKind: KeyKind = 'fixed'): WalkTable {
  return { spec, keyKind, lookup };
}

export interface Attempt {
  readonly table: string;
  readonly key: string;
}

export type WalkResult =
  | { readonly kind: 'found'; readonly value: string; readonly key: string; readonly table: string; readonly tried: readonly Attempt[] }
  | { readonly kind: 'notfound'; readonly tried: readonly Attempt[] }
  | { readonly kind: 'error'; readonly error: LookupError; readonly key: string; readonly table: string; readonly tried: readonly Attempt[] };

/** A key and which tables may be asked for it. */
interface Step {
  readonly key: string;
  /** Partial keys (stripped address, domain, parents) skip pattern tables. */
  readonly partial: boolean;
}

async function walk(tables: readonly (WalkTable | LookupFn)[], steps: readonly Step[]): Promise<WalkResult> {
  const list = tables.map((t) => (typeof t === 'function' ? walkTable(t) : t));
  const tried: Attempt[] = [];
  for (const step of steps) {
    for (const table of list) {
      if (step.partial && takesFullKeysOnly(table)) continue;
      tried.push({ table: table.spec, key: step.key });
      const r = await table.lookup(step.key);
      if (r.kind === 'found' && r.value === '') {
        // maps.c maps_find(): DICT_ERR_CONFIG, never "found nothing".
        const error = { message: `${table.spec} lookup of ${step.key} returns an empty string result; it should return NO RESULT in case of NOT FOUND` };
        return { kind: 'error', error, key: step.key, table: table.spec, tried };
      }
      if (r.kind === 'found') return { kind: 'found', value: r.value, key: step.key, table: table.spec, tried };
      if (r.kind === 'error') return { kind: 'error', error: r.error, key: step.key, table: table.spec, tried };
    }
  }
  return { kind: 'notfound', tried };
}

/**
 * transport(5) REGULAR EXPRESSION TABLES: "some.domain.hierarchy is not looked
 * up via its parent domains, nor is user+foo@domain looked up as user@domain".
 * socketmap_table(5) says the same of socketmap ("Postfix will not generate
 * partial search keys"), although its table descriptor is keyKind 'fixed'.
 */
function takesFullKeysOnly(table: WalkTable): boolean {
  return table.keyKind === 'pattern' || table.type === 'socketmap';
}

export interface TransportWalkOptions {
  /** postconf(5) recipient_delimiter: a *set* of delimiter characters (Postfix ≥ 2.11). Default none. */
  readonly recipientDelimiter?: string;
  /** True when `transport_maps` is listed in parent_domain_matches_subdomains. Default false. */
  readonly parentMatchesSubdomains?: boolean;
  /** postconf(5) double_bounce_sender (never split). Default `double-bounce`. */
  readonly doubleBounceSender?: string;
  /** postconf(5) owner_request_special. Default true. */
  readonly ownerRequestSpecial?: boolean;
}

/**
 * The transport(5) TABLE SEARCH ORDER for a recipient, as a list of keys:
 * `user+ext@domain`, `user@domain`, `domain`, `.parent` ... `.tld` (or
 * `parent` ... `tld` when transport_maps is in
 * parent_domain_matches_subdomains), then `*`.
 */
export function transportKeys(recipient: string, opts: TransportWalkOptions = {}): { key: string; partial: boolean }[] {
  const at = recipient.lastIndexOf('@');
  if (at < 0 || at === recipient.length - 1) {
    throw new UserError(`recipient address "${recipient}" has no domain part; transport(5) lookups need user@domain`);
  }
  const steps: Step[] = [{ key: recipient, partial: false }];
  const stripped = stripExtension(recipient, at, opts);
  if (stripped !== undefined && stripped !== recipient) steps.push({ key: stripped, partial: true });
  // trivial-rewrite transport.c: after `domain`, try `.upper.domain` (or,
  // with parent_domain_matches_subdomains, `upper.domain`) until none is left.
  let name = recipient.slice(at + 1);
  for (;;) {
    steps.push({ key: name, partial: true });
    const dot = name.indexOf('.', 1);
    if (dot < 0) break;
    name = opts.parentMatchesSubdomains ? name.slice(dot + 1) : name.slice(dot);
    if (name === '') break;
  }
  // transport(5): "The special pattern * represents any address" (looked up
  // as a full key, so pattern tables see it too).
  steps.push({ key: '*', partial: false });
  return steps;
}

/**
 * strip_addr(3)/split_addr(3): drop the extension at the first character of
 * the recipient_delimiter set, except for postmaster, mailer-daemon, the
 * double-bounce sender, and (with `-` as a delimiter) owner-* and *-request;
 * never leave an empty localpart.
 */
export function stripExtension(address: string, at: number, opts: TransportWalkOptions): string | undefined {
  const delims = opts.recipientDelimiter ?? '';
  if (delims === '') return undefined;
  const local = address.slice(0, at);
  const lower = local.toLowerCase();
  const doubleBounce = (opts.doubleBounceSender ?? 'double-bounce').toLowerCase();
  if (lower === 'postmaster' || lower === 'mailer-daemon' || lower === doubleBounce) return undefined;
  if (delims.includes('-') && (opts.ownerRequestSpecial ?? true)) {
    if (lower.startsWith('owner-') || (lower.length > 8 && lower.endsWith('-request'))) return undefined;
  }
  let cut = -1;
  for (let i = 0; i < local.length; i++) {
    if (delims.includes(local[i]!)) {
      cut = i;
      break;
    }
  }
  if (cut <= 0) return undefined;
  return local.slice(0, cut) + address.slice(at);
}

/** Look up a recipient in transport_maps, in transport(5) order. */
export async function transportLookup(
  tables: readonly (WalkTable | LookupFn)[],
  recipient: string,
  opts: TransportWalkOptions = {},
): Promise<WalkResult> {
  return walk(tables, transportKeys(recipient, opts));
}

/**
 * The smtp_tls_policy_maps keys for a next hop: the next hop verbatim, then —
 * only when it is a valid bare hostname — `.parent` ... `.tld`
 * (smtp_tls_policy.c tls_policy_lookup: "Only one lookup with
 * [nexthop]:port, [nexthop] or nexthop:port").
 */
export function tlsPolicyKeys(nexthop: string): string[] {
  const keys = [nexthop];
  if (!isValidHostname(nexthop)) return keys;
  for (let dot = nexthop.indexOf('.', 1); dot >= 0; dot = nexthop.indexOf('.', dot + 1)) {
    keys.push(nexthop.slice(dot));
  }
  return keys;
}

/**
 * Look up a next hop in smtp_tls_policy_maps. Like maps_find(3), each key is
 * tried in every table (in order) before the next, shorter key: a `.example.com`
 * entry in table 1 loses to `mx.example.com` in table 2.
 */
export async function tlsPolicyLookup(tables: readonly (WalkTable | LookupFn)[], nexthop: string): Promise<WalkResult> {
  return walk(
    tables,
    tlsPolicyKeys(nexthop).map((key) => ({ key, partial: false })),
  );
}

/**
 * valid_hostname(3) without complaints: letters, digits, `-` and `_`, labels
 * of 1..63 characters that do not start or end with `-`, at most 255
 * characters, not all-numeric (so IP addresses and `[host]`/`host:port` are not hostnames).
 */
export function isValidHostname(name: string): boolean {
  if (name === '' || name.length > 255) return false;
  const labels = name.split('.');
  let nonNumeric = false;
  for (const label of labels) {
    if (label === '' || label.length > 63) return false;
    if (!/^[A-Za-z0-9_-]+$/.test(label)) return false;
    if (label.startsWith('-') || label.endsWith('-')) return false;
    if (/[^0-9]/.test(label)) nonNumeric = true;
  }
  return nonNumeric;
}

export interface Nexthop {
  /** Host or domain without brackets (an IPv6 literal without its `ipv6:` prefix is kept as written). */
  readonly host: string;
  /** The `:port` or `:service` text, when given. */
  readonly port?: string;
  /** True for `[host]` (no MX lookup). */
  readonly bracketed: boolean;
}

/**
 * Parse an SMTP next hop (transport(5) RESULT FORMAT, postconf(5) relayhost):
 * `domain`, `host:port`, `[host]`, `[host]:port`, `[ipv6:2001:db8::1]:25`.
 */
export function parseNexthop(text: string): Nexthop {
  const t = text.trim();
  if (t === '') throw new UserError('empty next-hop destination');
  if (/\s|,/.test(t)) throw new UserError(`next-hop destination "${text}" contains whitespace or a comma; give one destination`);
  if (t.startsWith('[')) {
    const close = t.indexOf(']');
    if (close < 0) throw new UserError(`next-hop destination "${text}" has "[" without "]"`);
    const host = t.slice(1, close);
    if (host === '') throw new UserError(`next-hop destination "${text}" has an empty host inside []`);
    const after = t.slice(close + 1);
    if (after === '') return { host, bracketed: true };
    if (!after.startsWith(':') || after.length === 1) throw new UserError(`next-hop destination "${text}": expected ":port" after "]"`);
    return { host, port: checkPort(after.slice(1), text), bracketed: true };
  }
  if (t.includes(']')) throw new UserError(`next-hop destination "${text}" has "]" without "["`);
  const colons = t.split(':').length - 1;
  if (colons > 1) throw new UserError(`next-hop destination "${text}": put an IPv6 address inside [] (e.g. [ipv6:2001:db8::1])`);
  if (colons === 1) {
    const [host, port] = t.split(':') as [string, string];
    if (host === '') throw new UserError(`next-hop destination "${text}" has no host before ":"`);
    return { host, port: checkPort(port, text), bracketed: false };
  }
  return { host: t, bracketed: false };
}

function checkPort(port: string, text: string): string {
  if (port === '') throw new UserError(`next-hop destination "${text}" has an empty port after ":"`);
  if (/^[0-9]+$/.test(port)) {
    const n = Number(port);
    if (n < 1 || n > 65535) throw new UserError(`next-hop destination "${text}": port ${port} is out of range 1..65535`);
    return port;
  }
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(port)) throw new UserError(`next-hop destination "${text}": bad port or service name "${port}"`);
  return port;
}
