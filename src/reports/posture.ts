/**
 * posture.ts — the TLS posture store behind `sealpost tls report` and the
 * status page: per destination domain and hour, how recipient outcomes went
 * out (verified TLS by policy source, trusted/untrusted/anonymous TLS,
 * plaintext) or why they did not (deferred or bounced for TLS reasons or
 * others), with the top reasons.
 *
 * Store layout (docs/observability.md):
 *
 *     data_directory/tls-posture/YYYY-MM-DD.jsonl    one file per UTC day
 *
 * each line a delta `{"h":"YYYY-MM-DDTHH","d":"domain","c":{counts},"r":{reason:n}}`.
 * The subscriber only counts in memory; `flush()` (every `flushMs`, default
 * 60 s, and at stop) appends one line per domain that changed. Days before
 * yesterday are compacted (one line per hour and domain, written to a
 * temporary file and renamed) and days older than the retention are deleted,
 * at open and whenever the day changes. A crash loses at most the last flush
 * interval; nothing is ever read back from log text.
 *
 * Contract:
 * - The unit is the recipient outcome (what a `status=` log line counts):
 *   every sent, deferred or bounced outcome; `recipients` counts the final
 *   ones (sent + bounced) and `messages` distinct queue IDs with a final
 *   outcome per hour and domain.
 * - Classification (`classify`) reads only typed fields: the outcome's status
 *   and its session's TLS facts, policy source and result. A deferral or
 *   bounce is "for a TLS reason" when its session's result is an enforced
 *   failure (delivery/outcome.ts).
 * - The domain is the recipient's domain, lower case; reasons are capped at
 *   `REASON_LIMIT` per hour and domain (further reasons count as `other reasons`).
 *
 * Not here: rendering (posture-render.ts), the command (cli/tls-report.ts).
 */
import { appendFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PolicySourceName } from '../delivery/outcome.ts';
import type { DeliveryEvent, RecipientOutcomeEvent, Subscriber } from './events.ts';

export const POSTURE_DIR = 'tls-posture';
const REASON_LIMIT = 10;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The stacked categories, in picture order. */
export const CATEGORIES = [
  'verified-table',
  'verified-dane',
  'verified-mta-sts',
  'verified-default',
  'verified-other',
  'trusted',
  'untrusted',
  'anonymous',
  'plaintext',
  'deferred-tls',
  'bounced-tls',
  'deferred-other',
  'bounced-other',
] as const;
export type Category = (typeof CATEGORIES)[number];

export interface PostureCounts {
  messages: number;
  recipients: number;
  outcomes: number;
  readonly byCategory: Record<Category, number>;
  readonly reasons: Record<string, number>;
}

export function emptyCounts(): PostureCounts {
  return { messages: 0, recipients: 0, outcomes: 0, byCategory: Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>, reasons: {} };
}

function verifiedBy(source: PolicySourceName): Category {
  if (source === 'table' || source === 'per-site') return 'verified-table';
  if (source === 'dane') return 'verified-dane';
  if (source === 'mta-sts') return 'verified-mta-sts';
  if (source === 'default') return 'verified-default';
  return 'verified-other';
}

/** Which category one outcome falls in (see the header). */
export function classify(e: Pick<RecipientOutcomeEvent, 'status' | 'session'>): Category {
  const s = e.session;
  if (e.status !== 'sent') {
    const tls = s?.result.kind === 'failure' && s.result.enforced;
    return `${e.status}-${tls ? 'tls' : 'other'}` as Category;
  }
  if (!s?.tls) return 'plaintext';
  switch (s.tls.trust) {
    case 'Verified':
      return verifiedBy(s.policy.source);
    case 'Trusted':
      return 'trusted';
    case 'Untrusted':
      return 'untrusted';
    default:
      return 'anonymous';
  }
}

/** Add `b` into `a`. */
export function addCounts(a: PostureCounts, b: PostureCounts): void {
  a.messages += b.messages;
  a.recipients += b.recipients;
  a.outcomes += b.outcomes;
  for (const c of CATEGORIES) a.byCategory[c] += b.byCategory[c] ?? 0;
  for (const [r, n] of Object.entries(b.reasons)) a.reasons[r] = (a.reasons[r] ?? 0) + n;
}

