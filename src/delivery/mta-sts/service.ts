/**
 * service.ts — the MTA-STS policy source (RFC 8461 §5.1): answers "which
 * policy does <domain> publish?" from the cache, the `_mta-sts` TXT record
 * and the policy host, for every delivery worker of the daemon.
 *
 * One `StsService` lives in the daemon's main thread; delivery workers reach
 * it through rpc.ts. That makes the cache one cache, and lets the service
 * promise that one domain is never fetched twice at once: lookups and
 * fetches in progress are kept in maps and shared.
 *
 * Contract of `lookup(domain)` (never rejects):
 *   1. An expired cached policy is dropped (memory and disk).
 *   2. The TXT record is asked every time (RFC 8461 §5.1 step 3); the daemon's
 *      resolver keeps the answer for its TTL (dns/answer-cache.ts cachingTxt),
 *      and `refresh`/`forget` drop it first. With a valid record:
 *        - same `id` as the cached policy → the cached policy; when less
 *          than the refresh margin (min(max_age/2, `refreshMarginMs`)) of
 *          its life is left, a refresh is started in the background (§5.1:
 *          "proactively refresh"), and the cached one answers now;
 *        - no cached policy, or another `id` → fetch now (§3.3): success
 *          replaces the cache; failure keeps a cached policy (§5.1: a failed
 *          refresh keeps it) and, without one, there is no policy — with the
 *          RFC 8460 type of the failure and a warning logged.
 *   3. Without a valid record (none, several, unparsable, a DNS failure) a
 *      cached policy still applies (§3.1 note, §5.1); without one, no policy.
 *   4. A policy in mode `none` is cached (it retires an older policy) and
 *      answers `none`.
 *   5. A fetch that failed is not tried again for the same `id` within
 *      `retryAfterMs` (default 5 minutes; RFC 8461 §3.3 "senders ... may
 *      rate-limit fetches"): the answers in between are those of the failure
 *      (the cached policy, or none) — a dead policy host does not add a
 *      fetch timeout to every delivery.
 * `refresh(domain)` fetches now (the cache tool's "fetch now"); `forget`,
 * `list`, `show` serve the tool — on the daemon's own instance: policies
 * once read are kept in memory, so another process editing the files is not
 * seen until the service is made anew (reload). Domains that are not DNS names (an IP
 * literal, `[host]`) have no policy. The clock, resolver, HTTPS getter and
 * store are injected.
 *
 * The answer (`StsLookup`) is plain data (it crosses threads) and carries
 * what outcome.ts AppliedPolicy needs: `appliedStsFields()`.
 *
 * Not here: what a policy demands of one MX host (match.ts), the wire
 * protocol to the workers (rpc.ts).
 */
import type { Config } from '../../config/types.ts';
import { familiesFor } from '../dns/mx.ts';
import type { FullResolver, PolicyResolver } from '../dns/resolver.ts';
import type { AppliedPolicy } from '../outcome.ts';
import { cacheKey, StsCache } from './cache.ts';
import type { StsCacheEntry, StsCacheStore } from './cache.ts';
import { discoverSts, stsTxtName } from './discover.ts';
import type { StsDiscovery } from './discover.ts';
import { createHttpsGetter, DEFAULT_STS_MAX_BYTES, fetchStsPolicy, stsTrustRoots } from './fetch.ts';
import type { HttpsGetter, StsFailure } from './fetch.ts';
import type { MtaStsHooks } from '../../reports/observe-hooks.ts';

/** What the policy source answers for one domain. */
export type StsLookup =
  | {
      readonly kind: 'policy';
      /** mode enforce or testing. */
      readonly policy: StsCacheEntry;
      readonly from: 'cache' | 'fetch';
      /** A refetch that failed (the cached policy answered instead). */
      readonly refreshFailure?: StsFailure;
      /** The TXT record as found, when one was. */
      readonly txt?: string;
    }
  | {
      readonly kind: 'none';
      readonly why: 'disabled' | 'not-a-domain' | 'no-record' | 'no-sts-record' | 'multiple' | 'invalid' | 'dns-error' | 'fetch-failed' | 'mode-none';
      readonly detail: string;
      /** The policy in mode `none`, when that is why. */
      readonly policy?: StsCacheEntry;
      /** Why the fetch failed (RFC 8460 result type). */
      readonly failure?: StsFailure;
      readonly txt?: string;
    }
  /** Only from rpc.ts: the service could not be asked. The caller defers (fail closed). */
  | { readonly kind: 'error'; readonly detail: string };

