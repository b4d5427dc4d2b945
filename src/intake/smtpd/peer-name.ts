/**
 * peer-name.ts — the SMTP client's name as Postfix's smtpd finds it
 * (smtpd_peer.c smtpd_peer_sockaddr_to_hostname()): a reverse lookup of the
 * address through the system resolver (getnameinfo: /etc/hosts, then DNS),
 * then a forward lookup of that name (getaddrinfo, the same address family)
 * that must list the address. Log lines then say `localhost[127.0.0.1]`
 * where Postfix says so, and `unknown[192.0.2.1]` otherwise.
 *
 * Contract:
 * - `smtpd_peername_lookup = no`, no reverse name, a numeric "name", or a
 *   lookup that takes longer than `timeoutMs`: `unknown`.
 * - A name whose forward lookup fails: `unknown`, with Postfix's warning
 *   `hostname NAME does not resolve to address ADDR: REASON`; one whose
 *   addresses do not include the client's: `unknown`, with `hostname NAME
 *   does not resolve to address ADDR`.
 * - The resolver is injected (tests); `systemPeerResolver` uses node:dns
 *   lookupService/lookup, i.e. the C library's getnameinfo/getaddrinfo. Its
 *   answers are kept per address for 5 s (a connection per message would
 *   otherwise cost two resolver calls each; Postfix leaves caching to nscd).
 *
 * Not here: reject_unknown_client_hostname and friends (the name status is
 * not kept), the reverse name for reject_unknown_reverse_client_hostname.
 */
import { lookup, lookupService } from 'node:dns/promises';
import { isIP } from 'node:net';

export type ResolverResult<T> = { readonly ok: T } | { readonly error: string };

export interface PeerResolver {
  /** getnameinfo(NI_NAMEREQD): the name of an address. */
  reverse(address: string): Promise<ResolverResult<string>>;
  /** getaddrinfo: the addresses of a name in one family. */
  forward(name: string, family: 4 | 6): Promise<ResolverResult<string[]>>;
}

/** gai_strerror() texts for the codes Node reports (Postfix logs MAI_STRERROR). */
const GAI_TEXT: Readonly<Record<string, string>> = {
  ENOTFOUND: 'Name or service not known',
  EAI_NONAME: 'Name or service not known',
  EAI_AGAIN: 'Temporary failure in name resolution',
  EAI_FAIL: 'Non-recoverable failure in name resolution',
  ENODATA: 'No address associated with hostname',
  EAI_NODATA: 'No address associated with hostname',
};

function gaiText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return GAI_TEXT[code] ?? (err as Error).message;
}

export const systemPeerResolver: PeerResolver = {
  async reverse(address) {
    try {
      return { ok: (await lookupService(address, 0)).hostname };
    } catch (err) {
      return { error: gaiText(err) };
    }
  },
  async forward(name, family) {
    try {
      return { ok: (await lookup(name, { all: true, family })).map((a) => a.address) };
    } catch (err) {
      return { error: gaiText(err) };
    }
  },
};

/** Addresses compared as sock_addr_cmp_addr() does: IPv4-mapped IPv6 is IPv4; IPv6 case-insensitive. */
function sameAddress(a: string, b: string): boolean {
  const norm = (x: string): string => x.toLowerCase().replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return norm(a) === norm(b);
}

export interface PeerNameOptions {
  /** smtpd_peername_lookup */
  readonly enabled: boolean;
  readonly resolver?: PeerResolver;
  readonly timeoutMs?: number;
  readonly warn: (text: string) => void;
}

async function verifiedName(peer: string, r: PeerResolver, warn: (text: string) => void): Promise<string> {
  // An IPv4 client on a dual-stack socket is an IPv4 client.
  const address = peer.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  const reverse = await r.reverse(address);
  // sockaddr_to_hostname(): no name, or one that is an address, is no name.
  if ('error' in reverse || reverse.ok === '' || isIP(reverse.ok) !== 0 || !/^[A-Za-z0-9._-]+$/.test(reverse.ok)) return 'unknown';
  const name = reverse.ok;
  const forward = await r.forward(name, isIP(address) === 6 ? 6 : 4);
  if ('error' in forward) {
    warn(`hostname ${name} does not resolve to address ${address}: ${forward.error}`);
    return 'unknown';
  }
  if (!forward.ok.some((a) => sameAddress(a, address))) {
    warn(`hostname ${name} does not resolve to address ${address}`);
    return 'unknown';
  }
  return name;
}

/**
 * Names found through the system resolver, per address, for a few seconds: a client that
 * opens a connection per message (smtp-source, many MTAs) cost a getnameinfo and a
 * getaddrinfo per connection. Warnings are logged when the lookup is made.
 */
const NAME_TTL_MS = 5000;
const names = new Map<string, { name: string; until: number }>();

/** The client name for `address`; see the header. */
export async function peerName(address: string, opts: PeerNameOptions): Promise<string> {
  if (!opts.enabled) return 'unknown';
  if (opts.resolver !== undefined) return lookupName(address, opts);
  const now = Date.now();
  const hit = names.get(address);
  if (hit && hit.until > now) return hit.name;
  const name = await lookupName(address, opts);
  if (names.size >= 1000) names.clear();
  names.set(address, { name, until: Date.now() + NAME_TTL_MS });
  return name;
}

async function lookupName(address: string, opts: PeerNameOptions): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('unknown'), opts.timeoutMs ?? 10_000);
  });
  try {
    return await Promise.race([verifiedName(address, opts.resolver ?? systemPeerResolver, opts.warn), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
