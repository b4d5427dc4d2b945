/**
 * resolve.ts — Postfix's trivial-rewrite "resolve" for one recipient: which
 * delivery transport (master.cf service) and which next hop(s) the queue
 * manager hands the message to.
 *
 * Contract:
 * - `new Router({config, tables})` per configuration; nothing is cached across
 *   reloads (a reload builds a new Router). `resolve(recipient, sender)` never
 *   rejects for a table or input problem: it returns a Route.
 * - Address syntax first (resolve.c): a domain must pass valid_utf8_hostname()
 *   (UTF-8 allowed with smtputf8_enable; idna.ts) and an address literal must
 *   hold an IPv4 or `IPv6:` address (valid_mailhost_literal()); otherwise the
 *   recipient bounces `5.1.3 bad address syntax` (qmgr_message.c), never a DNS
 *   query. With resolve_numeric_domain, `user@1.2.3.4` is `user@[1.2.3.4]`.
 *   Table lookups keep the domain as written (UTF-8), as Postfix's do; the
 *   SMTP client converts to A-labels for DNS (delivery/smtp/connect.ts).
 * - Domain classes (postconf(5) relay_domains, mydestination; trivial-rewrite
 *   resolve.c), first match wins:
 *     local   — the domain is in $mydestination, or is an address literal of
 *               this machine ($inet_interfaces — every interface address for
 *               `all` — or $proxy_interfaces: resolve_local.c), or the
 *               address has no domain;
 *     virtual alias — $virtual_alias_domains: what cleanup did not rewrite is
 *               `error:5.1.1 User unknown in virtual alias table` (resolve.c),
 *               before transport_maps, as in Postfix;
 *     relay   — the domain is in $relay_domains;
 *     default — everything else.
 * - Transport and next hop, in decreasing precedence (postconf(5) relayhost,
 *   default_transport, relay_transport; transport(5)):
 *     1. transport_maps (transport(5) key order, domain-walk.ts), with its
 *        four result forms: `t:h` sets both, `t:` (or `t`) sets the transport
 *        and resets the next hop to the recipient domain, `:h` keeps the
 *        transport and sets the next hop, `:` changes nothing;
 *     2. default class: sender_dependent_default_transport_maps, else
 *        default_transport; relay class: relay_transport; local class:
 *        local_transport. A `transport:nexthop` value there sets the next hop too;
 *     3. next hop: sender_dependent_relayhost_maps (DUNNO = no override), else
 *        relayhost, else the recipient domain (default and relay classes).
 * - Next-hop lists (Postfix ≥ 3.5: `relayhost = a:587, b:587`, transport
 *   results `smtp:a, b`) become several `nexthops`, tried in order.
 * - Built-in agents: `error:text`, `retry:text` and `discard:text` keep the
 *   whole text as their single next hop (error(8)/retry/discard(8) use it as
 *   the reason).
 * - Fail closed: a table that cannot be opened or answers with an error gives
 *   `defer` 4.3.0 `address resolver failure` — qmgr_message.c's words when
 *   trivial-rewrite reports RESOLVE_FLAG_FAIL (trivial-rewrite itself logs
 *   `transport_maps lookup failure`); never a fallback to another route.
 * - Local delivery is out of scope (MISSION.md): mail for the local class that
 *   transport_maps does not route elsewhere (and any route whose transport is
 *   that of $local_transport) bounces with what Postfix's local(8) says for a
 *   user it does not know, dsn 5.1.1 `unknown user: "localpart"`
 *   (local/unknown.c; the localpart folded to lower case and without its
 *   extension), followed by the fix: `(sealpost has no local delivery: ...)`.
 *   Exception, as qmgr does (qmgr_message.c): mail to the local double-bounce
 *   address is "sent" via discard with `undeliverable postmaster notification
 *   discarded`.
 * - Every Route carries the steps that decided it, for `sealpost tls explain`.
 *
 * Not here: the virtual mailbox class (sealpost has no virtual(8): such
 * domains fall in the default class unless transport_maps routes them),
 * defer_transports (a queue-manager decision), address rewriting (cleanup
 * already appended $myorigin/$mydomain), the SMTP client's own loop checks
 * (delivery/smtp/loop.ts).
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { UserError } from '../lib/errors.ts';
import type { Config } from '../config/types.ts';
import type { TableSet } from '../maps/registry.ts';
import type { LookupTable } from '../maps/types.ts';
import { stripExtension, transportLookup, type WalkResult } from '../maps/domain-walk.ts';
import { validUtf8Hostname } from '../smtp/idna.ts';

export interface RouteStep {
  readonly what: string;
  readonly detail: string;
}

export type Route =
  | {
      readonly kind: 'deliver';
      readonly transport: string;
      readonly nexthops: readonly string[];
      readonly fallbackRelays: readonly string[];
      readonly domainClass: 'local' | 'relay' | 'default';
      readonly steps: readonly RouteStep[];
    }
  | { readonly kind: 'bounce' | 'defer'; readonly dsn: string; readonly reason: string; readonly steps: readonly RouteStep[] };

export type DomainClass = 'local' | 'relay' | 'default';

/** Transports whose next hop is a reason text, not a destination (error(8), discard(8)). */
export const TEXT_TRANSPORTS: ReadonlySet<string> = new Set(['error', 'retry', 'discard']);