/** Anything that answers lookups: the service itself, or rpc.ts's client in a worker. */
export interface StsPolicySource {
  lookup(domain: string): Promise<StsLookup>;
}

/** The MTA-STS part of outcome.ts AppliedPolicy (the rest is the combiner's). */
export function appliedStsFields(p: StsCacheEntry): Pick<AppliedPolicy, 'type' | 'domain' | 'strings' | 'mxHostPatterns' | 'stsId'> & { stsMode: 'enforce' | 'testing' } {
  return { type: 'sts', domain: p.domain, strings: p.lines, mxHostPatterns: p.mx, stsMode: p.mode === 'enforce' ? 'enforce' : 'testing', stsId: p.id };
}

export interface StsServiceOptions {
  /** `forget`, when the resolver keeps answers (dns/answer-cache.ts cachingTxt): drop one name's answer. */
  readonly resolver: Pick<PolicyResolver, 'txt'> & { readonly forget?: (name: string) => void };
  readonly getter: HttpsGetter;
  readonly store: StsCacheStore;
  readonly now?: () => number;
  /** sealpost_mta_sts_fetch_timeout, ms. */
  readonly fetchTimeoutMs?: number;
  /** sealpost_mta_sts_max_policy_size, bytes. */
  readonly maxBytes?: number;
  /** Upper bound of the proactive refresh window (default one day). */
  readonly refreshMarginMs?: number;
  /** How long a failed fetch is not repeated for the same id (default 5 minutes). */
  readonly retryAfterMs?: number;
  /** Warnings for the mail log (without `warning: `). */
  readonly warn?: (text: string) => void;
  /** Informational lines (a policy fetched). */
  readonly info?: (text: string) => void;
  /** Metrics: cache lookups, fetches and the cache size (reports/observe-hooks.ts). */
  readonly hooks?: MtaStsHooks;
}

type FetchOutcome = { readonly ok: true; readonly entry: StsCacheEntry } | { readonly ok: false; readonly failure: StsFailure };

const DAY_MS = 86_400_000;

export class StsService implements StsPolicySource {
  /** Policies read from or written to the store (domains without one are not remembered: the Map stays bounded by the domains that publish). */
  private readonly memory = new Map<string, StsCacheEntry>();
  private readonly lookups = new Map<string, Promise<StsLookup>>();
  private readonly fetches = new Map<string, Promise<FetchOutcome>>();
  /** The last failed fetch per domain: its id, its failure, and until when it is not repeated. */
  private readonly failed = new Map<string, { readonly id: string; readonly failure: StsFailure; readonly until: number }>();
  private readonly now: () => number;
  /** Number of HTTPS fetches started (tests, metrics). */
  fetchCount = 0;

  constructor(private readonly opts: StsServiceOptions) {
    this.now = opts.now ?? Date.now;
  }

  lookup(domain: string): Promise<StsLookup> {
    let key: string;
    try {
      key = cacheKey(domain);
    } catch {
      return Promise.resolve({ kind: 'none', why: 'not-a-domain', detail: `"${domain}" is not a policy domain` });
    }
    const running = this.lookups.get(key);
    if (running) return running;
    const p = this.resolve(key).finally(() => this.lookups.delete(key));
    this.lookups.set(key, p);
    return p;
  }

  /** Fetch now, whatever the cache says (the tool's "fetch now"); a failure keeps the cached policy. */
  async refresh(domain: string): Promise<StsLookup> {
    const key = cacheKey(domain);
    // "Now" means the TXT record as DNS has it now, not a kept answer.
    this.opts.resolver.forget?.(stsTxtName(key));
    const d = await discoverSts(this.opts.resolver, key);
    if (d.kind !== 'record') return this.withoutRecord(key, this.cached(key), d);
    return this.fetchAndAnswer(key, d.id, d.text, this.cached(key), true);
  }

  forget(domain: string): void {
    const key = cacheKey(domain);
    this.opts.resolver.forget?.(stsTxtName(key));
    this.memory.delete(key);
    this.failed.delete(key);
    this.opts.store.remove(key);
  }

  list(): StsCacheEntry[] {
    return this.opts.store.list().filter((e) => this.live(e));
  }

