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
 * - `HookRelay` is what the daemon hands out once, at construction, to
 *   every component: it forwards to the current metrics' hooks (or
 *   NO_HOOKS), so a reload that restarts the metrics needs no rewiring.
 * - Worker threads (the SMTP client, delivery/hosting/) cannot reach the
 *   main thread's registry: `forwardingHooks(post)` collects the calls of one
 *   event-loop turn into a small `HookMessage` posted to the parent, and
 *   `applyHookMessage()` replays them on the main thread's hooks (unknown
 *   names are ignored, so a message cannot call anything else).
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

const DNS_TYPES: ReadonlySet<string> = new Set(['MX', 'A', 'AAAA', 'TLSA', 'TXT', 'PTR', 'CNAME']);

/** A record type name as the hook's closed vocabulary. */
export function dnsQueryType(type: string): DnsQueryType {
  return DNS_TYPES.has(type) ? (type as DnsQueryType) : 'other';
}

/** A resolver answer (delivery/dns/resolver.ts LookupResult status) as the hook's result. */
export function dnsLookupResult(status: 'found' | 'notfound' | 'tempfail', timedOut = false): DnsLookupResult {
  if (timedOut) return 'timeout';
  return status === 'found' ? 'ok' : status === 'notfound' ? 'notfound' : 'error';
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
  /**
   * A client connected to a master.cf SMTP service (`smtp`, `submission`,
   * `submissions`); the function returned reports its close (to the same
   * metrics, even when a reload restarted them in between).
   */
  connectionOpened(service: string): () => void;
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
  smtpd: Object.freeze({ connectionOpened: () => noop }),
});

/** Hooks that forward to a target the daemon swaps when the metrics restart (see the header). */
export class HookRelay implements ObservabilityHooks {
  target: ObservabilityHooks = NO_HOOKS;
  readonly dns: DnsHooks = { lookup: (type, result, seconds) => this.target.dns.lookup(type, result, seconds) };
  readonly mtaSts: MtaStsHooks = {
    cacheLookup: (result) => this.target.mtaSts.cacheLookup(result),
    policyFetch: (result, seconds) => this.target.mtaSts.policyFetch(result, seconds),
    cachedPolicies: (count) => this.target.mtaSts.cachedPolicies(count),
  };
  readonly tlsRpt: TlsRptHooks = {
    reportGenerated: () => this.target.tlsRpt.reportGenerated(),
    reportDelivered: (method, ok) => this.target.tlsRpt.reportDelivered(method, ok),
  };
  readonly smtpd: SmtpdHooks = { connectionOpened: (service) => this.target.smtpd.connectionOpened(service) };
}

/** A worker thread's hook calls of one event-loop turn, as posted to its parent (plain data). */
export interface HookMessage {
  readonly kind: 'hook';
  readonly calls: ReadonlyArray<{ readonly call: HookCall; readonly args: readonly unknown[] }>;
}

export type HookCall = 'dns.lookup' | 'mtaSts.cacheLookup' | 'mtaSts.policyFetch' | 'mtaSts.cachedPolicies' | 'tlsRpt.reportGenerated' | 'tlsRpt.reportDelivered';

/**
 * Hooks for a worker thread: the calls of one event-loop turn go out as one
 * HookMessage (a postMessage wakes the other thread: one per turn, not one per
 * lookup). smtpd hooks are the listener's, never a worker's.
 */
export function forwardingHooks(post: (m: HookMessage) => void, schedule: (flush: () => void) => void = setImmediate): ObservabilityHooks {
  let calls: Array<{ call: HookCall; args: unknown[] }> = [];
  const send = (call: HookCall, ...args: unknown[]): void => {
    calls.push({ call, args });
    if (calls.length > 1) return;
    schedule(() => {
      const batch = calls;
      calls = [];
      post({ kind: 'hook', calls: batch });
    });
  };
  return {
    dns: { lookup: (type, result, seconds) => send('dns.lookup', type, result, seconds) },
    mtaSts: {
      cacheLookup: (result) => send('mtaSts.cacheLookup', result),
      policyFetch: (result, seconds) => send('mtaSts.policyFetch', result, seconds),
      cachedPolicies: (count) => send('mtaSts.cachedPolicies', count),
    },
    tlsRpt: { reportGenerated: () => send('tlsRpt.reportGenerated'), reportDelivered: (method, ok) => send('tlsRpt.reportDelivered', method, ok) },
    smtpd: NO_HOOKS.smtpd,
  };
}

/** Replay a worker's HookMessage on the main thread's hooks; unknown calls are ignored. */
export function applyHookMessage(hooks: ObservabilityHooks, m: HookMessage): void {
  for (const c of m.calls) applyCall(hooks, c.call, c.args as never[]);
}

function applyCall(hooks: ObservabilityHooks, call: HookCall, a: never[]): void {
  switch (call) {
    case 'dns.lookup':
      return hooks.dns.lookup(a[0]!, a[1]!, a[2]!);
    case 'mtaSts.cacheLookup':
      return hooks.mtaSts.cacheLookup(a[0]!);
    case 'mtaSts.policyFetch':
      return hooks.mtaSts.policyFetch(a[0]!, a[1]!);
    case 'mtaSts.cachedPolicies':
      return hooks.mtaSts.cachedPolicies(a[0]!);
    case 'tlsRpt.reportGenerated':
      return hooks.tlsRpt.reportGenerated();
    case 'tlsRpt.reportDelivered':
      return hooks.tlsRpt.reportDelivered(a[0]!, a[1]!);
  }
}
