/**
 * connect.ts — from a next hop to an ordered list of servers, and the TCP
 * connect to one of them (Postfix smtp_connect.c + smtp_addr.c).
 *
 * Contract:
 * - `resolveHop(hop, settings, resolver)`: `[host]`/`[host]:port` = no MX,
 *   the host's A/AAAA only (an IP literal is used as is); `domain`/`domain:port`
 *   = MX lookup via mx.ts (null MX → 5.1.0, NXDOMAIN → 5.4.4, lookup trouble →
 *   4.4.3, Postfix's texts). The port is the hop's, else `smtp_tcp_port`
 *   (numbers or /etc/services names). Addresses follow `inet_protocols`,
 *   `smtp_mx_address_limit`, `smtp_address_preference`; `smtp_host_lookup`
 *   chooses DNS and/or the system resolver (native) for address records.
 *   Never throws for DNS or syntax trouble: it returns a `fail` value.
 * - IDNA (smtp_addr.c "IDNA support"): a next-hop host that is not all ASCII
 *   is looked up, connected to and named (`hostname`: relay=, TLS name
 *   checks, SNI) in its A-label form (idna.ts asciiForLookup); one without a
 *   valid A-label form fails 5.4.4 `Name service error for NAME: invalid
 *   host or domain name` (dns_lookup.c) without any query. `nexthop` stays
 *   verbatim (table keys are UTF-8, as Postfix's).
 * - Loops (loop.ts, with `settings.loop`): a `[host]` that is one of our own
 *   listeners fails `5.4.6 mail for HOST loops back to myself`; an MX list is
 *   cut before our own preference, and fails the same way when nothing is
 *   left. Such a failure carries `loop` (smtp_connect.c: no further next hop
 *   or fallback relay is tried). `bestMx` marks the servers of the lowest
 *   preference left (the EHLO loop check bounces there, defers elsewhere).
 * - `openSocket(server, timeoutMs, bind)`: a connected socket or the
 *   strerror text (`Connection refused`, `Connection timed out`); the
 *   default `SocketFactory` (tests inject their own).
 *
 * Not here: the session (session.ts), which hop comes next and the
 * smtp_mx_session_limit count (agent.ts), TLS.
 */
import { connect as netConnect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { lookup as nativeLookup } from 'node:dns/promises';
import type { Config } from '../../config/types.ts';
import { resolvePort } from '../../lib/services.ts';
import { parseNexthop } from '../../maps/domain-walk.ts';
import { asciiForLookup } from '../../smtp/idna.ts';
import { familiesFor, resolveMx } from '../dns/mx.ts';
import type { InetProtocols } from '../dns/mx.ts';
import type { AddressRecord, IpFamily, LookupResult, MxRecord, Resolver } from '../dns/resolver.ts';
import type { ServerIdentity } from '../tls/types.ts';
import { selfCheck, type LoopSettings } from './loop.ts';
import { errnoText } from './trouble.ts';

export interface ServerTarget extends ServerIdentity {
  /** The next hop this server was found for, verbatim. */
  readonly nexthop: string;
  /** A server of the best MX preference found (Postfix SMTP_FEATURE_BEST_MX); absent: treat as best. */
  readonly bestMx?: boolean;
}

export type HopResolution =
  | { readonly kind: 'targets'; readonly targets: readonly ServerTarget[] }
  | { readonly kind: 'fail'; readonly dsn: string; readonly reason: string; readonly loop?: true };

export type AddressPreference = 'any' | 'ipv4' | 'ipv6';

export interface ConnectSettings {
  /** smtp_tcp_port as a number. */
  readonly defaultPort: number;
  readonly inetProtocols: InetProtocols;
  readonly addressLimit: number;
  readonly addressPreference: AddressPreference;
  /** smtp_host_lookup, in order. */
  readonly hostLookup: readonly ('dns' | 'native')[];
  readonly bindAddress: string;
  readonly bindAddress6: string;
  readonly random?: () => number;
  readonly warn?: (text: string) => void;
  /** Our own listeners and name, for the loop checks (the delivery agent sets it; probes do not). */
  readonly loop?: LoopSettings;
}

/** Read the connection parameters from the service's config. */
export function connectSettings(config: Config, random?: () => number, warn?: (t: string) => void): ConnectSettings {
  const portText = config.get('smtp_tcp_port') || 'smtp';
  const proto = config.getList('inet_protocols').map((p) => p.toLowerCase());
  const inetProtocols: InetProtocols = proto.includes('all') || (proto.includes('ipv4') && proto.includes('ipv6'))
    ? 'all' : proto.includes('ipv6') ? 'ipv6' : 'ipv4';
  const pref = config.get('smtp_address_preference').toLowerCase();
  const lookups = config.getList('smtp_host_lookup').map((l) => l.toLowerCase()).filter((l): l is 'dns' | 'native' => l === 'dns' || l === 'native');
  return {
    defaultPort: resolvePort(portText) ?? 25,
    inetProtocols,
    addressLimit: config.getInt('smtp_mx_address_limit'),
    addressPreference: pref === 'ipv4' || pref === 'ipv6' ? pref : 'any',
    hostLookup: lookups.length > 0 ? lookups : ['dns'],
    bindAddress: config.get('smtp_bind_address'),
    bindAddress6: config.get('smtp_bind_address6'),
    ...(random ? { random } : {}),
    ...(warn ? { warn } : {}),
  };
}

/** smtp_addr.c texts for a host address lookup (`[host]` next hops). */
function addressFailText(name: string, type: string, status: 'NXDOMAIN' | 'NODATA' | 'tempfail'): string {
  const what = status === 'tempfail' ? 'Host not found, try again'
    : status === 'NXDOMAIN' ? 'Host not found' : 'Host found but no data record of requested type';
  return `Host or domain name not found. Name service error for name=${name} type=${type}: ${what}`;
}

/** Address records through the system resolver (getaddrinfo), as smtp_host_lookup = native. */
async function nativeAddresses(host: string, families: readonly IpFamily[]): Promise<LookupResult<AddressRecord>> {
  try {
    const all = await nativeLookup(host, { all: true, family: families.length === 1 ? (families[0] === 'ipv4' ? 4 : 6) : 0 });
    const records = all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 as const : 4 as const }));
    if (records.length === 0) return { status: 'notfound', reason: 'NODATA', authenticated: false };
    return { status: 'found', records, authenticated: false };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND') return { status: 'notfound', reason: 'NXDOMAIN', authenticated: false };
    if (code === 'ENODATA') return { status: 'notfound', reason: 'NODATA', authenticated: false };
    return { status: 'tempfail', reason: String(code ?? err) };
  }
}