  show(domain: string): StsCacheEntry | undefined {
    return this.cached(cacheKey(domain));
  }

  /** Wait for background refreshes (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.fetches.size > 0 || this.lookups.size > 0) await Promise.allSettled([...this.fetches.values(), ...this.lookups.values()]);
  }

  private live(e: StsCacheEntry): boolean {
    return this.now() < e.expiresAt;
  }

  /** The unexpired cached policy; an expired one is dropped (RFC 8461 §5.1: no longer applies). */
  private cached(key: string): StsCacheEntry | undefined {
    let e = this.memory.get(key);
    if (e === undefined) {
      e = this.opts.store.read(key);
      if (e === undefined) return undefined;
      this.memory.set(key, e);
    }
    if (!this.live(e)) {
      this.opts.info?.(`MTA-STS policy of ${key} (id ${e.id}) expired; dropped from the cache`);
      this.memory.delete(key);
      this.opts.store.remove(key);
      this.cacheSize();
      return undefined;
    }
    return e;
  }

  /** Metrics: the number of cached policies after a change (a directory read; changes are rare). */
  private cacheSize(): void {
    if (!this.opts.hooks) return;
    try {
      this.opts.hooks.cachedPolicies(this.opts.store.list().length);
    } catch {
      // A cache directory that cannot be listed only leaves the gauge as it was.
    }
  }

  private async resolve(key: string): Promise<StsLookup> {
    const cached = this.cached(key);
    const d = await discoverSts(this.opts.resolver, key);
    if (d.kind !== 'record') {
      this.opts.hooks?.cacheLookup(cached ? 'hit' : 'miss');
      return this.withoutRecord(key, cached, d);
    }
    if (cached && cached.id === d.id) {
      const stale = this.stale(cached);
      this.opts.hooks?.cacheLookup(stale ? 'stale' : 'hit');
      if (stale) void this.fetch(key, d.id);
      return answer(cached, 'cache', d.text);
    }
    // A cached policy whose id changed is fetched again: `refreshed`; none at all: `miss`.
    this.opts.hooks?.cacheLookup(cached ? 'refreshed' : 'miss');
    return this.fetchAndAnswer(key, d.id, d.text, cached);
  }

  private stale(e: StsCacheEntry): boolean {
    const margin = Math.min((e.maxAge * 1000) / 2, this.opts.refreshMarginMs ?? DAY_MS);
    return this.now() >= e.expiresAt - margin;
  }

  private withoutRecord(key: string, cached: StsCacheEntry | undefined, d: Exclude<StsDiscovery, { kind: 'record' }>): StsLookup {
    // RFC 8461 §3.1/§5.1: without a usable TXT record a cached, unexpired policy still applies.
    if (cached) return answer(cached, 'cache');
    if (d.kind === 'tempfail') return { kind: 'none', why: 'dns-error', detail: `MTA-STS discovery for ${key} failed: ${d.detail}` };
    if (d.why === 'multiple' || d.why === 'invalid') this.opts.warn?.(`MTA-STS: ${d.detail}; no policy for ${key}`);
    return { kind: 'none', why: d.why, detail: d.detail };
  }

  private async fetchAndAnswer(key: string, id: string, txt: string, cached: StsCacheEntry | undefined, force = false): Promise<StsLookup> {
    const recent = this.failed.get(key);
    if (!force && recent && recent.id === id && this.now() < recent.until) {
      // RFC 8461 §3.3: fetches may be rate-limited; the failure's answer stands until then.
      if (cached) {
        const a = answer(cached, 'cache', txt);
        return a.kind === 'policy' ? { ...a, refreshFailure: recent.failure } : a;
      }
      return { kind: 'none', why: 'fetch-failed', detail: recent.failure.detail, failure: recent.failure, txt };
    }
    const f = await this.fetch(key, id);
    if (f.ok) {
      this.failed.delete(key);
      return answer(f.entry, 'fetch', txt);
    }
    this.failed.set(key, { id, failure: f.failure, until: this.now() + (this.opts.retryAfterMs ?? 300_000) });
    if (cached) {
      this.opts.warn?.(`MTA-STS policy of ${key}: ${f.failure.detail} (${f.failure.type}); keeping the cached policy id ${cached.id}`);
      const a = answer(cached, 'cache', txt);
      return a.kind === 'policy' ? { ...a, refreshFailure: f.failure } : a.kind === 'none' ? { ...a, failure: f.failure } : a;
    }
    this.opts.warn?.(`MTA-STS policy of ${key}: ${f.failure.detail} (${f.failure.type}); delivering without MTA-STS`);
    return { kind: 'none', why: 'fetch-failed', detail: f.failure.detail, failure: f.failure, txt };
  }

