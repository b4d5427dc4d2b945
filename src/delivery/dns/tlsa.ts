/**
 * tlsa.ts — DANE's DNS half (RFC 7672 §2.2, RFC 6698 §2.1): the TLSA RRset
 * of one MX host and port, with the TLSA base domain it was found under, as
 * Postfix's tls_dane_resolve() finds it; and the pure parser of TLSA rdata.
 *
 * Contract:
 * - `parseTlsaRdata(bytes)` reads usage, selector, matching type and the
 *   association data (RFC 6698 §2.1); a record with no association data is
 *   malformed (Postfix parse_tlsa_rr(): `truncated TLSA RR length == N`).
 *   Unknown usages, selectors and matching types are *not* errors here: they
 *   are well-formed records that dane.ts calls unusable.
 * - `lookupTlsa(resolver, host, port)` never throws for DNS trouble and
 *   returns one of
 *     `secure-records` — an authenticated answer with records (well-formed
 *                        ones in `records`, malformed ones only as warnings);
 *                        `baseDomain` is the TLSA base domain (SNI and the
 *                        DANE-TA name checks use it);
 *     `secure-none`    — authenticated NXDOMAIN/NODATA: no DANE, provably;
 *     `insecure`       — the host's address records, or the TLSA answer,
 *                        were not DNSSEC-secure: no DANE;
 *     `error`          — SERVFAIL (what a validating resolver answers for
 *                        bogus data), timeout, a malformed reply: the caller
 *                        defers with `reason` (`TLSA lookup error for
 *                        host:port`, 4.7.5) — never a downgrade.
 * - CNAMEs (RFC 7672 §2.2.2; Postfix tls_dane_resolve()): when the host's
 *   address records are secure, TLSA is asked first at the fully expanded
 *   name (`canonicalName`), then — when that gives nothing secure — at the
 *   original MX host name. When they are not secure, TLSA is asked only if
 *   the alias itself (the CNAME of the MX host name) is secure, and then
 *   only at the original name; otherwise the host is insecure.
 *   `smtp_tls_force_insecure_host_tlsa_lookup = yes` asks even for an
 *   insecure host (at the original name).
 * - `warnings` hold Postfix's warning texts (without `warning: `), e.g.
 *   `DANE TLSA lookup problem: ...`, for the caller to log.
 *
 * Not here: the MX RRset's security and smtp_tls_dane_insecure_mx_policy, the
 * levels (dane.ts daneHostDecision), certificate matching (dane.ts), caching.
 */
import type { LookupResult, PolicyResolver, TlsaRdata } from './resolver.ts';

/** One well-formed TLSA record (RFC 6698 §2.1). */
export interface TlsaRecord {
  /** 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218 names). */
  readonly usage: number;
  /** 0 Cert, 1 SPKI. */
  readonly selector: number;
  /** 0 Full, 1 SHA2-256, 2 SHA2-512. */
  readonly matchingType: number;
  /** The certificate association data. */
  readonly data: Buffer;
  /** The owner name the record was found at (differs from the query name behind a CNAME). */
  readonly owner: string;
}

export type TlsaParse =
  | { readonly ok: true; readonly record: TlsaRecord }
  | { readonly ok: false; readonly error: string };

/** RFC 6698 §2.1: usage(1) selector(1) matching type(1) data(rest). Pure. */
export function parseTlsaRdata(rdata: Uint8Array, owner = ''): TlsaParse {
  // Postfix parse_tlsa_rr(): "Drop truncated records" when there is no association data.
  if (rdata.length <= 3) return { ok: false, error: `truncated TLSA RR length == ${rdata.length}` };
  return {
    ok: true,
    record: Object.freeze({
      usage: rdata[0]!, selector: rdata[1]!, matchingType: rdata[2]!,
      data: Buffer.from(rdata.subarray(3)), owner,
    }),
  };
}

/** RFC 6698 §3: `_25._tcp.mx.example.com`. */
export function tlsaQueryName(port: number, host: string): string {
  return `_${port}._tcp.${host.replace(/\.$/, '')}`;
}

/** What the SMTP client knows about one MX host from its address lookup (mx.ts MxTarget). */
export interface TlsaHost {
  /** The host name as the MX record (or the [nexthop]) names it. */
  readonly hostname: string;
  /** The end of its CNAME chain, when the name is an alias. */
  readonly canonicalName?: string;
  /** The AD bit of the host's address lookup. */
  readonly addressAuthenticated: boolean;
}

