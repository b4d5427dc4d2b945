/**
 * answer-cache.ts — the policy sources' DNS answers kept in the process for
 * as long as Postfix keeps a TLSA answer in each smtp(8) process (tls_dane.c
 * `dane_cache`, a ctable keyed by the query name):
 * - an answer with records (authenticated or not): until 1 s + its TTL,
 *   the TTL clamped to [1 s, 100 s] (TLS_DANE_CACHE_TTL_MIN/MAX: "A lot can
 *   happen in ~2 seconds", "Comparable to max_idle");
 * - NXDOMAIN/NODATA: 1 s + 1 s;
 * - a lookup error (SERVFAIL, timeout): not kept — the next question asks again.
 * At most `limit` names per cache (default 1,000); the oldest entry goes first.
 *
 * Two uses:
 * - `cachingTlsa(resolver, now)`: each TLS engine (one per delivery agent)
 *   keeps its TLSA answers, as Postfix's smtp(8) does; `txt()` and `cname()`
 *   pass through.
 * - `cachingTxt(resolver, now)`: the daemon's MTA-STS service keeps the
 *   `_mta-sts` TXT answers (RFC 8461 §5.1 asks the record before using a
 *   cached policy; a resolver's cache would answer the same within the TTL),
 *   so a busy MTA-STS destination costs one DNS question per TTL, not one per
 *   delivery. A new policy `id` is seen when the answer expires (at most
 *   101 s). The other lookups pass through.
 * Concurrent questions for one name share one lookup. Answers are the
 * resolver's LookupResult values, unchanged.
 *
 * Not here: what the records mean (tlsa.ts, tls/dane.ts, mta-sts/discover.ts);
 * MX and address lookups (never cached here, nor in Postfix).
 */
import type { FullResolver, LookupResult, PolicyResolver, TlsaRdata } from './resolver.ts';

/** tls_dane.h TLS_DANE_CACHE_TTL_MIN / TLS_DANE_CACHE_TTL_MAX, seconds. */
export const ANSWER_TTL_MIN = 1;
export const ANSWER_TTL_MAX = 100;

/** When an answer stops being used (ms since the epoch), or undefined when it is not kept. */
export function answerExpiry(answer: LookupResult<unknown>, nowMs: number): number | undefined {
  if (answer.status === 'tempfail') return undefined;
  // "One more second to account for discrete time" (tls_dane.c dane_lookup()).
  const ttl = answer.status === 'found' ? Math.min(Math.max(answer.ttl ?? ANSWER_TTL_MIN, ANSWER_TTL_MIN), ANSWER_TTL_MAX) : ANSWER_TTL_MIN;
  return nowMs + (1 + ttl) * 1000;
}

interface Entry<T> {
  readonly expires: number;
  readonly answer: Promise<LookupResult<T>>;
}

/** One record type's answers by query name. */
class AnswerCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(private readonly now: () => number, private readonly limit: number) {}

  get(name: string, ask: (name: string) => Promise<LookupResult<T>>): Promise<LookupResult<T>> {
    const key = name.toLowerCase().replace(/\.$/, '');
    const hit = this.entries.get(key);
    if (hit && hit.expires > this.now()) return hit.answer;
    if (hit) this.entries.delete(key);
    const answer = ask(name);
    // While the question is out, others for the same name wait for it.
    this.entries.set(key, { expires: Number.POSITIVE_INFINITY, answer });
    if (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value!);
    const settle = (until: number | undefined): void => {
      if (this.entries.get(key)?.answer !== answer) return;
      if (until === undefined) this.entries.delete(key);
      else this.entries.set(key, { expires: until, answer });
    };
    answer.then((a) => settle(answerExpiry(a, this.now())), () => settle(undefined));
    return answer;
  }

  forget(name: string): void {
    this.entries.delete(name.toLowerCase().replace(/\.$/, ''));
  }
}

export function cachingTlsa(resolver: PolicyResolver, now: () => number = Date.now, limit = 1000): PolicyResolver {
  const cache = new AnswerCache<TlsaRdata>(now, limit);
  return {
    txt: (name) => resolver.txt(name),
    cname: (name) => resolver.cname(name),
    tlsa: (name) => cache.get(name, (n) => resolver.tlsa(n)),
  };
}

/** `forget(name)` drops one name's kept answer (`sealpost tls sts fetch` and `forget` ask DNS anew). */
export function cachingTxt(resolver: FullResolver, now: () => number = Date.now, limit = 1000): FullResolver & { forget(name: string): void } {
  const cache = new AnswerCache<string>(now, limit);
  return {
    forget: (name) => cache.forget(name),
    mx: (domain) => resolver.mx(domain),
    addresses: (host, families) => resolver.addresses(host, families),
    txt: (name) => cache.get(name, (n) => resolver.txt(n)),
    tlsa: (name) => resolver.tlsa(name),
    cname: (name) => resolver.cname(name),
  };
}
