/**
 * mx.ts — Postfix's smtp(8) next-hop address logic for a domain: MX lookup,
 * preference order, host addresses, implicit MX, null MX, limits.
 *
 * Contract: `resolveMx(domain, resolver, options)` never throws for DNS trouble;
 * it returns one of
 *   - `targets`: the addresses to try in order (MX preference ascending, random
 *     order among equal preferences via the injectable `random`, then each
 *     host's A/AAAA per `inet_protocols`), truncated to `smtp_mx_address_limit`
 *     (0 = unlimited); `implicit` when there was no MX and the domain's own
 *     address records were used (RFC 5321 §5.1: implicit MX with preference 0);
 *     `mxAuthenticated` says whether the MX RRset was DNSSEC-secure (AD bit),
 *     and each target says whether its own address lookup was
 *     (`addressAuthenticated`) and, when the MX host name is an alias, the
 *     name at the end of its CNAME chain (`canonicalName`): DANE needs all
 *     three (RFC 7672 §2.2: TLSA only for secure MX hosts; §2.2.2: CNAMEs);
 *   - `nullmx`: RFC 7505 null MX — the caller bounces with `text` (5.1.0);
 *   - `notfound`: a permanent DNS answer — the caller bounces (5.4.4);
 *   - `tempfail`: any lookup that could not complete — the caller defers (4.4.3).
 *     A failed MX lookup is never treated as "no MX" (no downgrade).
 * Texts are Postfix's.
 *
 * Not here: the mail-loops-back-to-myself check, smtp_address_preference,
 * smtp_mx_session_limit, DANE/TLSA, relayhost/[host] (no-MX) next hops.
 */
import { isIP } from 'node:net';
import type { AddressRecord, IpFamily, LookupResult, MxRecord, Resolver } from './resolver.ts';

export type InetProtocols = 'ipv4' | 'ipv6' | 'all';

export interface MxOptions {
  /** postconf(5) inet_protocols (default all). */
  readonly inetProtocols?: InetProtocols;
  /** postconf(5) smtp_mx_address_limit (default 5; 0 = no limit). */
  readonly addressLimit?: number;
  /** Returns [0, 1); injected for deterministic shuffling in tests. */
  readonly random?: () => number;
  /** Receives Postfix-style warning texts (without the `warning: ` prefix). */
  readonly warn?: (message: string) => void;
}

export interface MxTarget {
  readonly hostname: string;
  readonly preference: number;
  readonly address: string;
  readonly family: 4 | 6;
  /** The AD bit of the host's address lookup (true only when every family's answer was secure). */
  readonly addressAuthenticated: boolean;
  /** The end of the host name's CNAME chain, when the MX host name is an alias. */
  readonly canonicalName?: string;
}

function target(hostname: string, preference: number, a: AddressRecord, authenticated: boolean): MxTarget {
  return {
    hostname, preference, address: a.address, family: a.family, addressAuthenticated: authenticated,
    ...(a.canonicalName !== undefined ? { canonicalName: a.canonicalName } : {}),
  };
}

export type MxResolution =
  | { readonly kind: 'targets'; readonly targets: readonly MxTarget[]; readonly implicit: boolean; readonly mxAuthenticated: boolean }
  | { readonly kind: 'nullmx'; readonly dsn: '5.1.0'; readonly text: string }
  | { readonly kind: 'notfound'; readonly dsn: '5.4.4'; readonly text: string }
  | { readonly kind: 'tempfail'; readonly dsn: '4.4.3'; readonly text: string };

export const DEFAULT_MX_ADDRESS_LIMIT = 5;

export function familiesFor(p: InetProtocols): IpFamily[] {
  return p === 'ipv4' ? ['ipv4'] : p === 'ipv6' ? ['ipv6'] : ['ipv4', 'ipv6'];
}

/** Postfix smtp_addr.c texts. */
function notFoundText(name: string, type: string, reason: 'NXDOMAIN' | 'NODATA'): string {
  return `Host or domain name not found. Name service error for name=${name} type=${type}: ` +
    (reason === 'NXDOMAIN' ? 'Host not found' : 'Host found but no data record of requested type');
}
function tempText(name: string, type: string): string {
  return `Host or domain name not found. Name service error for name=${name} type=${type}: Host not found, try again`;
}

/**
 * Sort by preference, random order among equal preferences: shuffle first
 * (Fisher–Yates), then a stable sort — as Postfix's dns_rr_shuffle + dns_rr_sort.
 */