function addReason(c: PostureCounts, reason: string, n = 1): void {
  const key = reason in c.reasons || Object.keys(c.reasons).length < REASON_LIMIT ? reason : 'other reasons';
  c.reasons[key] = (c.reasons[key] ?? 0) + n;
}

/** The domain of an address, lower case, without a trailing dot; `` for a local address. */
export function recipientDomain(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase().replace(/\.$/, '');
}

/** The last hour asked and its key: every outcome of an hour asks for the same key. */
let lastHour = Number.NaN;
let lastHourKey = '';

export function hourKey(ms: number): string {
  const h = Math.floor(ms / HOUR);
  if (h !== lastHour) {
    lastHourKey = new Date(h * HOUR).toISOString().slice(0, 13);
    lastHour = h;
  }
  return lastHourKey;
}

function hourStart(key: string): number {
  return Date.parse(`${key}:00:00Z`);
}

function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

interface Line {
  readonly h: string;
  readonly d: string;
  readonly c: Partial<Record<Category | 'messages' | 'recipients' | 'outcomes', number>>;
  readonly r?: Record<string, number>;
}

function toLine(h: string, d: string, c: PostureCounts): Line {
  const counts: Line['c'] = { messages: c.messages, recipients: c.recipients, outcomes: c.outcomes };
  for (const k of CATEGORIES) if (c.byCategory[k]) (counts as Record<string, number>)[k] = c.byCategory[k];
  return Object.keys(c.reasons).length > 0 ? { h, d, c: counts, r: c.reasons } : { h, d, c: counts };
}

function fromLine(l: Line): PostureCounts {
  const c = emptyCounts();
  c.messages = l.c.messages ?? 0;
  c.recipients = l.c.recipients ?? 0;
  c.outcomes = l.c.outcomes ?? 0;
  for (const k of CATEGORIES) c.byCategory[k] = l.c[k] ?? 0;
  for (const [r, n] of Object.entries(l.r ?? {})) addReason(c, r, n);
  return c;
}

/** Parse one day file; a torn last line (a crash mid-append) is skipped. */
export function parseDayFile(text: string): Line[] {
  const out: Line[] = [];
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    try {
      const l = JSON.parse(raw) as Line;
      if (typeof l.h === 'string' && typeof l.d === 'string' && typeof l.c === 'object') out.push(l);
    } catch {
      /* torn line */
    }
  }
  return out;
}

/** Sum lines per (hour, domain): the compacted form of a day. */
export function compactLines(lines: readonly Line[]): Line[] {
  const sums = new Map<string, { h: string; d: string; c: PostureCounts }>();
  for (const l of lines) {
    const k = `${l.h}\u0000${l.d}`;
    let s = sums.get(k);
    if (!s) sums.set(k, (s = { h: l.h, d: l.d, c: emptyCounts() }));
    addCounts(s.c, fromLine(l));
  }
  return [...sums.values()].sort((a, b) => (a.h === b.h ? (a.d < b.d ? -1 : 1) : a.h < b.h ? -1 : 1)).map((s) => toLine(s.h, s.d, s.c));
}

export interface PostureWindow {
  readonly from: number;
  readonly to: number;
}

/** Per-domain sums over whole hours starting in [from, to), read from the store files. */
export async function readPosture(dataDir: string, w: PostureWindow): Promise<Map<string, PostureCounts>> {
  const dir = join(dataDir, POSTURE_DIR);
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => /^\d{4}-\d{2}-\d{2}\.jsonl$/.test(f));
  } catch {
    return new Map();
  }
  const out = new Map<string, PostureCounts>();
  const firstDay = dayOf(Math.floor(w.from / HOUR) * HOUR);
  const lastDay = dayOf(Math.max(w.from, w.to - 1));
  for (const f of files.sort()) {
    const day = f.slice(0, 10);
    if (day < firstDay || day > lastDay) continue;
    const text = await readFile(join(dir, f), 'utf8').catch(() => '');
    for (const l of parseDayFile(text)) {
      const start = hourStart(l.h);
      if (start + HOUR <= w.from || start >= w.to) continue;
      let c = out.get(l.d);
      if (!c) out.set(l.d, (c = emptyCounts()));
      addCounts(c, fromLine(l));
    }
  }
  return out;
}

export interface PostureStoreOptions {
  readonly dataDir: string;
  /** Days older than this (ms) are deleted. */
  readonly retentionMs: number;
  readonly flushMs?: number;
  readonly now?: () => number;
  readonly onError?: (message: string) => void;
}

