/**
 * resolver.ts — the DNS questions delivery asks (MX, A/AAAA), as values that
 * keep "not found" apart from "could not find out".
 *
 * Contract: every method resolves (never rejects for DNS trouble) to a
 * `LookupResult`: `found` (records + whether the resolver set the AD bit),
 * `notfound` (NXDOMAIN or NODATA — a permanent answer) or `tempfail` (timeout,
 * SERVFAIL, REFUSED, network error — the caller defers, never downgrades).
 * Two implementations:
 *   - `PacketResolver`: our dns-client against `sealpost_dns_resolvers`
 *     (`ip`, `ip:port`, `[ipv6]:port`), with per-lookup deadlines and the AD bit;
 *   - `SystemResolver`: node:dns/promises (the system's resolv.conf) wrapped in
 *     a deadline; it cannot see the AD bit, so `authenticated` is always false.
 * `createResolver(config)` picks one.
 *
 * Not here: MX policy (mx.ts), TLSA (later), caching.
 */
import { Resolver as NodeResolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Answer } from 'dns-packet';
import { ConfigError } from '../../lib/errors.ts';
import type { Config } from '../../config/types.ts';
import { DnsClient, DnsError } from './dns-client.ts';
import type { DnsServer } from './dns-client.ts';

export interface MxRecord {
  readonly preference: number;
  /** The exchange host name without trailing dot; '' or '.' for the root (null MX). */
  readonly exchange: string;
}

export type IpFamily = 'ipv4' | 'ipv6';

export interface AddressRecord {
  readonly address: string;
  readonly family: 4 | 6;
}

export type LookupResult<T> =
  | { readonly status: 'found'; readonly records: readonly T[]; readonly authenticated: boolean }
  | { readonly status: 'notfound'; readonly reason: 'NXDOMAIN' | 'NODATA'; readonly authenticated: boolean }
  | { readonly status: 'tempfail'; readonly reason: string };

export interface Resolver {
  mx(domain: string): Promise<LookupResult<MxRecord>>;
  /** A and/or AAAA records: found if either family has addresses. */
  addresses(host: string, families: readonly IpFamily[]): Promise<LookupResult<AddressRecord>>;
}

export const DEFAULT_DNS_TIMEOUT_MS = 5000;

/** Combine per-family results: any found wins; else any tempfail; else not found. */
export function mergeAddressResults(results: readonly LookupResult<AddressRecord>[]): LookupResult<AddressRecord> {
  const found = results.filter((r) => r.status === 'found');
  if (found.length > 0) {
    return {
      status: 'found',
      records: found.flatMap((r) => r.records),
      authenticated: found.every((r) => r.authenticated),
    };
  }
  const temp = results.find((r) => r.status === 'tempfail');
  if (temp) return temp;
  const nx = results.some((r) => r.status === 'notfound' && r.reason === 'NXDOMAIN');
  const auth = results.every((r) => r.status === 'notfound' && r.authenticated);
  return { status: 'notfound', reason: nx ? 'NXDOMAIN' : 'NODATA', authenticated: auth };
}

// ---------------------------------------------------------------- our client

export class PacketResolver implements Resolver {
  readonly client: DnsClient;
  readonly timeoutMs: number;

  constructor(servers: readonly DnsServer[], timeoutMs = DEFAULT_DNS_TIMEOUT_MS) {
    this.client = new DnsClient(servers, timeoutMs);
    this.timeoutMs = timeoutMs;
  }

  async mx(domain: string): Promise<LookupResult<MxRecord>> {
    return this.lookup(domain, 'MX', (a) =>
      a.type === 'MX' ? [{ preference: a.data.preference ?? 0, exchange: a.data.exchange }] : []);
  }

  async addresses(host: string, families: readonly IpFamily[]): Promise<LookupResult<AddressRecord>> {
    const parts = await Promise.all(families.map((f) =>
      f === 'ipv4'
        ? this.lookup(host, 'A', (a): AddressRecord[] => (a.type === 'A' ? [{ address: a.data, family: 4 }] : []))
        : this.lookup(host, 'AAAA', (a): AddressRecord[] => (a.type === 'AAAA' ? [{ address: a.data, family: 6 }] : []))));
    return mergeAddressResults(parts);
  }

  private async lookup<T>(name: string, type: 'MX' | 'A' | 'AAAA', pick: (a: Answer) => T[]): Promise<LookupResult<T>> {
    try {
      const r = await this.client.query(name, type, { timeoutMs: this.timeoutMs });
      if (r.rcode === 'NXDOMAIN') return { status: 'notfound', reason: 'NXDOMAIN', authenticated: r.authenticatedData };
      const records = r.answers.flatMap(pick);
      if (records.length === 0) return { status: 'notfound', reason: 'NODATA', authenticated: r.authenticatedData };
      return { status: 'found', records, authenticated: r.authenticatedData };
    } catch (err) {
      if (err instanceof DnsError) return { status: 'tempfail', reason: err.message };
      throw err;
    }
  }
}

