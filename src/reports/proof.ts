/**
 * proof.ts — the per-message TLS evidence store behind `sealpost tls proof`:
 * for every recipient outcome, when and where it went, the policy that
 * applied and its source, and the TLS session's facts (protocol, cipher,
 * trust, the peer certificate's SHA-256 fingerprint and the name or TLSA
 * record it matched), kept for `retentionMs` and found by queue ID or
 * Message-ID.
 *
 * Store layout (data_directory/tls-proof/, docs/observability.md):
 *
 *     YYYY-MM-DD.jsonl   the open day: one JSON line per outcome, appended
 *     YYYY-MM-DD.proof   a closed day, compacted: one JSON line per message
 *                        (its outcomes, each session stored once)
 *     YYYY-MM-DD.idx     its index: fixed 28-byte records sorted by key hash —
 *                        16 bytes SHA-256("q:" + queue ID | "m:" + Message-ID),
 *                        8 bytes offset, 4 bytes length (big endian) — so a
 *                        lookup is a binary search, never a scan of a closed day
 *
 * Contract:
 * - The subscriber copies what it needs from `outcome` events (the session
 *   without its log lines) into memory; `flush()` (every `flushMs`, default
 *   2 s, and at stop) appends them. A crash loses at most that interval.
 * - A day is compacted once it is before yesterday (UTC): `.proof` and `.idx`
 *   are written to temporary names and renamed, then the `.jsonl` is removed;
 *   a crash in between leaves both, and the lookup prefers the compacted pair.
 *   Days older than the retention are deleted.
 * - `findProof()` returns every message that matches (queue IDs are reused
 *   over long periods), oldest first, with its outcomes in time order.
 *
 * Not here: the text and JSON forms (cli/tls-proof.ts), the policy decision.
 */
import { createHash } from 'node:crypto';
import { appendFile, mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TlsSessionRecord } from '../delivery/outcome.ts';
import type { DeliveryEvent, RecipientOutcomeEvent, Subscriber } from './events.ts';

export const PROOF_DIR = 'tls-proof';
const DAY = 86_400_000;
const REC = 28;

/** The session as stored: the record without its log lines. */
export type StoredSession = Omit<TlsSessionRecord, 'logLines'>;

export interface ProofOutcome {
  readonly time: number;
  readonly recipient: string;
  readonly origRecipient: string;
  readonly status: 'sent' | 'deferred' | 'bounced';
  readonly dsn: string;
  readonly reason: string;
  readonly relay: string;
  readonly transport: string;
  readonly nexthop: string;
  readonly session?: StoredSession;
}

export interface ProofMessage {
  readonly queueId: string;
  readonly messageId?: string;
  readonly arrivalTime: number;
  readonly outcomes: ProofOutcome[];
}

/** One appended line. */
interface OutcomeLine {
  readonly q: string;
  readonly m?: string;
  readonly a: number;
  readonly o: ProofOutcome;
}

/** One compacted line: sessions stored once, outcomes point at them by index. */
interface MessageLine {
  readonly q: string;
  readonly m?: string;
  readonly a: number;
  readonly s: StoredSession[];
  readonly o: Array<Omit<ProofOutcome, 'session'> & { s?: number }>;
}

function stripSession(s: TlsSessionRecord | undefined): StoredSession | undefined {
  if (!s) return undefined;
  const { logLines: _drop, ...rest } = s;
  return rest;
}

export function keyHash(kind: 'q' | 'm', id: string): Buffer {
  return createHash('sha256').update(`${kind}:${id}`).digest().subarray(0, 16);
}

/** The last day asked and its key (every outcome of a day asks for the same one). */
let lastDayNumber = Number.NaN;
let lastDayKey = '';

function dayOf(ms: number): string {
  const d = Math.floor(ms / DAY);
  if (d !== lastDayNumber) {
    lastDayKey = new Date(d * DAY).toISOString().slice(0, 10);
    lastDayNumber = d;
  }
  return lastDayKey;
}

function toMessageLine(m: ProofMessage): MessageLine {
  const sessions: StoredSession[] = [];
  const seen = new Map<string, number>();
  const o = m.outcomes.map(({ session, ...rest }) => {
    if (!session) return rest;
    const k = JSON.stringify(session);
    let i = seen.get(k);
    if (i === undefined) {
      i = sessions.push(session) - 1;
      seen.set(k, i);
    }
    return { ...rest, s: i };
  });
  return { q: m.queueId, ...(m.messageId ? { m: m.messageId } : {}), a: m.arrivalTime, s: sessions, o };
}

function fromMessageLine(l: MessageLine): ProofMessage {
  return {
    queueId: l.q,
    ...(l.m ? { messageId: l.m } : {}),
    arrivalTime: l.a,
    outcomes: l.o.map(({ s, ...rest }) => (s === undefined ? rest : { ...rest, session: l.s[s]! })),
  };
}