/** A table problem: the route becomes a 4.3.0 deferral. */
class ResolveFailure extends Error {}

/** qmgr_message.c: RESOLVE_FLAG_FAIL → retry transport with this text. */
export const RESOLVER_FAILURE = { dsn: '4.3.0', reason: 'address resolver failure' } as const;

/** qmgr_message.c: RESOLVE_FLAG_ERROR → error transport with this text. */
export const BAD_ADDRESS_SYNTAX = { dsn: '5.1.3', reason: 'bad address syntax' } as const;

export class Router {
  private readonly config: Config;
  private readonly tables: TableSet;
  private readonly machineAddresses: () => readonly string[];

  /** `localAddresses`: this machine's interface addresses (os.networkInterfaces() by default). */
  constructor(opts: { config: Config; tables: TableSet; localAddresses?: () => readonly string[] }) {
    this.config = opts.config;
    this.tables = opts.tables;
    this.machineAddresses = opts.localAddresses ?? interfaceAddresses;
  }

  async resolve(recipient: string, sender: string): Promise<Route> {
    const steps: RouteStep[] = [];
    try {
      return await this.resolveSteps(recipient, sender, steps);
    } catch (err) {
      if (err instanceof ResolveFailure || err instanceof UserError) {
        steps.push({ what: 'error', detail: err.message });
        return { kind: 'defer', ...RESOLVER_FAILURE, steps };
      }
      throw err;
    }
  }

  private async resolveSteps(recipient: string, sender: string, steps: RouteStep[]): Promise<Route> {
    // qmgr_message.c: "5.1.3 null recipient address".
    if (recipient === '') {
      steps.push({ what: 'recipient', detail: 'empty address' });
      return { kind: 'bounce', dsn: '5.1.3', reason: 'null recipient address', steps };
    }
    // qmgr_message.c: with allow_min_user = no, "-user" is "5.1.3 bad address syntax".
    if (recipient.startsWith('-') && !this.config.getBool('allow_min_user')) {
      steps.push({ what: 'recipient', detail: `${recipient}: starts with "-" and allow_min_user = no` });
      return { kind: 'bounce', dsn: '5.1.3', reason: 'bad address syntax', steps };
    }
    // resolve.c: "Strip trailing dot at end of domain, but not dot-dot or at-dot."
    if (recipient.endsWith('.') && !recipient.endsWith('..') && !recipient.endsWith('@.')) recipient = recipient.slice(0, -1);
    let at = recipient.lastIndexOf('@');
    let domain = at < 0 || at === recipient.length - 1 ? '' : foldAscii(recipient.slice(at + 1));
    if (domain !== '') {
      const checked = this.checkDomain(domain, steps);
      if (checked === undefined) return { kind: 'bounce', ...BAD_ADDRESS_SYNTAX, steps };
      if (checked !== domain) {
        recipient = `${recipient.slice(0, at)}@${checked}`;
        at = recipient.lastIndexOf('@');
        domain = checked;
      }
    }
    const domainClass = await this.domainClass(domain, steps);

    if (domainClass === 'virtual-alias') {
      return deliver('error', ['5.1.1 User unknown in virtual alias table'], [], 'default', steps);
    }
    let { transport, nexthop } = await this.classRoute(domainClass, domain, sender, steps);
    const fromTable = await this.transportTable(recipient, domain, steps);
    if (fromTable) {
      if (fromTable.transport !== '') transport = fromTable.transport;
      if (fromTable.nexthop !== undefined) nexthop = fromTable.nexthop;
    }
    // No local(8) in sealpost: whatever reaches the local transport (the local class
    // without a transport_maps override, or `:nexthop` keeping it) bounces as local(8)
    // does for a user it does not know.
    if ((domainClass === 'local' && !fromTable) || transport === splitTransport(this.config.get('local_transport')).transport) {
      return this.localRoute(recipient, at, steps);
    }
    return this.deliverRoute(transport, nexthop, domainClass, steps);
  }

