/**
 * resolver.ts — the DNS questions delivery asks (MX, A/AAAA for the route;
 * TXT, TLSA and CNAME for the policy sources), as values that keep "not
 * found" apart from "could not find out".
 *
 * Contract: every method resolves (never rejects for DNS trouble) to a
 * `LookupResult`: `found` (records + whether the resolver set the AD bit),
 * `notfound` (NXDOMAIN or NODATA — a permanent answer) or `tempfail` (timeout,
 * SERVFAIL, REFUSED, network error — the caller defers, never downgrades).
 * `authenticated` is the AD bit of the reply that gave the answer: for an
 * address lookup behind a CNAME it covers the whole chain, and the record
 * carries the `canonicalName` it was found at (RFC 7672 §2.2.2 needs it).
 * Two interfaces: `Resolver` (mx, addresses — what the route needs) and
 * `PolicyResolver` (txt, tlsa, cname — what MTA-STS and DANE need); both
 * implementations below serve both:
 *   - `PacketResolver`: our dns-client against `sealpost_dns_resolvers`
 *     (`ip`, `ip:port`, `[ipv6]:port`), with per-lookup deadlines, the DO
 *     bit asked and the AD bit reported; replies read by wire.ts;
 *   - `SystemResolver`: node:dns/promises (the system's resolv.conf) wrapped in
 *     a deadline; it cannot see the AD bit, so `authenticated` is always false,
 *     and Node 20 cannot ask for TLSA: `tlsa()` answers an *insecure* NODATA
 *     (authenticated false), which DANE reads as "no DANE here" — `dane`
 *     runs as `may`, `dane-only` defers (fail closed; never a TLSA match made up).
 * `createResolver(config)` picks one. Both report every lookup (type, result,
 * duration) to optional DnsHooks (reports/observe-hooks.ts) for the metrics.
 *
 * Not here: MX policy (mx.ts), TLSA base-domain logic (tlsa.ts), caching.
 */
