/**
 * tls-diff-cases.ts (scenario helper for tls-diff-postfix.test.ts) — the
 * matrix of the TLS client comparison with Postfix and the pure half of it:
 * which cases exist (level × receiver posture), their DNS names and policy
 * entries, and how a sender's mail log becomes the facts that are compared.
 *
 * Contract: no I/O. `scan(lines)` cuts a mail log (as `program: text` lines,
 * postfix-sender.ts mailLogLines()) into delivery attempts per case: with
 * destination concurrency 1 the attempts for one destination never overlap,
 * so every line that names the case's domain or MX host (or a queue ID whose
 * status lines do) belongs to the attempt closed by the next status= line of
 * that case. `normalize` removes what is expected to differ between two
 * senders (program prefix, queue ID, delays, the receiver's queue ID, and the
 * `tls=` field that Postfix 3.7 cannot log).
 *
 * Not here: running the senders (the test), the known differences
 * (tls-diff-differences.ts).
 */
import type { ReceiverKind } from '../harness/tls-postures.ts';
import { RECEIVER_KINDS } from '../harness/tls-postures.ts';

export const LEVELS = ['none', 'may', 'encrypt', 'fingerprint', 'verify', 'secure', 'dane', 'dane-only'] as const;
export type Level = (typeof LEVELS)[number];

export interface Posture {
  readonly name: string;
  readonly receiver: ReceiverKind;
  /** Policy attributes after the level (the sender's half of a "no shared protocol" posture). */
  readonly attrs?: string;
  /** The MX host lies outside the recipient domain (the certificate names the MX host). */
  readonly foreignMx?: boolean;
  /** A DNSSEC-signed destination (AD bit): securely no TLSA, TLSA 3 1 1 of the receiver's key, or of another key. */
  readonly dnssec?: 'none' | 'match' | 'other';
  /** fingerprint: pin another certificate than the one the receiver presents. */
  readonly wrongPin?: boolean;
  /** Only at these levels (default: every level). */
  readonly levels?: readonly Level[];
}

export const POSTURES: readonly Posture[] = [
  ...RECEIVER_KINDS.map((k): Posture => ({
    name: k,
    receiver: k,
    // No shared protocol: the receiver's versions against the sender's policy.
    ...(k === 'tls13only' ? { attrs: 'protocols=<=TLSv1.2' } : k === 'tls12only' ? { attrs: 'protocols=>=TLSv1.3' } : {}),
  })),
  { name: 'foreignmx', receiver: 'valid', foreignMx: true },
  // Anonymous cipher suites exist only up to TLS 1.2: with protocols=>=TLSv1.3 nothing is left.
  { name: 'anon13', receiver: 'anon', attrs: 'protocols=>=TLSv1.3' },
  { name: 'wrongpin', receiver: 'valid', wrongPin: true, levels: ['fingerprint'] },
  // An entry that does not parse: "client TLS configuration problem" (ignored at none).
  { name: 'badattr', receiver: 'valid', attrs: 'foo=bar' },
  { name: 'securenotlsa', receiver: 'valid', dnssec: 'none', levels: ['dane', 'dane-only'] },
  { name: 'securetlsa', receiver: 'selfsigned', dnssec: 'match', levels: ['dane', 'dane-only'] },
  { name: 'securebadtlsa', receiver: 'valid', dnssec: 'other', levels: ['dane', 'dane-only'] },
];

export interface Case {
  /** `LEVEL × POSTURE`. */
  readonly id: string;
  readonly level: Level;
  readonly posture: Posture;
  /** The recipient domain = next hop = policy-table key: `POSTURE.LEVEL.test`. */
  readonly domain: string;
  readonly mx: string;
}

export const CASES: readonly Case[] = LEVELS.flatMap((level) =>
  POSTURES.filter((p) => !p.levels || p.levels.includes(level)).map((posture): Case => {
    const domain = `${posture.name}.${level}.test`;
    return { id: `${level} × ${posture.name}`, level, posture, domain, mx: posture.foreignMx ? `mx.${level}.elsewhere.test` : `mx.${domain}` };
  }),
);

export const caseById = (id: string): Case | undefined => CASES.find((c) => c.id === id);

/** One delivery attempt: normalized log lines, its status= line last. */
export type Attempt = readonly string[];

export interface Facts {
  /** a@: attempt 1, and a retry when attempt 1 was deferred without throttling the destination. */
  readonly a: readonly Attempt[];
  /** b@: attempt 1 (queued behind a@). */
  readonly b: readonly Attempt[];
  /** For each observed attempt that was sent: how the receiver got it (`a@ TLS`, `b@ plaintext`). */
  readonly received: readonly string[];
  /** What `mailq` shows for the case's mail still queued once all is observed: `a@ (reason)`. */
  readonly queued: readonly string[];
}

/** `program: text` → text with the queue ID, delays and the tls= field removed. */
export function normalize(line: string): string {
  return line
    .replace(/^(?:postfix|sealpost)\//, '')
    .replace(/^(\S+): (?!warning:)[0-9A-Za-z]{6,}: /, '$1: ')
    .replace(/, delay=[\d.]+, delays=[\d./]+/, '')
    // postconf(5) smtp_log_tls_feature_status: Postfix ≥ 3.11 only (sealpost follows 3.11).
    .replace(/, tls=[^,]*/, '')
    .replace(/(Ok: queued as )\S+\)$/, '$1ID)');
}