/** Group appended outcome lines into messages (by queue ID and Message-ID), outcomes in time order. */
export function groupOutcomes(lines: readonly OutcomeLine[]): ProofMessage[] {
  const by = new Map<string, ProofMessage>();
  for (const l of lines) {
    const k = `${l.q}\u0000${l.m ?? ''}`;
    let m = by.get(k);
    if (!m) by.set(k, (m = { queueId: l.q, ...(l.m ? { messageId: l.m } : {}), arrivalTime: l.a, outcomes: [] }));
    m.outcomes.push(l.o);
  }
  for (const m of by.values()) m.outcomes.sort((a, b) => a.time - b.time);
  return [...by.values()];
}

function parseLines<T>(text: string): T[] {
  const out: T[] = [];
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    try {
      out.push(JSON.parse(raw) as T);
    } catch {
      /* a line torn by a crash */
    }
  }
  return out;
}

/** Write the compacted pair for one day's appended lines. */
export async function compactDay(dir: string, day: string): Promise<void> {
  // A crash between the renames and the removal of the .jsonl, or a late line for a
  // compacted day, leaves both: merge them, dropping exact duplicates.
  const earlier = parseLines<MessageLine>(await readFile(join(dir, `${day}.proof`), 'utf8').catch(() => ''))
    .map(fromMessageLine)
    .flatMap((m) => m.outcomes.map((o): OutcomeLine => ({ q: m.queueId, ...(m.messageId ? { m: m.messageId } : {}), a: m.arrivalTime, o })));
  const appended = parseLines<OutcomeLine>(await readFile(join(dir, `${day}.jsonl`), 'utf8'));
  const unique = new Map<string, OutcomeLine>();
  for (const l of [...earlier, ...appended]) unique.set(JSON.stringify(l), l);
  const lines = [...unique.values()];
  const chunks: Buffer[] = [];
  const index: Array<{ h: Buffer; off: number; len: number }> = [];
  let off = 0;
  for (const m of groupOutcomes(lines)) {
    const buf = Buffer.from(JSON.stringify(toMessageLine(m)) + '\n');
    index.push({ h: keyHash('q', m.queueId), off, len: buf.length });
    if (m.messageId) index.push({ h: keyHash('m', m.messageId), off, len: buf.length });
    chunks.push(buf);
    off += buf.length;
  }
  index.sort((a, b) => Buffer.compare(a.h, b.h));
  const idx = Buffer.alloc(index.length * REC);
  index.forEach((e, i) => {
    e.h.copy(idx, i * REC);
    idx.writeBigUInt64BE(BigInt(e.off), i * REC + 16);
    idx.writeUInt32BE(e.len, i * REC + 24);
  });
  await writeFile(join(dir, `${day}.proof.tmp`), Buffer.concat(chunks), { mode: 0o600 });
  await writeFile(join(dir, `${day}.idx.tmp`), idx, { mode: 0o600 });
  await rename(join(dir, `${day}.proof.tmp`), join(dir, `${day}.proof`));
  await rename(join(dir, `${day}.idx.tmp`), join(dir, `${day}.idx`));
  await rm(join(dir, `${day}.jsonl`), { force: true });
}

/** Binary search of one compacted day for a key hash. */
async function lookupCompacted(dir: string, day: string, kind: 'q' | 'm', id: string): Promise<ProofMessage[]> {
  const want = keyHash(kind, id);
  const idx = await open(join(dir, `${day}.idx`), 'r');
  const hits: Array<{ off: number; len: number }> = [];
  try {
    const n = Math.floor((await idx.stat()).size / REC);
    const rec = Buffer.alloc(REC);
    const at = async (i: number) => {
      await idx.read(rec, 0, REC, i * REC);
      return Buffer.compare(rec.subarray(0, 16), want);
    };
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((await at(mid)) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < n && (await at(i)) === 0; i++) hits.push({ off: Number(rec.readBigUInt64BE(16)), len: rec.readUInt32BE(24) });
  } finally {
    await idx.close();
  }
  if (hits.length === 0) return [];
  const data = await open(join(dir, `${day}.proof`), 'r');
  try {
    const out: ProofMessage[] = [];
    for (const h of hits) {
      const buf = Buffer.alloc(h.len);
      await data.read(buf, 0, h.len, h.off);
      const m = fromMessageLine(JSON.parse(buf.toString('utf8')) as MessageLine);
      if ((kind === 'q' ? m.queueId : m.messageId) === id) out.push(m);
    }
    return out;
  } finally {
    await data.close();
  }
}

async function lookupOpen(dir: string, day: string, kind: 'q' | 'm', id: string): Promise<ProofMessage[]> {
  const text = await readFile(join(dir, `${day}.jsonl`), 'utf8').catch(() => '');
  const lines = parseLines<OutcomeLine>(text).filter((l) => (kind === 'q' ? l.q === id : l.m === id));
  return groupOutcomes(lines);
}