export function orderMx(records: readonly MxRecord[], random: () => number = Math.random): MxRecord[] {
  const a = [...records];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.sort((x, y) => x.preference - y.preference);
}

function isRoot(exchange: string): boolean {
  return exchange === '' || exchange === '.';
}

export async function resolveMx(domain: string, resolver: Resolver, options: MxOptions = {}): Promise<MxResolution> {
  const families = familiesFor(options.inetProtocols ?? 'all');
  const limit = options.addressLimit ?? DEFAULT_MX_ADDRESS_LIMIT;
  const mx = await resolver.mx(domain);

  if (mx.status === 'tempfail') return { kind: 'tempfail', dsn: '4.4.3', text: tempText(domain, 'MX') };
  if (mx.status === 'notfound' && mx.reason === 'NXDOMAIN') {
    return { kind: 'notfound', dsn: '5.4.4', text: notFoundText(domain, 'MX', 'NXDOMAIN') };
  }
  if (mx.status === 'notfound') return implicitMx(domain, resolver, families, limit);

  // RFC 7505 §3: a domain that advertises a single MX with an empty exchange ("." ) accepts no mail.
  if (mx.records.length === 1 && isRoot(mx.records[0]!.exchange)) {
    return { kind: 'nullmx', dsn: '5.1.0', text: `Domain ${domain} does not accept mail (nullMX)` };
  }
  const usable = mx.records.filter((r) => {
    if (isRoot(r.exchange)) return false;
    // dns_lookup.c: an IP address where RFC 1035 wants a host name is refused.
    if (isIP(r.exchange.replace(/^\[|\]$/g, '')) !== 0) {
      options.warn?.(`numeric domain name in resource data of MX record for ${domain}: ${r.exchange}`);
      return false;
    }
    return true;
  });
  if (usable.length === 0) {
    // Every MX record was malformed: a broken zone, not "no MX" — do not fall back to A.
    return { kind: 'tempfail', dsn: '4.4.3', text: `Malformed or unexpected name server reply for name=${domain} type=MX` };
  }
  return mxHostAddresses(domain, orderMx(usable, options.random), resolver, families, limit, mx.authenticated);
}

async function implicitMx(domain: string, resolver: Resolver, families: IpFamily[], limit: number): Promise<MxResolution> {
  // RFC 5321 §5.1: no MX records → the domain itself is the implicit MX (preference 0).
  const a = await resolver.addresses(domain, families);
  const type = families.length === 1 && families[0] === 'ipv6' ? 'AAAA' : 'A';
  if (a.status === 'tempfail') return { kind: 'tempfail', dsn: '4.4.3', text: tempText(domain, type) };
  if (a.status === 'notfound') return { kind: 'notfound', dsn: '5.4.4', text: notFoundText(domain, type, a.reason) };
  const targets = a.records.map((r) => target(domain, 0, r, a.authenticated));
  return { kind: 'targets', targets: truncate(targets, limit), implicit: true, mxAuthenticated: false };
}

async function mxHostAddresses(
  domain: string, hosts: readonly MxRecord[], resolver: Resolver, families: IpFamily[], limit: number, authenticated: boolean,
): Promise<MxResolution> {
  const results: LookupResult<AddressRecord>[] = await Promise.all(hosts.map((h) => resolver.addresses(h.exchange, families)));
  const targets: MxTarget[] = [];
  let firstTemp: string | undefined;
  hosts.forEach((h, i) => {
    const r = results[i]!;
    if (r.status === 'found') {
      for (const a of r.records) targets.push(target(h.exchange, h.preference, a, r.authenticated));
    } else if (r.status === 'tempfail' && firstTemp === undefined) {
      firstTemp = tempText(h.exchange, families[0] === 'ipv6' ? 'AAAA' : 'A');
    }
  });
  if (targets.length > 0) return { kind: 'targets', targets: truncate(targets, limit), implicit: false, mxAuthenticated: authenticated };
  if (firstTemp !== undefined) return { kind: 'tempfail', dsn: '4.4.3', text: firstTemp };
  return { kind: 'notfound', dsn: '5.4.4', text: `no MX host for ${domain} has a valid address record` };
}

/** postconf(5) smtp_mx_address_limit: 0 means no limit. */
function truncate(targets: MxTarget[], limit: number): MxTarget[] {
  return limit > 0 ? targets.slice(0, limit) : targets;
}