// ---------------------------------------------------------- system resolver

/** Node's c-ares error codes that mean a permanent answer. */
const NOT_FOUND_CODES: Record<string, 'NXDOMAIN' | 'NODATA'> = { ENOTFOUND: 'NXDOMAIN', ENODATA: 'NODATA' };

export class SystemResolver implements Resolver {
  readonly timeoutMs: number;
  /** Override resolv.conf (tests, labs): `ip` or `ip:port` strings as node:dns takes them. */
  readonly servers: readonly string[] | undefined;

  constructor(timeoutMs = DEFAULT_DNS_TIMEOUT_MS, servers?: readonly string[]) {
    this.timeoutMs = timeoutMs;
    this.servers = servers;
  }

  async mx(domain: string): Promise<LookupResult<MxRecord>> {
    return this.withDeadline((r) => r.resolveMx(domain), (recs) =>
      recs.map((m) => ({ preference: m.priority, exchange: m.exchange })), `name=${domain} type=MX`);
  }

  async addresses(host: string, families: readonly IpFamily[]): Promise<LookupResult<AddressRecord>> {
    const parts = await Promise.all(families.map((f) =>
      f === 'ipv4'
        ? this.withDeadline((r) => r.resolve4(host), (a) => a.map((address): AddressRecord => ({ address, family: 4 })), `name=${host} type=A`)
        : this.withDeadline((r) => r.resolve6(host), (a) => a.map((address): AddressRecord => ({ address, family: 6 })), `name=${host} type=AAAA`)));
    return mergeAddressResults(parts);
  }

  /** Node's resolver retries for ~27 s on a dead server: cancel it at our deadline. */
  private async withDeadline<R, T>(
    run: (r: NodeResolver) => Promise<R>, map: (r: R) => T[], what: string,
  ): Promise<LookupResult<T>> {
    const resolver = new NodeResolver({ timeout: Math.max(100, Math.floor(this.timeoutMs / 2)), tries: 2 });
    if (this.servers) resolver.setServers([...this.servers]);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((res) => {
      timer = setTimeout(() => res('timeout'), this.timeoutMs);
    });
    try {
      const r = await Promise.race([run(resolver), deadline]);
      if (r === 'timeout') {
        resolver.cancel();
        return { status: 'tempfail', reason: `DNS lookup timed out for ${what} after ${this.timeoutMs} ms` };
      }
      const records = map(r);
      if (records.length === 0) return { status: 'notfound', reason: 'NODATA', authenticated: false };
      return { status: 'found', records, authenticated: false };
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const nf = NOT_FOUND_CODES[code];
      if (nf) return { status: 'notfound', reason: nf, authenticated: false };
      return { status: 'tempfail', reason: `DNS lookup failed for ${what}: ${code || String(err)}` };
    } finally {
      clearTimeout(timer);
    }
  }
}

// ------------------------------------------------------------ configuration

/**
 * Parse `sealpost_dns_resolvers` entries: `ip`, `ip:port`, `[ipv6]`, `[ipv6]:port`
 * (a bare IPv6 address is accepted too). Pure; throws ConfigError naming the entry.
 */
export function parseResolverList(entries: readonly string[], param = 'sealpost_dns_resolvers'): DnsServer[] {
  return entries.map((e) => parseOne(e, param));
}

function parseOne(entry: string, param: string): DnsServer {
  const bad = (): ConfigError => new ConfigError(
    `${param}: invalid DNS server "${entry}": specify ip, ip:port or [ipv6]:port`);
  let host: string;
  let portText: string | undefined;
  const br = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (br) {
    host = br[1]!;
    portText = br[2];
    if (isIP(host) !== 6) throw bad();
  } else if (isIP(entry) !== 0) {
    host = entry;
  } else {
    const m = /^([^:]+):(\d+)$/.exec(entry);
    if (!m || isIP(m[1]!) !== 4) throw bad();
    host = m[1]!;
    portText = m[2];
  }
  const port = portText === undefined ? 53 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad();
  return { host, port };
}

/** Our client when `sealpost_dns_resolvers` lists servers, else the system resolver. */
export function createResolver(config: Config, timeoutMs = DEFAULT_DNS_TIMEOUT_MS): Resolver {
  const servers = parseResolverList(config.getList('sealpost_dns_resolvers'));
  return servers.length > 0 ? new PacketResolver(servers, timeoutMs) : new SystemResolver(timeoutMs);
}
