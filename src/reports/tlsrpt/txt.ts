/**
 * txt.ts — TXT lookups for TLS-RPT discovery, as a `TxtLookup`
 * (discover.ts): our dns-packet client when `sealpost_dns_resolvers` names
 * servers, else node:dns with a deadline — the same choice as
 * delivery/dns/resolver.ts createResolver(). A TXT RR's character-strings are
 * joined without a separator (RFC 8460 §3 refers to RFC 7208 §3.3).
 *
 * Contract: never rejects for DNS trouble; NXDOMAIN/NODATA are `notfound`,
 * timeouts and server failures `tempfail`.
 *
 * Not here: parsing (discover.ts). When delivery/dns/resolver.ts gains its
 * own `txt()`, this module becomes a thin adapter over it.
 */
import { Resolver as NodeResolver } from 'node:dns/promises';
import type { Config } from '../../config/types.ts';
import { DnsClient, DnsError } from '../../delivery/dns/dns-client.ts';
import { DEFAULT_DNS_TIMEOUT_MS, parseResolverList, type LookupResult } from '../../delivery/dns/resolver.ts';
import type { TxtLookup } from './discover.ts';

function joinStrings(data: unknown): string {
  const parts = Array.isArray(data) ? data : [data];
  return parts.map((p) => (Buffer.isBuffer(p) ? p.toString('utf8') : String(p))).join('');
}

export class PacketTxtLookup implements TxtLookup {
  private readonly client: DnsClient;
  constructor(servers: ConstructorParameters<typeof DnsClient>[0], private readonly timeoutMs = DEFAULT_DNS_TIMEOUT_MS) {
    this.client = new DnsClient(servers, timeoutMs);
  }

  async txt(name: string): Promise<LookupResult<string>> {
    try {
      const r = await this.client.query(name, 'TXT', { timeoutMs: this.timeoutMs });
      if (r.rcode === 'NXDOMAIN') return { status: 'notfound', reason: 'NXDOMAIN', authenticated: r.authenticatedData };
      const records = r.answers.flatMap((a) => (a.type === 'TXT' ? [joinStrings(a.data)] : []));
      if (records.length === 0) return { status: 'notfound', reason: 'NODATA', authenticated: r.authenticatedData };
      return { status: 'found', records, authenticated: r.authenticatedData };
    } catch (err) {
      if (err instanceof DnsError) return { status: 'tempfail', reason: err.message };
      throw err;
    }
  }
}

export class SystemTxtLookup implements TxtLookup {
  constructor(private readonly timeoutMs = DEFAULT_DNS_TIMEOUT_MS) {}

  async txt(name: string): Promise<LookupResult<string>> {
    const resolver = new NodeResolver({ timeout: Math.max(100, Math.floor(this.timeoutMs / 2)), tries: 2 });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((res) => {
      timer = setTimeout(() => res('timeout'), this.timeoutMs);
    });
    try {
      const r = await Promise.race([resolver.resolveTxt(name), deadline]);
      if (r === 'timeout') {
        resolver.cancel();
        return { status: 'tempfail', reason: `DNS lookup timed out for name=${name} type=TXT` };
      }
      const records = r.map((chunks) => chunks.join(''));
      if (records.length === 0) return { status: 'notfound', reason: 'NODATA', authenticated: false };
      return { status: 'found', records, authenticated: false };
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (code === 'ENOTFOUND') return { status: 'notfound', reason: 'NXDOMAIN', authenticated: false };
      if (code === 'ENODATA') return { status: 'notfound', reason: 'NODATA', authenticated: false };
      return { status: 'tempfail', reason: `DNS lookup failed for name=${name} type=TXT: ${code || String(err)}` };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The TXT lookup the configuration asks for. */
export function createTxtLookup(config: Config): TxtLookup {
  const servers = parseResolverList(config.getList('sealpost_dns_resolvers'));
  return servers.length > 0 ? new PacketTxtLookup(servers) : new SystemTxtLookup();
}