  /**
   * resolve.c address syntax: the domain to route by (`[1.2.3.4]` for a numeric domain
   * with resolve_numeric_domain), or undefined for a `5.1.3 bad address syntax` bounce.
   */
  private checkDomain(domain: string, steps: RouteStep[]): string | undefined {
    if (domain.startsWith('[')) {
      if (literalAddress(domain) !== undefined) return domain;
      steps.push({ what: 'recipient', detail: `${domain}: not a valid address literal` });
      return undefined;
    }
    if (validUtf8Hostname(this.config.getBool('smtputf8_enable'), domain)) return domain;
    if (this.config.getBool('resolve_numeric_domain') && isIP(domain) === 4) return `[${domain}]`;
    steps.push({ what: 'recipient', detail: `${domain}: not a valid host or domain name` });
    return undefined;
  }

  /** resolve.c: mydestination (local), relay_domains (relay), else default. */
  private async domainClass(domain: string, steps: RouteStep[]): Promise<DomainClass | 'virtual-alias'> {
    if (domain === '') {
      steps.push({ what: 'domain class', detail: 'local (the address has no domain)' });
      return 'local';
    }
    const parents = this.config.getList('parent_domain_matches_subdomains');
    const local = await this.matchDomainList('mydestination', domain, parents.includes('mydestination'));
    if (local) {
      steps.push({ what: 'domain class', detail: `local (${domain} matches mydestination: ${local})` });
      return 'local';
    }
    const own = this.ownLiteral(domain);
    if (own) {
      steps.push({ what: 'domain class', detail: `local (${domain} is an address of this machine: ${own})` });
      return 'local';
    }
    // resolve.c: an address in a virtual alias domain that cleanup did not rewrite has no
    // mailbox: the error transport with "5.1.1 User unknown in virtual alias table".
    const alias = await this.matchDomainList('virtual_alias_domains', domain, parents.includes('virtual_alias_domains'));
    if (alias) {
      steps.push({ what: 'domain class', detail: `virtual alias (${domain} matches virtual_alias_domains: ${alias})` });
      return 'virtual-alias';
    }
    const relay = await this.matchDomainList('relay_domains', domain, parents.includes('relay_domains'));
    if (relay) {
      steps.push({ what: 'domain class', detail: `relay (${domain} matches relay_domains: ${relay})` });
      return 'relay';
    }
    steps.push({ what: 'domain class', detail: `default (${domain} is not in mydestination or relay_domains)` });
    return 'default';
  }

  /**
   * match_list(3) for a domain list: names, `.domain` patterns, `!negation`,
   * and `type:table` entries. With parent_domain_matches_subdomains, `name`
   * also matches its subdomains. Returns the matching entry, or undefined.
   */
  private async matchDomainList(param: string, domain: string, parentMatches: boolean): Promise<string | undefined> {
    for (const raw of this.config.getList(param)) {
      const negate = raw.startsWith('!');
      const entry = negate ? raw.slice(1) : raw;
      const hit = isTableSpec(entry)
        ? await this.domainInTable(entry, domain, parentMatches, param)
        : domainMatches(foldAscii(entry), domain, parentMatches);
      if (hit) return negate ? undefined : raw;
    }
    return undefined;
  }