const NAME_TO_CASE = new Map<string, Case>(CASES.flatMap((c) => [[c.domain, c], [c.mx, c]] as Array<[string, Case]>));

/** The case a log line names (its domain or MX host), if any. */
export function caseOf(line: string): Case | undefined {
  for (const m of line.matchAll(/[A-Za-z0-9*-]+(?:\.[A-Za-z0-9*-]+)+/g)) {
    const c = NAME_TO_CASE.get(m[0].toLowerCase());
    if (c) return c;
  }
  return undefined;
}

/** Queue manager and intake lines: the same for every case, not about TLS. */
const BOOKKEEPING = /^\S+: \w+: (?:from=<|removed$|client=|message-id=|uid=)/;
/**
 * sealpost's start-up check (`sealpost check`, daemon/check-tls.ts) warns about policy-table
 * entries before any mail is sent, as `master: warning: FILE, line N: ...`; Postfix has no such
 * check. Those lines belong to no delivery attempt.
 */
const STARTUP_CHECK = /^(?:\S+\/)?master: warning: \S+, line \d+: /;
const STATUS = /^\S+: (\w+): to=<([ab])@[^>]+>,.* status=/;

export interface CaseAttempts {
  /** Raw lines of each closed attempt, per recipient. */
  readonly a: string[][];
  readonly b: string[][];
}

/** Cut a mail log into closed attempts per case. */
export function scan(lines: readonly string[]): Map<string, CaseAttempts> {
  // A line that names only a queue ID (`QUEUEID: Cannot start TLS: ...` before a plaintext
  // retry) belongs to the case of that queue ID's status lines.
  const byId = new Map<string, Case>();
  for (const line of lines) {
    const m = /^\S+: (\w+): to=<[ab]@([^>]+)>/.exec(line);
    const c = m ? NAME_TO_CASE.get(m[2]!) : undefined;
    if (c) byId.set(m![1]!, c);
  }
  const open = new Map<string, string[]>();
  const out = new Map<string, CaseAttempts>();
  for (const line of lines) {
    if (BOOKKEEPING.test(line) || STARTUP_CHECK.test(line)) continue;
    const c = caseOf(line) ?? byId.get(/^\S+: (?!warning:)(\w+): /.exec(line)?.[1] ?? '');
    if (!c) continue;
    const seg = open.get(c.id) ?? [];
    seg.push(line);
    const status = STATUS.exec(line);
    if (!status) {
      open.set(c.id, seg);
      continue;
    }
    open.delete(c.id);
    const rec = out.get(c.id) ?? { a: [], b: [] };
    rec[status[2] as 'a' | 'b'].push(seg);
    out.set(c.id, rec);
  }
  return out;
}

/**
 * `mailq` (Postfix's layout, showq_compat.c) → recipient → the delay reason
 * shown above it (a reason line applies to the recipients below it).
 */
export function parseMailq(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let reason = '';
  for (const line of text.split('\n')) {
    if (/^\s*\(.*\)$/.test(line)) {
      // `%*s(%s)`: right-aligned to column 78, flush left when longer.
      reason = line.trim().slice(1, -1);
    } else if (/^\S/.test(line)) {
      reason = ''; // a new message (or the header/footer)
    } else if (line.trim() !== '') {
      out.set(line.trim(), reason);
    }
  }
  return out;
}

/** The case's entries of a parsed mailq: `a@ (reason)`, sorted. */
export function queuedOf(c: Case, mailq: ReadonlyMap<string, string>): string[] {
  return (['a', 'b'] as const).filter((r) => mailq.has(`${r}@${c.domain}`)).map((r) => `${r}@ (${mailq.get(`${r}@${c.domain}`)})`);
}

export const isStatus = (line: string, status: string): boolean => line.includes(` status=${status} `);
export const isSuspended = (seg: readonly string[]): boolean => / status=deferred \(delivery temporarily suspended: /.test(seg.at(-1) ?? '');
export const queueIdOf = (seg: readonly string[]): string => STATUS.exec(seg.at(-1) ?? '')?.[1] ?? '';

/**
 * Does a@ need its retry observed? When its first attempt was deferred and
 * b@ (queued behind it) was not suspended: the destination was not throttled,
 * and what matters is what the next attempt does (`may`: plaintext).
 */
export function needsRetry(rec: CaseAttempts): boolean {
  return rec.a.length >= 1 && rec.b.length >= 1 && isStatus(rec.a[0]!.at(-1)!, 'deferred') && !isSuspended(rec.b[0]!);
}

/** The attempts compared, or undefined while some are still to come. */
export function wanted(rec: CaseAttempts | undefined): CaseAttempts | undefined {
  if (!rec || rec.a.length === 0 || rec.b.length === 0) return undefined;
  const retry = needsRetry(rec);
  if (retry && rec.a.length < 2) return undefined;
  return { a: rec.a.slice(0, retry ? 2 : 1), b: rec.b.slice(0, 1) };
}