interface Bucket {
  readonly counts: PostureCounts;
  /** Queue IDs with a final outcome in this hour and domain (for `messages`). */
  readonly seen: Set<string>;
}

export class PostureStore {
  private readonly dir: string;
  /** Unflushed deltas, by hour then domain. */
  private pending = new Map<string, Map<string, PostureCounts>>();
  /** Distinct-message sets of the recent hours. */
  private readonly seen = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private lastDay = '';
  private readonly now: () => number;

  constructor(private readonly opts: PostureStoreOptions) {
    this.dir = join(opts.dataDir, POSTURE_DIR);
    this.now = opts.now ?? Date.now;
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.maintain();
    this.timer = setInterval(() => void this.flush(), this.opts.flushMs ?? 60_000);
    this.timer.unref();
  }

  readonly subscriber: Subscriber = (e: DeliveryEvent) => {
    if (e.kind !== 'outcome') return;
    this.count(hourKey(e.time), recipientDomain(e.recipient), e);
  };

  private bucket(h: string, domain: string): Bucket {
    let byDomain = this.pending.get(h);
    if (!byDomain) this.pending.set(h, (byDomain = new Map()));
    let counts = byDomain.get(domain);
    if (!counts) byDomain.set(domain, (counts = emptyCounts()));
    const sk = `${h}\u0000${domain}`;
    let seen = this.seen.get(sk);
    if (!seen) this.seen.set(sk, (seen = new Set()));
    return { counts, seen };
  }

  private count(h: string, domain: string, e: RecipientOutcomeEvent): void {
    const { counts, seen } = this.bucket(h, domain);
    const cat = classify(e);
    counts.outcomes++;
    counts.byCategory[cat]++;
    if (e.status !== 'deferred') {
      counts.recipients++;
      if (!seen.has(e.queueId)) {
        seen.add(e.queueId);
        counts.messages++;
      }
    }
    if (e.status !== 'sent') addReason(counts, e.reason);
  }

  /** Append the pending deltas (serialised: one write at a time). */
  flush(): Promise<void> {
    const pending = this.pending;
    this.pending = new Map();
    this.writing = this.writing.then(() => this.write(pending)).catch((err: unknown) => this.opts.onError?.(`tls posture store: ${(err as Error).message}`));
    return this.writing;
  }

  private async write(pending: Map<string, Map<string, PostureCounts>>): Promise<void> {
    const byDay = new Map<string, string[]>();
    for (const [h, domains] of pending) {
      const day = h.slice(0, 10);
      const lines = byDay.get(day) ?? [];
      for (const [d, c] of domains) lines.push(JSON.stringify(toLine(h, d, c)));
      byDay.set(day, lines);
    }
    for (const [day, lines] of byDay) await appendFile(join(this.dir, `${day}.jsonl`), lines.join('\n') + '\n', { mode: 0o600 });
    // Forget distinct-message sets of hours that can no longer receive outcomes in order.
    const keep = hourKey(this.now() - HOUR);
    for (const k of this.seen.keys()) if (k.slice(0, 13) < keep) this.seen.delete(k);
    if (dayOf(this.now()) !== this.lastDay) await this.maintain();
  }

  /** Compact closed days and delete those past the retention. */
  private async maintain(): Promise<void> {
    const now = this.now();
    this.lastDay = dayOf(now);
    const yesterday = dayOf(now - DAY);
    const oldest = dayOf(now - this.opts.retentionMs);
    for (const f of (await readdir(this.dir)).filter((n) => /^\d{4}-\d{2}-\d{2}\.jsonl$/.test(n))) {
      const day = f.slice(0, 10);
      const path = join(this.dir, f);
      if (day < oldest) await rm(path, { force: true });
      else if (day < yesterday) await compactFile(path);
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}

async function compactFile(path: string): Promise<void> {
  const text = await readFile(path, 'utf8');
  const lines = parseDayFile(text);
  const compact = compactLines(lines);
  if (compact.length === lines.length && text.endsWith('\n')) return;
  const tmp = `${path}.tmp`;
  await writeFile(tmp, compact.map((l) => JSON.stringify(l)).join('\n') + '\n', { mode: 0o600 });
  await rename(tmp, path);
}