/** A Resolver whose address lookups follow smtp_host_lookup (dns, native, or dns then native). */
export function hostLookupResolver(resolver: Resolver, order: readonly ('dns' | 'native')[]): Resolver {
  if (order.length === 1 && order[0] === 'dns') return resolver;
  return {
    mx: (domain: string): Promise<LookupResult<MxRecord>> => resolver.mx(domain),
    async addresses(host: string, families: readonly IpFamily[]): Promise<LookupResult<AddressRecord>> {
      let last: LookupResult<AddressRecord> = { status: 'notfound', reason: 'NXDOMAIN', authenticated: false };
      for (const how of order) {
        last = how === 'dns' ? await resolver.addresses(host, families) : await nativeAddresses(host, families);
        if (last.status === 'found') return last;
      }
      return last;
    },
  };
}

/** smtp_address_preference: within one MX preference, put the preferred family first (stable). */
export function applyAddressPreference<T extends { preference?: number; family: 4 | 6 }>(list: readonly T[], pref: AddressPreference): T[] {
  if (pref === 'any') return [...list];
  const want = pref === 'ipv4' ? 4 : 6;
  return list
    .map((t, i) => ({ t, i }))
    .sort((a, b) => (a.t.preference ?? 0) - (b.t.preference ?? 0) || Number(b.t.family === want) - Number(a.t.family === want) || a.i - b.i)
    .map((x) => x.t);
}

/** `[ipv6:2001:db8::1]` → `2001:db8::1`. */
function literalHost(host: string): string {
  return host.toLowerCase().startsWith('ipv6:') ? host.slice(5) : host;
}

