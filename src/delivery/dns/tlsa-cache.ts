/**
 * tlsa-cache.ts — the TLSA answers of one TLS engine (one delivery agent),
 * kept as Postfix's tls_dane.c keeps them in each smtp(8) process
 * (`dane_cache`, a ctable keyed by the TLSA query name):
 * - an answer with records (authenticated or not): until 1 s + its TTL,
 *   the TTL clamped to [1 s, 100 s] (TLS_DANE_CACHE_TTL_MIN/MAX: "A lot can
 *   happen in ~2 seconds", "Comparable to max_idle");
 * - NXDOMAIN/NODATA: 1 s + 1 s;
 * - a lookup error (SERVFAIL, timeout): not kept — the next delivery asks again.
 * At most `limit` names are kept (default 1,000; Postfix's per-process cache
 * is smaller, its processes shorter-lived); the oldest entry goes first.
 *
 * Contract: `cachingTlsa(resolver, now)` returns a PolicyResolver whose `tlsa()`
 * answers from the cache while an entry is fresh and asks `resolver` otherwise
 * (concurrent questions for one name share one lookup); `txt()` and `cname()`
 * pass through. Answers are the resolver's LookupResult values, unchanged.
 *
 * Not here: what the records mean (tlsa.ts, tls/dane.ts), MX and address
 * lookups (not cached, as in Postfix).
 */
import type { LookupResult, PolicyResolver, TlsaRdata } from './resolver.ts';

/** tls_dane.h TLS_DANE_CACHE_TTL_MIN / TLS_DANE_CACHE_TTL_MAX, seconds. */
export const TLSA_CACHE_TTL_MIN = 1;
export const TLSA_CACHE_TTL_MAX = 100;

interface Entry {
  readonly expires: number;
  readonly answer: Promise<LookupResult<TlsaRdata>>;
}

/** When an answer stops being used (ms since the epoch), or undefined when it is not kept. */
export function tlsaExpiry(answer: LookupResult<TlsaRdata>, nowMs: number): number | undefined {
  if (answer.status === 'tempfail') return undefined;
  // "One more second to account for discrete time" (tls_dane.c dane_lookup()).
  const ttl = answer.status === 'found' ? Math.min(Math.max(answer.ttl ?? TLSA_CACHE_TTL_MIN, TLSA_CACHE_TTL_MIN), TLSA_CACHE_TTL_MAX) : TLSA_CACHE_TTL_MIN;
  return nowMs + (1 + ttl) * 1000;
}

export function cachingTlsa(resolver: PolicyResolver, now: () => number = Date.now, limit = 1000): PolicyResolver {
  const entries = new Map<string, Entry>();
  return {
    txt: (name) => resolver.txt(name),
    cname: (name) => resolver.cname(name),
    tlsa(name: string): Promise<LookupResult<TlsaRdata>> {
      const key = name.toLowerCase().replace(/\.$/, '');
      const hit = entries.get(key);
      if (hit && hit.expires > now()) return hit.answer;
      if (hit) entries.delete(key);
      const answer = resolver.tlsa(name);
      // While the question is out, others for the same name wait for it (an error then drops it).
      entries.set(key, { expires: Number.POSITIVE_INFINITY, answer });
      if (entries.size > limit) entries.delete(entries.keys().next().value!);
      void answer.then(
        (a) => {
          const until = tlsaExpiry(a, now());
          if (entries.get(key)?.answer !== answer) return;
          if (until === undefined) entries.delete(key);
          else entries.set(key, { expires: until, answer });
        },
        () => {
          if (entries.get(key)?.answer === answer) entries.delete(key);
        },
      );
      return answer;
    },
  };
}