  /** One fetch per domain at a time: a second caller shares the first one's. */
  private fetch(key: string, id: string): Promise<FetchOutcome> {
    const running = this.fetches.get(key);
    if (running) return running;
    const p = this.doFetch(key, id).finally(() => this.fetches.delete(key));
    this.fetches.set(key, p);
    return p;
  }

  private async doFetch(key: string, id: string): Promise<FetchOutcome> {
    this.fetchCount++;
    const started = performance.now();
    const r = await fetchStsPolicy(key, this.opts.getter, {
      timeoutMs: this.opts.fetchTimeoutMs ?? 30_000,
      maxBytes: this.opts.maxBytes ?? DEFAULT_STS_MAX_BYTES,
    });
    this.opts.hooks?.policyFetch(r.ok ? 'ok' : r.failure.type === 'sts-policy-invalid' ? 'invalid' : 'fetch-error', (performance.now() - started) / 1000);
    if (!r.ok) return r;
    const fetchedAt = this.now();
    const entry: StsCacheEntry = Object.freeze({
      domain: key, id, fetchedAt, expiresAt: fetchedAt + r.policy.maxAge * 1000,
      mode: r.policy.mode, mx: r.policy.mx, maxAge: r.policy.maxAge, lines: r.policy.lines,
    });
    try {
      this.opts.store.write(entry);
    } catch (err) {
      this.opts.warn?.(`MTA-STS cache: cannot save the policy of ${key}: ${(err as Error).message}`);
    }
    this.memory.set(key, entry);
    this.cacheSize();
    this.opts.info?.(`MTA-STS policy of ${key} fetched: id ${id}, mode ${entry.mode}, max_age ${entry.maxAge}`);
    return { ok: true, entry };
  }
}

function answer(e: StsCacheEntry, from: 'cache' | 'fetch', txt?: string): StsLookup {
  const t = txt !== undefined ? { txt } : {};
  if (e.mode === 'none') return { kind: 'none', why: 'mode-none', detail: `MTA-STS policy of ${e.domain} has mode none`, policy: e, ...t };
  return { kind: 'policy', policy: e, from, ...t };
}

// ------------------------------------------------------------ from main.cf

/** sealpost_mta_sts (default yes). */
export function stsEnabled(config: Config): boolean {
  return config.getBool('sealpost_mta_sts');
}

/** The cache directory: $data_directory/mta-sts. */
export function stsCacheDir(config: Config): string {
  return `${config.get('data_directory').replace(/\/+$/, '')}/mta-sts`;
}

/**
 * The daemon's service from main.cf: the file cache in data_directory (or
 * `store`: `sealpost tls explain` reads it without writing), the HTTPS
 * getter with the `secure` roots, resolving through `resolver`.
 * Throws a one-line Error when the CA file or path cannot be read.
 */
export function createStsService(
  config: Config, resolver: FullResolver & { readonly forget?: (name: string) => void }, log: { warn: (t: string) => void; info?: (t: string) => void }, now?: () => number, store?: StsCacheStore,
  hooks?: MtaStsHooks,
): StsService {
  const protocols = config.getList('inet_protocols').map((p) => p.toLowerCase());
  const families = familiesFor(protocols.length === 1 && (protocols[0] === 'ipv4' || protocols[0] === 'ipv6') ? protocols[0] : 'all');
  const getter = createHttpsGetter({ roots: stsTrustRoots(config), addresses: (host) => resolver.addresses(host, families) });
  return new StsService({
    resolver, getter, store: store ?? new StsCache(stsCacheDir(config), log.warn),
    fetchTimeoutMs: config.getTime('sealpost_mta_sts_fetch_timeout') * 1000,
    maxBytes: config.getSize('sealpost_mta_sts_max_policy_size'),
    warn: log.warn,
    ...(log.info ? { info: log.info } : {}),
    ...(now ? { now } : {}),
    ...(hooks ? { hooks } : {}),
  });
}