export async function resolveHop(hop: string, settings: ConnectSettings, resolver: Resolver): Promise<HopResolution> {
  let parsed;
  try {
    parsed = parseNexthop(hop);
  } catch (err) {
    return { kind: 'fail', dsn: '4.3.5', reason: `bad next-hop destination: ${(err as Error).message}` };
  }
  let port = settings.defaultPort;
  if (parsed.port !== undefined) {
    const p = resolvePort(parsed.port);
    // smtp_connect.c: "unknown service: %s/tcp" (a configuration problem: defer).
    if (p === undefined) return { kind: 'fail', dsn: '4.3.5', reason: `unknown service: ${parsed.port}/tcp` };
    port = p;
  }
  const families = familiesFor(settings.inetProtocols);
  const lookups = hostLookupResolver(resolver, settings.hostLookup);
  const host = parsed.bracketed ? literalHost(parsed.host) : parsed.host;
  // smtp_addr.c: "IDNA support" — DNS and connections use the A-label form.
  const ahost = asciiForLookup(host);
  if (ahost === undefined) return { kind: 'fail', dsn: '5.4.4', reason: `Name service error for ${host}: invalid host or domain name` };
  if (parsed.bracketed) return bracketedHop(hop, host, ahost, port, settings, lookups);
  const mx = await resolveMx(ahost, lookups, {
    inetProtocols: settings.inetProtocols,
    addressLimit: settings.addressLimit,
    ...(settings.random ? { random: settings.random } : {}),
    ...(settings.warn ? { warn: settings.warn } : {}),
  });
  if (mx.kind !== 'targets') return { kind: 'fail', dsn: mx.dsn, reason: mx.text };
  const ordered = applyAddressPreference(mx.targets, settings.addressPreference).map((t) => ({ ...t, port }));
  const self = selfCheck(settings.loop, host, ordered, false);
  if (self.kind === 'loop') return { kind: 'fail', dsn: self.dsn, reason: self.reason, loop: true };
  const best = Math.min(...self.targets.map((t) => t.preference));
  return {
    kind: 'targets',
    targets: self.targets.map((t) => ({
      hostname: t.hostname, address: t.address, port, nexthop: hop, mxAuthenticated: mx.mxAuthenticated, bestMx: t.preference === best,
      // DANE (RFC 7672 §2.2): the host's own address lookup and its CNAME chain.
      addressAuthenticated: t.addressAuthenticated, ...(t.canonicalName !== undefined ? { canonicalName: t.canonicalName } : {}),
    })),
  };
}

/** `[host]` / `[host]:port`: address records only, no MX (smtp_host_addr()). */
async function bracketedHop(hop: string, host: string, ahost: string, port: number, settings: ConnectSettings, lookups: Resolver): Promise<HopResolution> {
  let targets: ServerTarget[];
  if (isIP(ahost) !== 0) {
    targets = [{ hostname: ahost, address: ahost, port, nexthop: hop, mxAuthenticated: false }];
  } else {
    const families = familiesFor(settings.inetProtocols);
    const r = await lookups.addresses(ahost, families);
    const type = families.length === 1 && families[0] === 'ipv6' ? 'AAAA' : 'A';
    if (r.status === 'tempfail') return { kind: 'fail', dsn: '4.4.3', reason: addressFailText(ahost, type, 'tempfail') };
    if (r.status === 'notfound') return { kind: 'fail', dsn: '5.4.4', reason: addressFailText(ahost, type, r.reason) };
    const ordered = applyAddressPreference(r.records, settings.addressPreference);
    const limited = settings.addressLimit > 0 ? ordered.slice(0, settings.addressLimit) : ordered;
    // A [nexthop] is treated like a validated `MX 0 nexthop` (postconf(5) smtp_dns_support_level).
    targets = limited.map((a) => ({
      hostname: ahost, address: a.address, port, nexthop: hop, mxAuthenticated: r.authenticated,
      // DANE (RFC 7672 §2.2): the host's own address lookup and its CNAME chain.
      addressAuthenticated: r.authenticated, ...(a.canonicalName !== undefined ? { canonicalName: a.canonicalName } : {}),
    }));
  }
  const self = selfCheck(settings.loop, host, targets, true);
  if (self.kind === 'loop') return { kind: 'fail', dsn: self.dsn, reason: self.reason, loop: true };
  return { kind: 'targets', targets };
}

export type SocketResult = { readonly ok: true; readonly socket: Socket } | { readonly ok: false; readonly error: string };

/**
 * How the client gets a TCP connection to a server (openSocket below): the
 * seam where unit tests inject one end of a socket pair.
 */
export type SocketFactory = (
  server: { readonly address: string; readonly port: number },
  timeoutMs: number,
  settings: Pick<ConnectSettings, 'bindAddress' | 'bindAddress6'>,
) => Promise<SocketResult>;

/** TCP connect within smtp_connect_timeout; smtp_bind_address(6) as the source when set. */
export function openSocket(server: { address: string; port: number }, timeoutMs: number, settings: Pick<ConnectSettings, 'bindAddress' | 'bindAddress6'>): Promise<SocketResult> {
  return new Promise((resolve) => {
    const v6 = isIP(server.address) === 6;
    const local = v6 ? settings.bindAddress6 : settings.bindAddress;
    const socket = netConnect({ host: server.address, port: server.port, ...(local ? { localAddress: local } : {}) });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, error: 'Connection timed out' });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve({ ok: true, socket });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: false, error: errnoText(err.code, err.message) });
    });
  });
}
