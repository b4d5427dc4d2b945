/**
 * control.ts — the MTA-STS cache commands (`sealpost tls sts list | show D |
 * fetch D | forget D`) as requests and answers, and the files that carry them
 * to the daemon.
 *
 * Why files: the running daemon keeps the policies it has read in memory
 * (service.ts), so a tool that edited the cache files behind its back would
 * not be seen, and a tool running as root would leave files mail_owner cannot
 * read. So while the daemon runs, the tool asks it: it writes
 * `$data_directory/mta-sts/requests/NAME.req` (JSON, written to `NAME.tmp`
 * and renamed) and waits for `NAME.done`; the daemon (daemon.ts) answers
 * from its own service and removes the request. Without a daemon the tool
 * answers itself from the files (the same `answerRequest()`).
 *
 * Contract:
 * - `parseRequest(text)` is pure: a request or an error line; domains are
 *   checked as cache keys (cache.ts cacheKey: LDH names only).
 * - `answerRequest(service, req)` never rejects: `{ok: true, ...}` or
 *   `{ok: false, error}` (one line). `fetch` fetches now whatever the cache
 *   says (a failure keeps the cached policy, RFC 8461 §5.1); `forget` drops
 *   the domain from memory and disk (the next delivery looks it up anew);
 *   `show` gives the cached policy without any network lookup.
 * - Answers are plain JSON.
 *
 * Not here: the CLI's output (cli/tls-sts.ts), serving the directory
 * (daemon.ts).
 */
import { cacheKey, type StsCacheEntry } from './cache.ts';
import type { StsLookup, StsService } from './service.ts';

export type StsRequest =
  | { readonly op: 'list' }
  | { readonly op: 'show' | 'fetch' | 'forget'; readonly domain: string };

export type StsAnswer =
  | { readonly ok: true; readonly op: 'list'; readonly entries: readonly StsCacheEntry[] }
  | { readonly ok: true; readonly op: 'show'; readonly domain: string; readonly entry?: StsCacheEntry }
  | { readonly ok: true; readonly op: 'fetch'; readonly domain: string; readonly lookup: StsLookup }
  | { readonly ok: true; readonly op: 'forget'; readonly domain: string; readonly had: boolean }
  | { readonly ok: false; readonly error: string };

/** `$data_directory/mta-sts/requests`. */
export function requestDir(cacheDir: string): string {
  return `${cacheDir.replace(/\/+$/, '')}/requests`;
}

/** Parse one request file. */
export function parseRequest(text: string): StsRequest | { readonly error: string } {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return { error: 'request is not JSON' };
  }
  const r = o as { op?: unknown; domain?: unknown };
  if (r.op === 'list') return { op: 'list' };
  if (r.op !== 'show' && r.op !== 'fetch' && r.op !== 'forget') return { error: `unknown request "${String(r.op).slice(0, 20)}"` };
  if (typeof r.domain !== 'string') return { error: `${r.op}: no domain` };
  try {
    return { op: r.op, domain: cacheKey(r.domain) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Answer one request from `service` (see the header). */
export async function answerRequest(service: StsService, req: StsRequest): Promise<StsAnswer> {
  try {
    switch (req.op) {
      case 'list':
        return { ok: true, op: 'list', entries: service.list() };
      case 'show': {
        const entry = service.show(req.domain);
        return { ok: true, op: 'show', domain: req.domain, ...(entry ? { entry } : {}) };
      }
      case 'fetch':
        return { ok: true, op: 'fetch', domain: req.domain, lookup: await service.refresh(req.domain) };
      case 'forget': {
        const had = service.show(req.domain) !== undefined;
        service.forget(req.domain);
        return { ok: true, op: 'forget', domain: req.domain, had };
      }
    }
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}