import { Resolver as NodeResolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { RecordType } from 'dns-packet';
import { ConfigError } from '../../lib/errors.ts';
import type { Config } from '../../config/types.ts';
import { dnsLookupResult, dnsQueryType, type DnsHooks, type DnsQueryType } from '../../reports/observe-hooks.ts';
import { DnsClient, DnsError, DnsTimeoutError } from './dns-client.ts';
import type { DnsResponse, DnsServer } from './dns-client.ts';
import { RR_TYPE, WireError, chaseCname, decodeA, decodeAAAA, decodeCname, decodeMx, decodeTxt, sameName, txtText } from './wire.ts';
import type { RawRecord } from './wire.ts';

export interface MxRecord {
  readonly preference: number;
  /** The exchange host name without trailing dot; '' or '.' for the root (null MX). */
  readonly exchange: string;
}

export type IpFamily = 'ipv4' | 'ipv6';

export interface AddressRecord {
  readonly address: string;
  readonly family: 4 | 6;
  /** The owner name of the record when the host name is an alias (the end of its CNAME chain); absent otherwise. */
  readonly canonicalName?: string;
}

/** One TLSA record as found: its owner name (after any CNAME) and its rdata bytes (parsed by tlsa.ts). */
export interface TlsaRdata {
  readonly owner: string;
  readonly rdata: Buffer;
}

export type LookupResult<T> =
  | {
      readonly status: 'found';
      readonly records: readonly T[];
      readonly authenticated: boolean;
      /** The smallest TTL (seconds) of the records that gave the answer, when the resolver knows it (PacketResolver). */
      readonly ttl?: number;
    }
  | { readonly status: 'notfound'; readonly reason: 'NXDOMAIN' | 'NODATA'; readonly authenticated: boolean }
  | { readonly status: 'tempfail'; readonly reason: string };

export interface Resolver {
  mx(domain: string): Promise<LookupResult<MxRecord>>;
  /** A and/or AAAA records: found if either family has addresses. */
  addresses(host: string, families: readonly IpFamily[]): Promise<LookupResult<AddressRecord>>;
}

/**
 * The lookups of the policy sources. Kept apart from `Resolver` so the
 * route's resolver wrappers (smtp_host_lookup) need not forward them.
 */
export interface PolicyResolver {
  /** TXT records, each one's strings concatenated without spaces (RFC 8461 §3.1), as latin1 text. */
  txt(name: string): Promise<LookupResult<string>>;
  /** TLSA records at `name` (`_25._tcp.mx.example.com`), CNAMEs followed by the resolver. */
  tlsa(name: string): Promise<LookupResult<TlsaRdata>>;
  /** The CNAME target of `name` (RFC 7672 §2.2.2: is the alias itself secure?). */
  cname(name: string): Promise<LookupResult<string>>;
}

export type FullResolver = Resolver & PolicyResolver;

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

export class PacketResolver implements Resolver, PolicyResolver {
  readonly client: DnsClient;
  readonly timeoutMs: number;

  constructor(servers: readonly DnsServer[], timeoutMs = DEFAULT_DNS_TIMEOUT_MS, private readonly hooks?: DnsHooks) {
    this.client = new DnsClient(servers, timeoutMs);
    this.timeoutMs = timeoutMs;
  }

  async mx(domain: string): Promise<LookupResult<MxRecord>> {
    return this.lookup(domain, 'MX', (r, rec) => (rec.type === RR_TYPE.MX ? [decodeMx(r.message, rec)] : []));
  }

  async addresses(host: string, families: readonly IpFamily[]): Promise<LookupResult<AddressRecord>> {
    const parts = await Promise.all(families.map((f) =>
      f === 'ipv4'
        ? this.lookup(host, 'A', (r, rec) => addressOf(host, r, rec, RR_TYPE.A, 4))
        : this.lookup(host, 'AAAA', (r, rec) => addressOf(host, r, rec, RR_TYPE.AAAA, 6))));
    return mergeAddressResults(parts);
  }

  async txt(name: string): Promise<LookupResult<string>> {
    return this.lookup(name, 'TXT', (_r, rec) => (rec.type === RR_TYPE.TXT ? [txtText(decodeTxt(rec.rdata))] : []));
  }

  async tlsa(name: string): Promise<LookupResult<TlsaRdata>> {
    return this.lookup(name, 'TLSA', (_r, rec) => (rec.type === RR_TYPE.TLSA ? [{ owner: rec.name, rdata: rec.rdata }] : []));
  }

  async cname(name: string): Promise<LookupResult<string>> {
    return this.lookup(name, 'CNAME', (r, rec) => (rec.type === RR_TYPE.CNAME && sameName(rec.name, name) ? [decodeCname(r.message, rec)] : []));
  }

  private async lookup<T>(name: string, type: RecordType, pick: (r: DnsResponse, rec: RawRecord) => T[]): Promise<LookupResult<T>> {
    const started = performance.now();
    // Metrics (reports/observe-hooks.ts): every answer, its type, result and time.
    const seen = (result: LookupResult<T>, timedOut = false): LookupResult<T> => {
      this.hooks?.lookup(dnsQueryType(type), dnsLookupResult(result.status, timedOut), (performance.now() - started) / 1000);
      return result;
    };
    try {
      const r = await this.client.query(name, type, { timeoutMs: this.timeoutMs });
      if (r.rcode === 'NXDOMAIN') return seen({ status: 'notfound', reason: 'NXDOMAIN', authenticated: r.authenticatedData });
      const records: T[] = [];
      let ttl = Number.POSITIVE_INFINITY;
      for (const rec of r.records) {
        const got = pick(r, rec);
        if (got.length === 0) continue;
        records.push(...got);
        ttl = Math.min(ttl, rec.ttl);
      }
      if (records.length === 0) return seen({ status: 'notfound', reason: 'NODATA', authenticated: r.authenticatedData });
      return seen({ status: 'found', records, authenticated: r.authenticatedData, ttl });
    } catch (err) {
      if (err instanceof DnsError) return seen({ status: 'tempfail', reason: err.message }, err instanceof DnsTimeoutError);
      // A record we cannot read is a broken answer, never "no data" (no downgrade).
      if (err instanceof WireError) return seen({ status: 'tempfail', reason: `malformed reply for name=${name} type=${type}: ${err.message}` });
      throw err;
    }
  }
}

/** An A/AAAA record of `host` (directly or at the end of its CNAME chain), with the canonical name when aliased. */
function addressOf(host: string, r: DnsResponse, rec: RawRecord, type: number, family: 4 | 6): AddressRecord[] {
  if (rec.type !== type) return [];
  const address = family === 4 ? decodeA(rec.rdata) : decodeAAAA(rec.rdata);
  const canonical = chaseCname(r.message, r.records, host);
  if (!sameName(rec.name, canonical)) return [];
  return [sameName(canonical, host) ? { address, family } : { address, family, canonicalName: canonical.toLowerCase() }];
}

// ---------------------------------------------------------- system resolver

/** Node's c-ares error codes that mean a permanent answer. */
const NOT_FOUND_CODES: Record<string, 'NXDOMAIN' | 'NODATA'> = { ENOTFOUND: 'NXDOMAIN', ENODATA: 'NODATA' };

export class SystemResolver implements Resolver, PolicyResolver {
  readonly timeoutMs: number;
  /** Override resolv.conf (tests, labs): `ip` or `ip:port` strings as node:dns takes them. */
  readonly servers: readonly string[] | undefined;

  constructor(timeoutMs = DEFAULT_DNS_TIMEOUT_MS, servers?: readonly string[], private readonly hooks?: DnsHooks) {
    this.timeoutMs = timeoutMs;
    this.servers = servers;
  }

  async mx(domain: string): Promise<LookupResult<MxRecord>> {
    return this.withDeadline('MX', (r) => r.resolveMx(domain), (recs) =>
      recs.map((m) => ({ preference: m.priority, exchange: m.exchange })), `name=${domain} type=MX`);
  }

  async addresses(host: string, families: readonly IpFamily[]): Promise<LookupResult<AddressRecord>> {
    const parts = await Promise.all(families.map((f) =>
      f === 'ipv4'
        ? this.withDeadline('A', (r) => r.resolve4(host), (a) => a.map((address): AddressRecord => ({ address, family: 4 })), `name=${host} type=A`)
        : this.withDeadline('AAAA', (r) => r.resolve6(host), (a) => a.map((address): AddressRecord => ({ address, family: 6 })), `name=${host} type=AAAA`)));
    return mergeAddressResults(parts);
  }

  async txt(name: string): Promise<LookupResult<string>> {
    return this.withDeadline('TXT', (r) => r.resolveTxt(name), (recs) => recs.map((chunks) => chunks.join('')), `name=${name} type=TXT`);
  }

  /** Node 20 cannot ask for TLSA: an insecure "no data" — DANE does not apply (see the header). */
  async tlsa(_name: string): Promise<LookupResult<TlsaRdata>> {
    return { status: 'notfound', reason: 'NODATA', authenticated: false };
  }

  async cname(name: string): Promise<LookupResult<string>> {
    return this.withDeadline('CNAME', (r) => r.resolveCname(name), (targets) => targets, `name=${name} type=CNAME`);
  }

  /** Node's resolver retries for ~27 s on a dead server: cancel it at our deadline. */
  private async withDeadline<R, T>(
    type: DnsQueryType, run: (r: NodeResolver) => Promise<R>, map: (r: R) => T[], what: string,
  ): Promise<LookupResult<T>> {
    const started = performance.now();
    let timedOut = false;
    const result = await this.ask(run, map, what, () => (timedOut = true));
    // Metrics (reports/observe-hooks.ts): every answer, its type, result and time.
    this.hooks?.lookup(type, dnsLookupResult(result.status, timedOut), (performance.now() - started) / 1000);
    return result;
  }

  private async ask<R, T>(run: (r: NodeResolver) => Promise<R>, map: (r: R) => T[], what: string, onTimeout: () => void): Promise<LookupResult<T>> {
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
        onTimeout();
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

/** Our client when `sealpost_dns_resolvers` lists servers, else the system resolver; `hooks` count the lookups (metrics). */
export function createResolver(config: Config, timeoutMs = DEFAULT_DNS_TIMEOUT_MS, hooks?: DnsHooks): FullResolver {
  const servers = parseResolverList(config.getList('sealpost_dns_resolvers'));
  return servers.length > 0 ? new PacketResolver(servers, timeoutMs, hooks) : new SystemResolver(timeoutMs, undefined, hooks);
}
