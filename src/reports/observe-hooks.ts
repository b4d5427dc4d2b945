/**
 * observe-hooks.ts — the small interfaces through which parts of the daemon
 * that do not publish delivery events report what metrics need: DNS lookups,
 * the MTA-STS policy cache, TLS-RPT reports, inbound SMTP connections.
 *
 * Contract:
 * - Callers import only these types and `NO_HOOKS`; they never import
 *   prom-client or the metrics module. A component takes an optional
 *   `hooks` and calls it unconditionally (`NO_HOOKS` when metrics are off).
 * - Every method is synchronous, cheap and never throws into the caller;
 *   label values are passed as the closed vocabularies below, so a hook
 *   cannot create an unbounded label.
 * - Durations are in seconds (Prometheus' base unit).
 *
 * Not here: the metric names and their registry (metrics.ts), the delivery
 * events (events.ts), queue sizes (queue-gauge.ts).
 */

/** The record types sealpost looks up (delivery/dns/). */
export type DnsQueryType = 'MX' | 'A' | 'AAAA' | 'TLSA' | 'TXT' | 'PTR' | 'CNAME' | 'other';

/** How a lookup ended: found, NXDOMAIN/NODATA, SERVFAIL or another error, no answer in time. */
export type DnsLookupResult = 'ok' | 'notfound' | 'error' | 'timeout';

export interface DnsHooks {
  lookup(type: DnsQueryType, result: DnsLookupResult, seconds: number): void;
}

/** RFC 8461 §5.1 cache use: fresh hit, no entry, entry past max_age used while refreshing, entry refreshed. */
export type StsCacheResult = 'hit' | 'miss' | 'stale' | 'refreshed';

/** An RFC 8461 §3.3 policy fetch: a valid policy, the HTTPS fetch failed, the body did not parse. */
export type StsFetchResult = 'ok' | 'fetch-error' | 'invalid';

export interface MtaStsHooks {
  cacheLookup(result: StsCacheResult): void;
  policyFetch(result: StsFetchResult, seconds: number): void;
  /** The number of policies in the cache now (called after each change). */
  cachedPolicies(count: number): void;
}

/** RFC 8460 §3 delivery methods. */
export type TlsRptMethod = 'mailto' | 'https';

export interface TlsRptHooks {
  /** A daily aggregate report was generated for one policy domain. */
  reportGenerated(): void;
  /** A report was handed to its rua destination, or failed to be. */
  reportDelivered(method: TlsRptMethod, ok: boolean): void;
}

export interface SmtpdHooks {
  /** A client connected to a master.cf SMTP service (`smtp`, `submission`, `submissions`). */
  connectionOpened(service: string): void;
  connectionClosed(service: string): void;
}

export interface ObservabilityHooks {
  readonly dns: DnsHooks;
  readonly mtaSts: MtaStsHooks;
  readonly tlsRpt: TlsRptHooks;
  readonly smtpd: SmtpdHooks;
}

const noop = (): void => undefined;

/** What components use when metrics are off. */
export const NO_HOOKS: ObservabilityHooks = Object.freeze({
  dns: Object.freeze({ lookup: noop }),
  mtaSts: Object.freeze({ cacheLookup: noop, policyFetch: noop, cachedPolicies: noop }),
  tlsRpt: Object.freeze({ reportGenerated: noop, reportDelivered: noop }),
  smtpd: Object.freeze({ connectionOpened: noop, connectionClosed: noop }),
});