  /**
   * resolve_local.c: an address literal that is one of $inet_interfaces (every interface
   * address for `all`, 127.0.0.1 and ::1 for `loopback-only`) or $proxy_interfaces.
   * Returns the parameter that matched.
   */
  private ownLiteral(domain: string): string | undefined {
    const address = literalAddress(domain);
    if (address === undefined) return undefined;
    const inet: string[] = [];
    for (const raw of this.config.getList('inet_interfaces')) {
      const item = raw.toLowerCase();
      if (item === 'all') inet.push(...this.machineAddresses());
      else if (item === 'loopback-only' || item === 'localhost') inet.push('127.0.0.1', '::1');
      else inet.push(item.replace(/^\[(.*)\]$/, '$1'));
    }
    if (inet.some((a) => sameAddress(a, address))) return 'inet_interfaces';
    if (this.config.getList('proxy_interfaces').some((a) => sameAddress(a.replace(/^\[(.*)\]$/, '$1'), address))) return 'proxy_interfaces';
    return undefined;
  }

  private async domainInTable(spec: string, domain: string, parentMatches: boolean, param: string): Promise<boolean> {
    const table = await this.openTable(spec, param);
    for (const key of domainKeys(domain, parentMatches)) {
      const r = await table.lookup(key);
      if (r.kind === 'error') throw new ResolveFailure(`${param} lookup failure: ${r.error.message}`);
      if (r.kind === 'found') return true;
    }
    return false;
  }

  private async openTable(spec: string, param: string): Promise<LookupTable> {
    try {
      return await this.tables.get(spec);
    } catch (err) {
      if (err instanceof UserError) throw new ResolveFailure(`${param}: ${spec}: ${err.message}`);
      throw err;
    }
  }

  /** Steps 2 and 3: the class's own transport and next hop (relayhost, domain). */
  private async classRoute(cls: DomainClass, domain: string, sender: string, steps: RouteStep[]): Promise<{ transport: string; nexthop: string }> {
    let value: string;
    if (cls === 'local') {
      value = this.config.get('local_transport');
      steps.push({ what: 'local_transport', detail: value });
    } else if (cls === 'relay') {
      value = this.config.get('relay_transport');
      steps.push({ what: 'relay_transport', detail: value });
    } else {
      const dependent = await this.senderDependent('sender_dependent_default_transport_maps', 'empty_address_default_transport_maps_lookup_key', sender, steps);
      value = dependent ?? this.config.get('default_transport');
      if (dependent === undefined) steps.push({ what: 'default_transport', detail: value });
    }
    const { transport, nexthop } = splitTransport(value);
    if (nexthop !== undefined && nexthop !== '') return { transport, nexthop };
    if (cls === 'local') return { transport, nexthop: this.config.get('myhostname') };
    // postconf(5) relayhost: "In order of decreasing precedence, the nexthop destination is
    // taken from $sender_dependent_default_transport_maps, $default_transport,
    // $sender_dependent_relayhost_maps, $relayhost, or from the recipient domain."
    const relay = await this.senderDependent('sender_dependent_relayhost_maps', 'empty_address_relayhost_maps_lookup_key', sender, steps);
    if (relay !== undefined) return { transport, nexthop: relay };
    const relayhost = this.config.get('relayhost').trim();
    if (relayhost !== '') {
      steps.push({ what: 'relayhost', detail: relayhost });
      return { transport, nexthop: relayhost };
    }
    steps.push({ what: 'nexthop', detail: `the recipient domain ${domain} (relayhost is empty)` });
    return { transport, nexthop: domain };
  }