export interface TlsaLookupOptions {
  /** postconf(5) smtp_tls_force_insecure_host_tlsa_lookup. */
  readonly forceInsecureHostLookup?: boolean;
}

export type TlsaLookup =
  | {
      readonly kind: 'secure-records';
      /** The TLSA base domain: SNI name and DANE-TA reference identifier. */
      readonly baseDomain: string;
      /** The name asked (`_25._tcp.<baseDomain>`). */
      readonly qname: string;
      readonly records: readonly TlsaRecord[];
      readonly warnings: readonly string[];
    }
  | { readonly kind: 'secure-none'; readonly qname: string; readonly warnings: readonly string[] }
  | { readonly kind: 'insecure'; readonly why: 'host-insecure' | 'answer-insecure'; readonly warnings: readonly string[] }
  | {
      readonly kind: 'error';
      /** Postfix's deferral text: `TLSA lookup error for host:port` (4.7.5). */
      readonly reason: string;
      readonly dsn: '4.7.5';
      readonly detail: string;
      readonly warnings: readonly string[];
    };

function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();
}

/** Postfix smtp_tls_policy.c dane_init(): `TLSA lookup error for %s:%u`. */
export function tlsaLookupError(host: string, port: number, detail: string, warnings: readonly string[]): TlsaLookup {
  return { kind: 'error', reason: `TLSA lookup error for ${host}:${port}`, dsn: '4.7.5', detail, warnings };
}

/** Postfix qname_secure(): is the alias (the CNAME of the MX host name) itself secure? */
async function aliasSecure(resolver: PolicyResolver, host: string, warnings: string[]): Promise<boolean | 'error'> {
  const c = await resolver.cname(host);
  if (c.status === 'found') return c.authenticated;
  const why = c.status === 'notfound' ? 'no longer a CNAME' : c.reason;
  warnings.push(`DNSSEC status lookup error for ${host}: ${why}`);
  return 'error';
}

/** One TLSA query and what it means (Postfix dane_lookup()). */
async function queryOne(resolver: PolicyResolver, base: string, port: number, warnings: string[]): Promise<TlsaLookup> {
  const qname = tlsaQueryName(port, base);
  const r: LookupResult<TlsaRdata> = await resolver.tlsa(qname);
  if (r.status === 'tempfail') {
    warnings.push(`DANE TLSA lookup problem: ${r.reason}`);
    return tlsaLookupError(base, port, r.reason, warnings);
  }
  if (r.status === 'notfound') {
    return r.authenticated ? { kind: 'secure-none', qname, warnings } : { kind: 'insecure', why: 'answer-insecure', warnings };
  }
  if (!r.authenticated) return { kind: 'insecure', why: 'answer-insecure', warnings };
  const records: TlsaRecord[] = [];
  for (const rr of r.records) {
    const p = parseTlsaRdata(rr.rdata, rr.owner);
    if (p.ok) records.push(p.record);
    else warnings.push(`${sameName(rr.owner, qname) ? '' : `${qname} -> `}${rr.owner}: ${p.error}`);
  }
  return { kind: 'secure-records', baseDomain: base.replace(/\.$/, '').toLowerCase(), qname, records: Object.freeze(records), warnings };
}

/** The TLSA RRset for `host` at `port` (see the header for the CNAME rules). */
export async function lookupTlsa(resolver: PolicyResolver, host: TlsaHost, port: number, opts: TlsaLookupOptions = {}): Promise<TlsaLookup> {
  const warnings: string[] = [];
  const qhost = host.hostname.replace(/\.$/, '');
  const rname = host.canonicalName?.replace(/\.$/, '');
  const isCname = rname !== undefined && !sameName(rname, qhost);
  if (!opts.forceInsecureHostLookup && !host.addressAuthenticated) {
    // RFC 7672 §2.2: no TLSA lookups for hosts in zones that are not signed.
    const secure = isCname ? await aliasSecure(resolver, qhost, warnings) : false;
    if (secure === 'error') return tlsaLookupError(qhost, port, 'DNSSEC status of the MX host alias unknown', warnings);
    if (!secure) return { kind: 'insecure', why: 'host-insecure', warnings };
  }
  if (host.addressAuthenticated && isCname) {
    // RFC 7672 §2.2.2: the fully expanded name first; a lookup error there is final.
    const expanded = await queryOne(resolver, rname, port, warnings);
    if (expanded.kind === 'secure-records' || expanded.kind === 'error') {
      return expanded.kind === 'error' ? tlsaLookupError(qhost, port, expanded.detail, warnings) : expanded;
    }
  }
  return queryOne(resolver, qhost, port, warnings);
}