/** Every stored message whose queue ID or Message-ID (angle brackets optional) is `id`. */
export async function findProof(dataDir: string, id: string): Promise<ProofMessage[]> {
  const dir = join(dataDir, PROOF_DIR);
  let files: string[];
  try {
    files = await readdir(dir);
  } catch {
    return [];
  }
  const compacted = new Set(files.filter((f) => /^\d{4}-\d{2}-\d{2}\.idx$/.test(f)).map((f) => f.slice(0, 10)));
  const open = files.filter((f) => /^\d{4}-\d{2}-\d{2}\.jsonl$/.test(f)).map((f) => f.slice(0, 10)).filter((d) => !compacted.has(d));
  const bare = id.replace(/^<(.*)>$/, '$1');
  const found: ProofMessage[] = [];
  for (const kind of ['q', 'm'] as const) {
    for (const day of [...compacted].sort()) found.push(...(await lookupCompacted(dir, day, kind, bare)));
    for (const day of open.sort()) found.push(...(await lookupOpen(dir, day, kind, bare)));
  }
  return mergeDays(found);
}

/** A message whose outcomes span days appears once per day: join them. */
function mergeDays(found: readonly ProofMessage[]): ProofMessage[] {
  const by = new Map<string, ProofMessage>();
  for (const m of found) {
    const k = `${m.queueId}\u0000${m.messageId ?? ''}\u0000${m.arrivalTime}`;
    const prev = by.get(k);
    if (!prev) by.set(k, { ...m, outcomes: [...m.outcomes] });
    else for (const o of m.outcomes) if (!prev.outcomes.some((p) => JSON.stringify(p) === JSON.stringify(o))) prev.outcomes.push(o);
  }
  const out = [...by.values()];
  for (const m of out) m.outcomes.sort((a, b) => a.time - b.time);
  return out.sort((a, b) => a.arrivalTime - b.arrivalTime);
}

export interface ProofStoreOptions {
  readonly dataDir: string;
  readonly retentionMs: number;
  readonly flushMs?: number;
  readonly now?: () => number;
  readonly onError?: (message: string) => void;
}

export class ProofStore {
  private readonly dir: string;
  private pending: OutcomeLine[] = [];
  /** Message-IDs from `received`, for outcomes that do not carry one. */
  private readonly messageIds = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private lastDay = '';
  private readonly now: () => number;

  constructor(private readonly opts: ProofStoreOptions) {
    this.dir = join(opts.dataDir, PROOF_DIR);
    this.now = opts.now ?? Date.now;
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.maintain();
    this.timer = setInterval(() => void this.flush(), this.opts.flushMs ?? 2_000);
    this.timer.unref();
  }

  readonly subscriber: Subscriber = (e: DeliveryEvent) => {
    if (e.kind === 'received') {
      if (e.messageId) {
        if (this.messageIds.size >= 100_000) this.messageIds.delete(this.messageIds.keys().next().value!);
        this.messageIds.set(e.queueId, e.messageId);
      }
    } else if (e.kind === 'removed') this.messageIds.delete(e.queueId);
    else if (e.kind === 'outcome') this.outcome(e);
  };

  private outcome(e: RecipientOutcomeEvent): void {
    const session = stripSession(e.session);
    const m = e.messageId ?? this.messageIds.get(e.queueId);
    const o: ProofOutcome = {
      time: e.time,
      recipient: e.recipient,
      origRecipient: e.origRecipient,
      status: e.status,
      dsn: e.dsn,
      reason: e.reason,
      relay: e.relay,
      transport: e.transport,
      nexthop: e.nexthop,
      ...(session ? { session } : {}),
    };
    this.pending.push({ q: e.queueId, ...(m ? { m } : {}), a: e.arrivalTime, o });
  }

  flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.writing = this.writing.then(() => this.write(batch)).catch((err: unknown) => this.opts.onError?.(`tls proof store: ${(err as Error).message}`));
    return this.writing;
  }

  private async write(batch: readonly OutcomeLine[]): Promise<void> {
    const byDay = new Map<string, string[]>();
    for (const l of batch) {
      const day = dayOf(l.o.time);
      const lines = byDay.get(day) ?? [];
      lines.push(JSON.stringify(l));
      byDay.set(day, lines);
    }
    for (const [day, lines] of byDay) await appendFile(join(this.dir, `${day}.jsonl`), lines.join('\n') + '\n', { mode: 0o600 });
    if (dayOf(this.now()) !== this.lastDay) await this.maintain();
  }

  /** Compact closed days, delete expired ones. */
  private async maintain(): Promise<void> {
    const now = this.now();
    this.lastDay = dayOf(now);
    const yesterday = dayOf(now - DAY);
    const oldest = dayOf(now - this.opts.retentionMs);
    const files = await readdir(this.dir);
    for (const f of files) {
      const m = /^(\d{4}-\d{2}-\d{2})\.(jsonl|proof|idx)$/.exec(f);
      if (!m) continue;
      if (m[1]! < oldest) await rm(join(this.dir, f), { force: true });
      else if (m[2] === 'jsonl' && m[1]! < yesterday) await compactDay(this.dir, m[1]!);
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