  /**
   * sender_dependent_*_maps: keys `user+ext@domain`, `user@domain`, `@domain`
   * (the null sender: $empty_address_*_lookup_key). postconf(5): a `DUNNO`
   * result "terminates the search without overriding" the global setting.
   */
  private async senderDependent(param: string, emptyKeyParam: string, sender: string, steps: RouteStep[]): Promise<string | undefined> {
    const specs = this.config.getList(param);
    if (specs.length === 0) return undefined;
    const keys = senderKeys(sender, this.config.get(emptyKeyParam), this.config.get('recipient_delimiter'));
    for (const key of keys) {
      for (const spec of specs) {
        const table = await this.openTable(spec, param);
        if (table.keyKind === 'pattern' && key !== keys[0]) continue;
        const r = await table.lookup(key);
        if (r.kind === 'error') throw new ResolveFailure(`${param} lookup failure: ${r.error.message}`);
        if (r.kind === 'found') {
          const value = r.value.trim();
          steps.push({ what: param, detail: `${spec}: key "${key}" -> "${value}"` });
          return value.toUpperCase() === 'DUNNO' ? undefined : value;
        }
      }
    }
    steps.push({ what: param, detail: `no match for sender <${sender}>` });
    return undefined;
  }

  /** Step 1: transport_maps. Undefined when nothing matched or the match says "do not change". */
  private async transportTable(recipient: string, domain: string, steps: RouteStep[]): Promise<{ transport: string; nexthop?: string } | undefined> {
    const specs = this.config.getList('transport_maps');
    if (specs.length === 0) {
      steps.push({ what: 'transport_maps', detail: '(empty)' });
      return undefined;
    }
    const tables = [];
    for (const spec of specs) tables.push(await this.openTable(spec, 'transport_maps'));
    const address = domain === '' ? `${recipient.replace(/@$/, '')}@${foldAscii(this.config.get('myhostname'))}` : recipient;
    let r: WalkResult;
    try {
      r = await transportLookup(tables, address, {
        recipientDelimiter: this.config.get('recipient_delimiter'),
        parentMatchesSubdomains: this.config.getList('parent_domain_matches_subdomains').includes('transport_maps'),
        doubleBounceSender: this.config.get('double_bounce_sender'),
        ownerRequestSpecial: this.config.getBool('owner_request_special'),
      });
    } catch (err) {
      if (err instanceof UserError) throw new ResolveFailure(`transport_maps: ${err.message}`);
      throw err;
    }
    if (r.kind === 'error') throw new ResolveFailure(`transport_maps lookup failure: ${r.table}: key "${r.key}": ${r.error.message}`);
    if (r.kind === 'notfound') {
      steps.push({ what: 'transport_maps', detail: `no match (keys tried: ${uniqueKeys(r.tried).join(', ')})` });
      return undefined;
    }
    const value = r.value.trim();
    steps.push({ what: 'transport_maps', detail: `${r.table}: key "${r.key}" -> "${value}"` });
    const { transport, nexthop } = splitTransport(value);
    // transport(5) RESULT FORMAT: "A null transport and null nexthop result means
    // 'do not change'"; "A non-null transport field with a null nexthop field
    // resets the nexthop information to the recipient domain"; "A null transport
    // field with non-null nexthop field does not modify the transport information."
    if (transport === '' && (nexthop === undefined || nexthop === '')) return undefined;
    if (nexthop === undefined || nexthop === '') {
      return { transport, nexthop: domain === '' ? this.config.get('myhostname') : domain };
    }
    return { transport, nexthop };
  }

  private localRoute(recipient: string, at: number, steps: RouteStep[]): Route {
    const local = at < 0 ? recipient : recipient.slice(0, at);
    const doubleBounce = this.config.get('double_bounce_sender');
    if (local.toLowerCase() === doubleBounce.toLowerCase()) {
      // qmgr_message.c: mail to the local double-bounce address is discarded.
      steps.push({ what: 'local', detail: `${recipient} is the double-bounce address: discarded` });
      return deliver('discard', ['undeliverable postmaster notification discarded'], [], 'local', steps);
    }
    const stripped = stripExtension(`${local}@x`, local.length, {
      recipientDelimiter: this.config.get('recipient_delimiter'),
      doubleBounceSender: doubleBounce,
      ownerRequestSpecial: this.config.getBool('owner_request_special'),
    });
    const user = (stripped === undefined ? local : stripped.slice(0, -2)).toLowerCase();
    steps.push({ what: 'local', detail: 'sealpost has no local delivery; transport_maps does not route this domain elsewhere' });
    return { kind: 'bounce', dsn: '5.1.1', reason: `unknown user: "${user}" ${NO_LOCAL_DELIVERY}`, steps };
  }

  private deliverRoute(transport: string, nexthop: string, cls: DomainClass, steps: RouteStep[]): Route {
    if (TEXT_TRANSPORTS.has(transport)) return deliver(transport, [nexthop], [], cls, steps);
    const nexthops = splitNexthops(nexthop);
    const fallbackRelays = splitNexthops(this.config.get('smtp_fallback_relay'));
    steps.push({ what: 'result', detail: `transport ${transport}, next hop${nexthops.length > 1 ? 's' : ''} ${nexthops.join(', ')}` });
    return deliver(transport, nexthops, fallbackRelays, cls, steps);
  }
}

/** The fix a local recipient's bounce names (docs/delivery.md "Local recipients"). */
export const NO_LOCAL_DELIVERY = '(sealpost has no local delivery: route this domain with transport_maps, or take it out of mydestination)';

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

/** valid_mailhost_literal(): `[1.2.3.4]` or `[IPv6:...]` → the address; undefined otherwise. */
export function literalAddress(domain: string): string | undefined {
  const m = /^\[(.*)\]$/.exec(domain);
  if (!m) return undefined;
  const inner = m[1]!;
  if (/^ipv6:/i.test(inner)) return isIP(inner.slice(5)) === 6 ? inner.slice(5).toLowerCase() : undefined;
  return isIP(inner) === 4 ? inner : undefined;
}

function sameAddress(a: string, b: string): boolean {
  const norm = (x: string): string => x.toLowerCase().replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return norm(a) === norm(b);
}

function deliver(transport: string, nexthops: readonly string[], fallbackRelays: readonly string[], domainClass: DomainClass, steps: RouteStep[]): Route {
  return { kind: 'deliver', transport, nexthops, fallbackRelays, domainClass, steps };
}

/**
 * transport(5) `transport:nexthop`: split at the first colon. Without a colon
 * the whole value is the transport and the next hop is absent.
 */
export function splitTransport(value: string): { transport: string; nexthop?: string } {
  const colon = value.indexOf(':');
  if (colon < 0) return { transport: value.trim() };
  return { transport: value.slice(0, colon).trim(), nexthop: value.slice(colon + 1).trim() };
}

/** Postfix ≥ 3.5 next-hop lists: comma and/or whitespace separated (CHARS_COMMA_SP). */
export function splitNexthops(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s !== '');
}

/** ASCII-only lower-casing (domains; U-labels stay as sent). */
function foldAscii(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

function isTableSpec(entry: string): boolean {
  return /^[A-Za-z0-9_-]+:./.test(entry) && !entry.startsWith('[');
}

/** match_list(3) hostname match for a literal pattern. */
export function domainMatches(pattern: string, domain: string, parentMatches: boolean): boolean {
  if (pattern === domain) return true;
  if (pattern.startsWith('.')) return domain.endsWith(pattern);
  return parentMatches && domain.endsWith(`.${pattern}`);
}

/** Table keys for a domain in a domain list: the name, then parents (`.parent` or `parent`). */
function domainKeys(domain: string, parentMatches: boolean): string[] {
  const keys = [domain];
  for (let dot = domain.indexOf('.'); dot >= 0; dot = domain.indexOf('.', dot + 1)) {
    keys.push(parentMatches ? domain.slice(dot + 1) : domain.slice(dot));
  }
  return keys.filter((k) => k !== '' && k !== '.');
}

/** Sender lookup keys: the address, without extension, then `@domain`. */
function senderKeys(sender: string, emptyKey: string, delimiter: string): string[] {
  if (sender === '') return [emptyKey];
  const keys = [sender];
  const at = sender.lastIndexOf('@');
  if (at > 0) {
    const stripped = stripExtension(sender, at, { recipientDelimiter: delimiter });
    if (stripped !== undefined && stripped !== sender) keys.push(stripped);
    keys.push(sender.slice(at));
  }
  return keys;
}

function uniqueKeys(tried: readonly { key: string }[]): string[] {
  return [...new Set(tried.map((t) => t.key))];
}
